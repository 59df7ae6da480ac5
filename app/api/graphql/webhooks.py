"""GraphQL for outbound webhooks: the same services as REST /api/v1/webhooks."""

from __future__ import annotations

import datetime
from datetime import timedelta
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor
from app.domain.webhooks import service
from app.domain.webhooks.schemas import (
    DeliveryRead,
    ReplayRequest,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from app.integrations import webhook_sender


def _settings(info: strawberry.Info) -> Any:
    return info.context.request.app.state.resources.settings


@strawberry.type(description="One event (or test ping) for one subscription; its id is the "
                             "webhook-id header of every attempt.")
class WebhookDelivery:
    id: strawberry.ID
    subscription_id: strawberry.ID
    event_id: strawberry.ID | None
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime.datetime
    delivered_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    payload: JSON
    attempt_log: JSON = strawberry.field(description="Every request sent, oldest first")

    @classmethod
    def of(cls, d: DeliveryRead) -> WebhookDelivery:
        return cls(id=strawberry.ID(str(d.id)), subscription_id=strawberry.ID(str(
            d.subscription_id)), event_id=strawberry.ID(str(d.event_id)) if d.event_id
            else None, event_type=d.event_type, status=d.status, attempts=d.attempts,
            next_attempt_at=d.next_attempt_at, last_status_code=d.last_status_code,
            last_error=d.last_error, created_at=d.created_at, delivered_at=d.delivered_at,
            finished_at=d.finished_at, payload=d.payload,
            attempt_log=[a.model_dump(mode="json") for a in d.attempt_log])


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type(description="A webhook subscription (docs/integrations/webhooks.md). The "
                             "secret is never shown again after creation or rotation.")
class Webhook:
    id: strawberry.ID
    url: str
    description: str | None
    events: list[str]
    filters: JSON
    status: str
    status_reason: str | None
    failure_threshold: int
    failure_streak: int
    failing_since: datetime.datetime | None
    last_success_at: datetime.datetime | None
    last_failure_at: datetime.datetime | None
    previous_secret_expires_at: datetime.datetime | None
    owner_user_id: strawberry.ID | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, w: WebhookRead) -> Webhook:
        return cls(id=strawberry.ID(str(w.id)), url=w.url, description=w.description,
                   events=w.events, filters=w.filters, status=w.status,
                   status_reason=w.status_reason, failure_threshold=w.failure_threshold,
                   failure_streak=w.failure_streak, failing_since=w.failing_since,
                   last_success_at=w.last_success_at, last_failure_at=w.last_failure_at,
                   previous_secret_expires_at=w.previous_secret_expires_at,
                   owner_user_id=strawberry.ID(str(w.owner_user_id)) if w.owner_user_id
                   else None, version=w.version, created_at=w.created_at,
                   updated_at=w.updated_at)

    @strawberry.field(description="The delivery log, newest first (`filter` as REST's: "
                                  '{"field": "status", "op": "eq", "value": "failed"}).')
    async def deliveries(self, info: strawberry.Info, first: int = 20,
                         after: str | None = None,
                         filter: JSON | None = None) -> WebhookDeliveryConnection:
        async with info.context.db_lock:
            rows, next_cursor = await service.list_deliveries(
                info.context.session, info.context.principal, parse_id(self.id, "webhook"),
                conditions=await filter_conditions(info.context.session, service.DELIVERIES_SPEC, filter),
                page=page_of(first, after, None))
            reads = await service.delivery_reads(info.context.session, rows)
        edges = [WebhookDeliveryEdge(cursor=row_cursor(service.DELIVERIES_SPEC, None, row),
                                     node=WebhookDelivery.of(read))
                 for row, read in zip(rows, reads, strict=True)]
        return WebhookDeliveryConnection(edges=edges, page_info=page_info(edges, next_cursor))


@strawberry.type
class WebhookEdge:
    cursor: str
    node: Webhook


@strawberry.type
class WebhookConnection:
    edges: list[WebhookEdge]
    page_info: PageInfo


@strawberry.type(description="A new subscription with its signing secret, shown this once.")
class WebhookWithSecret:
    webhook: Webhook
    secret: str


@strawberry.type(description="What the receiver answered to a test ping.")
class WebhookTestResult:
    delivery_id: strawberry.ID
    success: bool
    status_code: int | None
    latency_ms: int | None
    error: str | None


@strawberry.type(description="One page of a replay.")
class WebhookReplay:
    scanned: int
    scheduled: int
    already_pending: int
    next_cursor: str | None
    has_more: bool


@strawberry.input(description="As REST's body; `filters` is REST's filters object.")
class WebhookInput:
    url: str | None = strawberry.UNSET
    events: list[str] | None = strawberry.UNSET
    filters: JSON | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    failure_threshold: int | None = strawberry.UNSET


