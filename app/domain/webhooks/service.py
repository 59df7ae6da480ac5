"""Webhook subscriptions: create (the secret shown once), read, list, update, delete, rotate
the secret; the delivery log, redelivery and replay.

Subscriptions are written by owners and admins (and API keys); members may read them (never
a secret). The delivery log carries event payloads of the whole workspace, so it is for
owners, admins and API keys only. A URL is checked against the SSRF rules
(app/integrations/http_guard.py) when it is saved and again when it is sent."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.notifications.service import notify
from app.domain.outbox.models import Event
from app.domain.outbox.service import (
    _VISIBLE_HORIZON,
    decode_event_cursor,
    encode_event_cursor,
    record_event,
)
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, NotFoundError, ValidationError
from app.domain.shared.ids import new_id
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal, system_principal
from app.domain.webhooks import delivery
from app.domain.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.domain.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    ReplayRequest,
    ReplayResult,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from app.domain.workspaces.models import User
from app.integrations import http_guard, signing

ENTITY = "webhook"
SECRET_FIELDS = {"secret", "previous_secret"}
MAX_SUBSCRIPTIONS = 100  # per workspace: every event is matched against each of them
ATTEMPTS_SHOWN = 50  # per delivery in the log

LIST_SPEC = ListSpec(
    id_column=WebhookSubscription.id,
    fields={
        "id": FilterField(WebhookSubscription.id, "uuid"),
        "url": FilterField(WebhookSubscription.url, "str"),
        "status": FilterField(WebhookSubscription.status, "str"),
        "created_at": FilterField(WebhookSubscription.created_at, "datetime", sortable=True),
        "updated_at": FilterField(WebhookSubscription.updated_at, "datetime", sortable=True),
    },
)

DELIVERIES_SPEC = ListSpec(
    id_column=WebhookDelivery.id,
    default_sort="-id",
    fields={
        "id": FilterField(WebhookDelivery.id, "uuid", sortable=True),
        "status": FilterField(WebhookDelivery.status, "str"),
        "event_id": FilterField(WebhookDelivery.event_id, "uuid"),
        "event_type": FilterField(WebhookDelivery.event_type, "str"),
        "created_at": FilterField(WebhookDelivery.created_at, "datetime"),
    },
)


def snapshot(sub: WebhookSubscription) -> dict[str, Any]:
    """As events and history show it: never a secret."""
    return sub.model_dump(mode="json", exclude={"workspace_id", *SECRET_FIELDS})


def to_read(sub: WebhookSubscription) -> WebhookRead:
    return WebhookRead.model_validate(sub, from_attributes=True)


def created_read(sub: WebhookSubscription) -> WebhookCreated:
    return WebhookCreated.model_validate({**to_read(sub).model_dump(), "secret": sub.secret})


async def check_url(url: str, loc: list[str | int]) -> None:
    """A 422 at `loc` when the URL may not be called (SSRF rules)."""
    try:
        await http_guard.check_url(url)
    except http_guard.UnsafeURLError as exc:
        raise ValidationError.at(loc, str(exc), "url_refused") from exc


async def _check_filters(session: AsyncSession, filters: dict[str, Any]) -> None:
    for key, model, name, conditions in (
            ("pipeline_ids", Pipeline, "pipeline", ()),
            ("stage_ids", Stage, "stage", (Stage.deleted_at.is_(None),))):
        ids = [uuid.UUID(str(i)) for i in filters.get(key) or ()]
        if not ids:
            continue
        found = set((await session.execute(select(model.id).where(
            model.id.in_(ids), *conditions))).scalars())
        for i, item in enumerate(ids):
            if item not in found:
                raise ValidationError.at(["body", "filters", key, i],
                                         f"no such {name} in this workspace")


def _filters(data: Any) -> dict[str, Any]:
    return data.model_dump(mode="json", exclude_none=True) if data is not None else {}


async def create_webhook(session: AsyncSession, principal: Principal,
                         data: WebhookCreate) -> WebhookSubscription:
    principal.require_admin()
    await check_url(data.url, ["body", "url"])
    filters = _filters(data.filters)
    await _check_filters(session, filters)
    count = len((await session.execute(select(WebhookSubscription.id).where(
        WebhookSubscription.deleted_at.is_(None)).limit(MAX_SUBSCRIPTIONS))).all())
    if count >= MAX_SUBSCRIPTIONS:
        raise ConflictError(f"a workspace has at most {MAX_SUBSCRIPTIONS} webhook "
                            "subscriptions: delete one first")
    sub = WebhookSubscription(
        workspace_id=principal.workspace_id, url=data.url, description=data.description,
        events=data.events, filters=filters, status=data.status,
        failure_threshold=data.failure_threshold, secret=signing.new_secret(),
        owner_user_id=principal.user_id, created_by=principal.actor,
        updated_by=principal.actor)
    session.add(sub)
    await session.flush()
    await record_event(session, principal, type="webhook.created", entity_type=ENTITY,
                       entity_id=sub.id, after=snapshot(sub))
    return sub


async def get_webhook(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *,
                      for_update: bool = False) -> WebhookSubscription:
    return await records.get_visible(session, WebhookSubscription, principal, webhook_id,
                                     for_update=for_update)


async def list_webhooks(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                        page: Page) -> tuple[list[WebhookSubscription], str | None]:
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None),
                                              *conditions)
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def update_webhook(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID,
                         data: WebhookUpdate, *, expected_version: int | None = None
                         ) -> WebhookSubscription:
    principal.require_admin()
    sub = await get_webhook(session, principal, webhook_id, for_update=True)
    records.check_version(sub, expected_version)
    given = data.model_dump(exclude_unset=True)
    for key in ("url", "events", "status", "failure_threshold"):
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    before = snapshot(sub)
    if "url" in given:
        await check_url(data.url or "", ["body", "url"])
        sub.url = given["url"]
    if "filters" in given:
        filters = _filters(data.filters)
        await _check_filters(session, filters)
        sub.filters = filters
    for key in ("events", "description", "failure_threshold"):
        if key in given:
            setattr(sub, key, given[key])
    if "status" in given and given["status"] != sub.status:
        sub.status = given["status"]
        sub.status_reason = None if sub.status == "active" else f"set by {principal.actor}"
        if sub.status == "active":  # a fresh start: the streak is forgotten
            sub.failure_streak, sub.failing_since = 0, None
    if snapshot(sub) == before:
        return sub
    records.touch(sub, principal)
    await session.flush()
    await record_event(session, principal, type="webhook.updated", entity_type=ENTITY,
                       entity_id=sub.id, before=before, after=snapshot(sub))
    return sub


async def delete_webhook(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *,
                         expected_version: int | None = None) -> None:
    """The subscription stops at once; what was still waiting is canceled; the log stays."""
    principal.require_admin()
    sub = await get_webhook(session, principal, webhook_id, for_update=True)
    records.check_version(sub, expected_version)
    before = snapshot(sub)
    sub.deleted_at = clock.now()
    records.touch(sub, principal)
    await session.execute(update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == sub.id,
        WebhookDelivery.status.in_(("pending", "sending"))).values(
        status="canceled", finished_at=clock.now(), next_attempt_at=None))
    await session.flush()
    await record_event(session, principal, type="webhook.deleted", entity_type=ENTITY,
                       entity_id=sub.id, before=before, after=snapshot(sub))


async def rotate_secret(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *,
                        overlap: timedelta) -> tuple[WebhookSubscription, str]:
    """A new secret signs from now on; the current one keeps signing too for `overlap`
    (both signatures in `webhook-signature`), so receivers can switch without a gap."""
    principal.require_admin()
    sub = await get_webhook(session, principal, webhook_id, for_update=True)
    before = snapshot(sub)
    now = clock.now()
    if overlap > timedelta(0):
        sub.previous_secret, sub.previous_secret_expires_at = sub.secret, now + overlap
    else:
        sub.previous_secret, sub.previous_secret_expires_at = None, None
    sub.secret = signing.new_secret()
    records.touch(sub, principal)
    await session.flush()
    await record_event(session, principal, type="webhook.secret_rotated", entity_type=ENTITY,
                       entity_id=sub.id, before=before, after=snapshot(sub))
    return sub, sub.secret


# The delivery log

def _attempt_read(a: WebhookAttempt) -> AttemptRead:
    return AttemptRead.model_validate(a, from_attributes=True)


async def delivery_reads(session: AsyncSession, rows: list[WebhookDelivery]) -> list[DeliveryRead]:
    attempts: dict[uuid.UUID, list[AttemptRead]] = {r.id: [] for r in rows}
    if rows:
        for a in (await session.execute(select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt.desc()))).scalars():
            shown = attempts[a.delivery_id]
            if len(shown) < ATTEMPTS_SHOWN:
                shown.append(_attempt_read(a))
    return [DeliveryRead.model_validate({
        **{k: getattr(r, k) for k in ("id", "subscription_id", "event_id", "event_type",
                                     "status", "attempts", "next_attempt_at",
                                     "last_status_code", "last_error", "created_at",
                                     "delivered_at", "finished_at")},
        "payload": orjson.loads(r.body), "attempt_log": attempts[r.id][::-1]}) for r in rows]


async def list_deliveries(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *,
                          conditions: list[Any], page: Page
                          ) -> tuple[list[WebhookDelivery], str | None]:
    principal.require_admin()
    await records.get_visible(session, WebhookSubscription, principal, webhook_id,
                              include_deleted=True)
    query, cut = paginate(DELIVERIES_SPEC, select(WebhookDelivery).where(
        WebhookDelivery.subscription_id == webhook_id, *conditions), page)
    return cut(list((await session.execute(query)).scalars()))


async def get_delivery(session: AsyncSession, principal: Principal, delivery_id: uuid.UUID, *,
                       for_update: bool = False) -> WebhookDelivery:
    principal.require_admin()
    query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"webhook delivery {delivery_id} not found")
    return row


async def redeliver(session: AsyncSession, principal: Principal,
                    delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again now, with the same `webhook-id` and body (a new round of
    retries). One still waiting is brought forward; one being sent right now is a 409."""
    row = await get_delivery(session, principal, delivery_id, for_update=True)
    sub = await get_webhook(session, principal, row.subscription_id)
    if row.event_id is None:
        raise ConflictError("a test ping is not redelivered: send a new one "
                            f"(POST /api/v1/webhooks/{sub.id}/test)")
    if row.status == "sending":
        raise ConflictError("the delivery is being sent right now; look again in a moment")
    now = clock.now()
    if row.status != "pending":
        row.retries_from = row.attempts
    row.status, row.next_attempt_at, row.finished_at = "pending", now, None
    await session.flush()
    return row


