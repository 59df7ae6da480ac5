"""REST: /api/v1/webhooks — outbound webhook subscriptions, their delivery log, test pings,
redelivery, replay from an event cursor and secret rotation (docs/integrations/webhooks.md)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status

from app.api.deps import Bearer, Ctx, PageDep, authenticate, resources
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.domain.webhooks import service
from app.domain.webhooks.schemas import (
    DeliveryRead,
    ReplayRequest,
    ReplayResult,
    RotateSecretRequest,
    SecretRotated,
    TestResult,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from app.integrations import webhook_sender

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.get("/deliveries/{delivery_id}", response_model=DeliveryRead)
async def get_delivery(delivery_id: uuid.UUID, ctx: Ctx) -> DeliveryRead:
    """One delivery with its body and every attempt (owners, admins, API keys)."""
    row = await service.get_delivery(ctx.session, ctx.principal, delivery_id)
    return (await service.delivery_reads(ctx.session, [row]))[0]


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryRead)
async def redeliver(delivery_id: uuid.UUID, ctx: Ctx) -> DeliveryRead:
    """Send it again now: the same `webhook-id` and body, a fresh round of retries."""
    row = await service.redeliver(ctx.session, ctx.principal, delivery_id)
    return (await service.delivery_reads(ctx.session, [row]))[0]


@router.get("", response_model=ListResponse[WebhookRead])
async def list_webhooks(request: Request, ctx: Ctx, page: PageDep) -> ListResponse[WebhookRead]:
    """Subscriptions, oldest first. Filters: `status=paused`, `url=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_webhooks(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page)
    return ListResponse(data=[service.to_read(r) for r in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(body: WebhookCreate, ctx: Ctx, response: Response) -> WebhookCreated:
    """Subscribe a URL to event types (`["*"]`: every event), optionally filtered. The
    signing `secret` is in this response only. The URL must reach a public address (a 422
    at `body.url` otherwise). Owners, admins and API keys."""
    sub = await service.create_webhook(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/webhooks/{sub.id}"
    set_etag(response, sub.version)
    return service.created_read(sub)


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: uuid.UUID, ctx: Ctx, response: Response) -> WebhookRead:
    sub = await service.get_webhook(ctx.session, ctx.principal, webhook_id)
    set_etag(response, sub.version)
    return service.to_read(sub)


@router.patch("/{webhook_id}", response_model=WebhookRead)
async def update_webhook(webhook_id: uuid.UUID, body: WebhookUpdate, request: Request,
                         ctx: Ctx, response: Response) -> WebhookRead:
    """Merge-patch. `{"status": "active"}` resumes a paused or disabled subscription."""
    sub = await service.update_webhook(ctx.session, ctx.principal, webhook_id, body,
                                       expected_version=expected_version(request))
    set_etag(response, sub.version)
    return service.to_read(sub)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Stops at once; deliveries still waiting are canceled; the log stays readable."""
    await service.delete_webhook(ctx.session, ctx.principal, webhook_id,
                                 expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(webhook_id: uuid.UUID, request: Request, ctx: Ctx,
                        body: RotateSecretRequest | None = None) -> SecretRotated:
    """A new secret, shown this once. For `overlap_seconds` (default 24 h) the previous
    secret signs every delivery too, so a receiver can switch without missing one."""
    settings = resources(request).settings
    overlap = timedelta(seconds=body.overlap_seconds) if body and \
        body.overlap_seconds is not None else timedelta(
            hours=settings.webhook_rotation_overlap_hours)
    sub, secret = await service.rotate_secret(ctx.session, ctx.principal, webhook_id,
                                              overlap=overlap)
    return SecretRotated(secret=secret, previous_secret_expires_at=sub.previous_secret_expires_at)


@router.post("/{webhook_id}/test", response_model=TestResult)
async def test_webhook(
    webhook_id: uuid.UUID, request: Request,
    credentials: Bearer,
) -> TestResult:
    """Send a signed `webhook.test` payload now (also to a paused subscription) and answer
    with the receiver's status and latency. Logged with the deliveries; never retried."""
    principal = await authenticate(request, credentials)
    res = resources(request)
    claimed, outcome = await webhook_sender.test_ping(res.sessions, principal, webhook_id,
                                                      res.settings)
    return TestResult(delivery_id=claimed.id, success=outcome.success,
                      status_code=outcome.status_code, latency_ms=outcome.latency_ms,
                      error=outcome.error)


@router.get("/{webhook_id}/deliveries", response_model=ListResponse[DeliveryRead])
async def list_deliveries(webhook_id: uuid.UUID, request: Request, ctx: Ctx,
                          page: PageDep) -> ListResponse[DeliveryRead]:
    """The delivery log, newest first: body, status, attempts with request headers (no
    secrets), response status, latency and error. Filters: `status=failed`,
    `event_type=…`, `event_id=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_deliveries(
        ctx.session, ctx.principal, webhook_id,
        conditions=await query_conditions(ctx.session, service.DELIVERIES_SPEC, request), page=page)
    return ListResponse(data=await service.delivery_reads(ctx.session, rows),
                        next_cursor=cursor)


@router.post("/{webhook_id}/replay", response_model=ReplayResult)
async def replay(webhook_id: uuid.UUID, body: ReplayRequest, ctx: Ctx) -> ReplayResult:
    """Deliver again every event after the cursor `after` (the cursors of
    GET /api/v1/events) that the subscription matches, `limit` events a call; page on with
    `next_cursor` while `has_more`. Each event keeps its delivery's `webhook-id`; one still
    waiting is not scheduled twice."""
    return await service.replay(ctx.session, ctx.principal, webhook_id, body)