@strawberry.type
class WebhooksQuery:
    @strawberry.field(description="The workspace's webhook subscriptions.")
    async def webhooks(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                       filter: JSON | None = None) -> WebhookConnection:
        async with info.context.db_lock:
            rows, next_cursor = await service.list_webhooks(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, service.LIST_SPEC, filter),
                page=page_of(first, after, None))
        edges = [WebhookEdge(cursor=row_cursor(service.LIST_SPEC, None, row),
                             node=Webhook.of(service.to_read(row))) for row in rows]
        return WebhookConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="A subscription; null when there is none with this id here.")
    async def webhook(self, info: strawberry.Info, id: strawberry.ID) -> Webhook | None:
        async with info.context.db_lock:
            try:
                row = await service.get_webhook(info.context.session, info.context.principal,
                                                parse_id(id, "webhook"))
            except DomainNotFound:
                return None
        return Webhook.of(service.to_read(row))


_Errors = ValidationError | ConflictError | NotFoundError | PreconditionFailedError \
    | ForbiddenError
WebhookResult = Annotated[Webhook | _Errors, strawberry.union("WebhookResult")]
WebhookCreateResult = Annotated[WebhookWithSecret | _Errors,
                                strawberry.union("WebhookCreateResult")]
WebhookTestPingResult = Annotated[WebhookTestResult | _Errors,
                                  strawberry.union("WebhookTestPingResult")]
WebhookDeliveryResult = Annotated[WebhookDelivery | _Errors,
                                  strawberry.union("WebhookDeliveryResult")]
WebhookReplayResult = Annotated[WebhookReplay | _Errors, strawberry.union("WebhookReplayResult")]


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(description="Subscribe a URL; the secret is in this answer only.")
    async def create_webhook(self, info: strawberry.Info,
                             input: WebhookInput) -> WebhookCreateResult:
        async def run() -> WebhookWithSecret:
            sub = await service.create_webhook(info.context.session, info.context.principal,
                                               WebhookCreate.model_validate(input_to_dict(input)))
            return WebhookWithSecret(webhook=Webhook.of(service.to_read(sub)), secret=sub.secret)
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a subscription; `version` refuses a lost "
                                     "update. status active resumes it.")
    async def update_webhook(self, info: strawberry.Info, id: strawberry.ID,
                             input: WebhookInput, version: int | None = None) -> WebhookResult:
        async def run() -> Webhook:
            sub = await service.update_webhook(info.context.session, info.context.principal,
                                               parse_id(id, "webhook"),
                                               WebhookUpdate.model_validate(input_to_dict(input)),
                                               expected_version=version)
            return Webhook.of(service.to_read(sub))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Delete a subscription; waiting deliveries are canceled.")
    async def delete_webhook(self, info: strawberry.Info, id: strawberry.ID,
                             version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await service.delete_webhook(info.context.session, info.context.principal,
                                         parse_id(id, "webhook"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="A new secret, shown this once; the previous one signs "
                                     "too for `overlapSeconds` (default 24 h).")
    async def rotate_webhook_secret(self, info: strawberry.Info, id: strawberry.ID,
                                    overlap_seconds: int | None = None
                                    ) -> WebhookCreateResult:
        async def run() -> WebhookWithSecret:
            hours = _settings(info).webhook_rotation_overlap_hours
            overlap = timedelta(hours=hours) if overlap_seconds is None else timedelta(
                seconds=max(0, min(overlap_seconds, 7 * 86400)))
            sub, secret = await service.rotate_secret(
                info.context.session, info.context.principal, parse_id(id, "webhook"),
                overlap=overlap)
            return WebhookWithSecret(webhook=Webhook.of(service.to_read(sub)), secret=secret)
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Send a signed webhook.test payload now; the receiver's "
                                     "status and latency.")
    async def test_webhook(self, info: strawberry.Info,
                           id: strawberry.ID) -> WebhookTestPingResult:
        async def run() -> WebhookTestResult:
            claimed, outcome = await webhook_sender.test_ping(
                info.context.request.app.state.resources.sessions, info.context.principal,
                parse_id(id, "webhook"), _settings(info))
            return WebhookTestResult(delivery_id=strawberry.ID(str(claimed.id)),
                                     success=outcome.success, status_code=outcome.status_code,
                                     latency_ms=outcome.latency_ms, error=outcome.error)
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Send a delivery again now (same webhook-id and body).")
    async def redeliver_webhook_delivery(self, info: strawberry.Info,
                                         id: strawberry.ID) -> WebhookDeliveryResult:
        async def run() -> WebhookDelivery:
            row = await service.redeliver(info.context.session, info.context.principal,
                                          parse_id(id, "webhook delivery"))
            return WebhookDelivery.of(
                (await service.delivery_reads(info.context.session, [row]))[0])
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Deliver again every matching event after an event "
                                     "cursor, `limit` events a call.")
    async def replay_webhook(self, info: strawberry.Info, id: strawberry.ID,
                             after: str | None = None, limit: int = 500
                             ) -> WebhookReplayResult:
        async def run() -> WebhookReplay:
            result = await service.replay(info.context.session, info.context.principal,
                                          parse_id(id, "webhook"),
                                          ReplayRequest.model_validate(
                                              {"after": after, "limit": limit}))
            return WebhookReplay(**result.model_dump())
        return await in_savepoint(info, run, body=None)


QUERY_TYPES: list[type] = [WebhooksQuery]
MUTATION_TYPES: list[type] = [WebhooksMutation]