async def replay(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID,
                 data: ReplayRequest) -> ReplayResult:
    """Every event after `after` the subscription matches (its types and filters) is
    delivered again: its existing delivery (same `webhook-id`) goes back to pending, or one
    is created. A page at a time (`limit` events read); deliveries still waiting are left as
    they are, so repeating a call schedules nothing twice."""
    principal.require_admin()
    sub = await get_webhook(session, principal, webhook_id)
    query = select(Event).where(_VISIBLE_HORIZON)
    if data.after:
        txid, seq = decode_event_cursor(data.after)
        query = query.where(tuple_(Event.txid, Event.seq) > tuple_(txid, seq))
    if "*" not in sub.events:
        query = query.where(Event.type.in_(sub.events))
    rows = list((await session.execute(query.order_by(Event.txid, Event.seq)
                                       .limit(data.limit + 1))).scalars())
    has_more = len(rows) > data.limit
    events = rows[:data.limit]
    now = clock.now()
    matching = []
    for event in events:
        placement = None
        if delivery.filters_need_placement(sub.filters):
            placement = await delivery._placement(session, event)
        if delivery.matches(sub.filters, event, placement):
            matching.append(event)
    scheduled = pending = 0
    if matching:
        existing = {d.event_id: d for d in (await session.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.subscription_id == sub.id,
                WebhookDelivery.event_id.in_([e.id for e in matching]))
            .with_for_update())).scalars()}
        fresh = []
        for event in matching:
            found = existing.get(event.id)
            if found is None:
                fresh.append({"workspace_id": sub.workspace_id, "id": new_id(),
                              "subscription_id": sub.id, "event_id": event.id,
                              "event_type": event.type,
                              "body": delivery.payload(event).decode(), "status": "pending",
                              "attempts": 0, "retries_from": 0, "next_attempt_at": now,
                              "created_at": now})
            elif found.status in ("pending", "sending"):
                pending += 1
            else:
                found.retries_from = found.attempts
                found.status, found.next_attempt_at, found.finished_at = "pending", now, None
                scheduled += 1
        if fresh:
            result = await session.execute(insert(WebhookDelivery).values(fresh)
                                           .on_conflict_do_nothing(index_elements=[
                                               "workspace_id", "subscription_id", "event_id"])
                                           .returning(WebhookDelivery.id))
            scheduled += len(result.scalars().all())
        await session.flush()
    last = events[-1] if events else None
    next_cursor = encode_event_cursor(last.txid, last.seq) if last is not None \
        and last.txid is not None and last.seq is not None else data.after
    return ReplayResult(scanned=len(events), scheduled=scheduled, already_pending=pending,
                        next_cursor=next_cursor, has_more=has_more)


