"""REST: /api/v1/notifications — what the current user has been told; mark read."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.api.deps import Ctx, PageDep
from app.api.rest.common import ListResponse, reject_repeated_params
from app.domain.notifications import service
from app.domain.notifications.models import Notification
from app.domain.notifications.schemas import NotificationRead, ReadAllResult, UnreadCount
from app.domain.shared.listing import conditions_from_query

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

RESERVED = {"limit", "cursor", "sort", "unread"}


def to_read(notification: Notification) -> NotificationRead:
    return NotificationRead.model_validate(notification, from_attributes=True)


@router.get("", response_model=ListResponse[NotificationRead])
async def list_notifications(request: Request, ctx: Ctx, page: PageDep,
                             unread: Annotated[bool | None, Query(
                                 description="true: only unread; false: only read")] = None
                             ) -> ListResponse[NotificationRead]:
    """The caller's notifications, newest first. Filters as on every list: `type=…`,
    `entity_type=task`, `entity_id=…`, `created_at__gte=…`. Users only (an API key is 403)."""
    reject_repeated_params(request)
    conditions = conditions_from_query(service.LIST_SPEC, dict(request.query_params), RESERVED)
    rows, cursor = await service.list_notifications(ctx.session, ctx.principal, unread=unread,
                                                    conditions=conditions, page=page)
    return ListResponse(data=[to_read(n) for n in rows], next_cursor=cursor)


@router.get("/unread-count", response_model=UnreadCount)
async def unread_count(ctx: Ctx) -> UnreadCount:
    """How many of the caller's notifications are unread (a badge)."""
    return UnreadCount(count=await service.unread_count(ctx.session, ctx.principal))


@router.post("/read-all", response_model=ReadAllResult)
async def read_all(ctx: Ctx) -> ReadAllResult:
    """Mark every unread notification of the caller read; returns how many."""
    return ReadAllResult(count=await service.mark_all_read(ctx.session, ctx.principal))


@router.get("/{notification_id}", response_model=NotificationRead)
async def get_notification(notification_id: uuid.UUID, ctx: Ctx) -> NotificationRead:
    """One of the caller's notifications; anyone else's is 404."""
    return to_read(await service.get_notification(ctx.session, ctx.principal,
                                                  notification_id))


@router.post("/{notification_id}/read", response_model=NotificationRead)
async def mark_read(notification_id: uuid.UUID, ctx: Ctx) -> NotificationRead:
    """Mark it read (again is harmless: the first read time stays)."""
    return to_read(await service.mark_read(ctx.session, ctx.principal, notification_id))
