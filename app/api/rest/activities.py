"""REST: /api/v1/activities — parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import (
    ListResponse,
    SearchRequest,
    expected_version,
    query_conditions,
    reject_repeated_params,
    search_conditions,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.activities import service
from app.domain.activities.schemas import ActivityCreate, ActivityRead, ActivityUpdate
from app.domain.outbox.service import entity_history
from app.domain.shared.batch import BatchOps, BatchRequest, BatchResponse, run_batch

router = APIRouter(prefix="/api/v1/activities", tags=["activities"])

BATCH_OPS = BatchOps(schema=ActivityCreate, create=service.create_activity,
                     find_existing=service.upsert_target, update_existing=service.apply_upsert,
                     upsert_keys=("external_id",))


@router.get("", response_model=ListResponse[ActivityRead])
async def list_activities(request: Request, ctx: Ctx, page: PageDep,
                          q: Annotated[str | None, Query(max_length=200,
                                                         description="Search subject and body")
                                       ] = None,
                          include_deleted: bool = False) -> ListResponse[ActivityRead]:
    """List activities, newest `occurred_at` first. Filters: `<field>=v` or `<field>__<op>=v`
    on type, direction, channel, owner_id, contact_id, company_id, deal_id, call_status,
    occurred_at (e.g. `occurred_at__gte=2026-01-01T00:00:00Z`), created_at, updated_at, …
    You see the activities of the users, contacts, companies and deals you see."""
    reject_repeated_params(request)
    rows, cursor = await service.list_activities(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        q=q, page=page, include_deleted=include_deleted)
    return ListResponse(data=[service.to_read(a) for a in rows], next_cursor=cursor)


@router.post("/search", response_model=ListResponse[ActivityRead])
async def search_activities(body: SearchRequest, ctx: Ctx) -> ListResponse[ActivityRead]:
    """The list filters as JSON, with `and` / `or` / `not` groups."""
    conditions, page = await search_conditions(ctx.session, service.LIST_SPEC, body)
    rows, cursor = await service.list_activities(ctx.session, ctx.principal,
                                                 conditions=conditions, q=body.q, page=page)
    return ListResponse(data=[service.to_read(a) for a in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ActivityRead)
async def log_activity(body: ActivityCreate, ctx: Ctx, response: Response) -> ActivityRead:
    """Log a call, email, SMS, message, meeting or note on a contact, company and/or deal.
    Writes `activity.created`, plus `call.missed` (an incoming missed call) or `call.logged`
    (any other call); users in `mentions` are notified."""
    activity = await service.create_activity(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/activities/{activity.id}"
    set_etag(response, activity.version)
    return service.to_read(activity)


@router.post("/batch", response_model=BatchResponse)
async def batch_activities(body: BatchRequest, ctx: Ctx) -> BatchResponse:
    """Up to 1,000 activities (or upserts with `upsert_on=external_id`); a result per item."""
    results = await run_batch(ctx.session, ctx.principal, BATCH_OPS, body.items, body.upsert_on)
    return BatchResponse.model_validate({"results": results})


@router.get("/{activity_id}", response_model=ActivityRead)
async def get_activity(activity_id: uuid.UUID, ctx: Ctx, response: Response) -> ActivityRead:
    activity = await service.get_activity(ctx.session, ctx.principal, activity_id)
    set_etag(response, activity.version)
    return service.to_read(activity)


@router.patch("/{activity_id}", response_model=ActivityRead)
async def update_activity(activity_id: uuid.UUID, body: ActivityUpdate, request: Request,
                          ctx: Ctx, response: Response) -> ActivityRead:
    """JSON merge-patch. Send `If-Match: "<version>"` to refuse a lost update (412)."""
    activity = await service.update_activity(ctx.session, ctx.principal, activity_id, body,
                                             expected_version=expected_version(request))
    set_etag(response, activity.version)
    return service.to_read(activity)


@router.delete("/{activity_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_activity(activity_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: restorable for 30 days; the history stays."""
    await service.delete_activity(ctx.session, ctx.principal, activity_id,
                                  expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{activity_id}/restore", response_model=ActivityRead)
async def restore_activity(activity_id: uuid.UUID, ctx: Ctx, response: Response
                           ) -> ActivityRead:
    activity = await service.restore_activity(ctx.session, ctx.principal, activity_id)
    set_etag(response, activity.version)
    return service.to_read(activity)


@router.get("/{activity_id}/history", response_model=ListResponse[EventRead])
async def activity_history(activity_id: uuid.UUID, ctx: Ctx,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values (survives deletion)."""
    await service.get_activity(ctx.session, ctx.principal, activity_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [activity_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