async def new_test_delivery(session: AsyncSession, principal: Principal,
                            webhook_id: uuid.UUID) -> tuple[WebhookSubscription,
                                                            delivery.Claimed]:
    """A `webhook.test` delivery row, claimed for sending now by the caller."""
    principal.require_admin()
    sub = await get_webhook(session, principal, webhook_id)
    now = clock.now()
    row = WebhookDelivery(workspace_id=sub.workspace_id, subscription_id=sub.id,
                          event_id=None, event_type="webhook.test",
                          body=delivery.test_payload(sub.id, now).decode(), status="sending",
                          attempts=1, next_attempt_at=now + delivery.LEASE, created_at=now)
    session.add(row)
    await session.flush()
    return sub, delivery.Claimed(sub.workspace_id, row.id, sub.id, sub.url,
                                 delivery.signing_secrets(sub, now), row.body.encode(),
                                 1, 1)


async def record_test_outcome(session: AsyncSession, claimed: delivery.Claimed,
                              outcome: delivery.Outcome, now: datetime) -> None:
    """A test ping is sent once: delivered or failed, never retried; it does not count
    towards the subscription's failure streak."""
    session.add(WebhookAttempt(
        workspace_id=claimed.workspace_id, delivery_id=claimed.id,
        subscription_id=claimed.subscription_id, attempt=1, url=claimed.url,
        request_headers=outcome.request_headers, response_status=outcome.status_code,
        response_headers=outcome.response_headers, response_body=outcome.response_body,
        latency_ms=outcome.latency_ms, error=outcome.error, created_at=now))
    await session.execute(update(WebhookDelivery).where(
        WebhookDelivery.id == claimed.id).values(
        status="delivered" if outcome.success else "failed", next_attempt_at=None,
        last_status_code=outcome.status_code, last_error=outcome.error, finished_at=now,
        delivered_at=now if outcome.success else None))


async def announce_stopped(session: AsyncSession, workspace_id: uuid.UUID,
                           sub_id: uuid.UUID) -> None:
    """A subscription the sender paused (failure streak) or disabled (410): an event, and a
    notification to its creator — or, when no active user created it, every admin."""
    sub = (await session.execute(select(WebhookSubscription).where(
        WebhookSubscription.id == sub_id))).scalar_one_or_none()
    if sub is None:
        return
    principal = system_principal(workspace_id)
    records.touch(sub, principal)
    after = snapshot(sub)
    await record_event(session, principal, type=f"webhook.{sub.status}", entity_type=ENTITY,
                       entity_id=sub.id, before={"status": "active"}, after=after)
    users: list[uuid.UUID] = []
    if sub.owner_user_id is not None:
        users = list((await session.execute(select(User.id).where(
            User.id == sub.owner_user_id, User.is_active.is_(True)))).scalars())
    if not users:
        users = list((await session.execute(select(User.id).where(
            User.role.in_(("owner", "admin")), User.is_active.is_(True)))).scalars())
    verb = "paused" if sub.status == "paused" else "disabled"
    await notify(session, principal, user_ids=users, type="webhook", entity_type=ENTITY,
                 entity_id=sub.id, title=f"Webhook {verb}: {sub.url}"[:300],
                 body=(f"{sub.status_reason}. Deliveries are held; set its status to active "
                       "to resume." if verb == "paused" else
                       f"{sub.status_reason}. New events are no longer delivered; set its "
                       "status to active and replay from a cursor to catch up."),
                 dedup_key=f"webhook:{sub.id}:{verb}:{sub.version}")
