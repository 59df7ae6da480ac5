"""REST: /api/v1/inbox — every incoming lead (calls, forms, emails, messages) in one list,
accepted into a deal, linked to an existing card, or declined."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from app.api.deps import Ctx, PageDep
from app.api.rest.common import ListResponse, query_conditions, reject_repeated_params, set_etag
from app.domain.inbox import service
from app.domain.inbox.schemas import InboxAccept, InboxDecline, InboxItemRead, InboxLink

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])


@router.get("", response_model=ListResponse[InboxItemRead])
async def list_inbox(request: Request, ctx: Ctx, page: PageDep) -> ListResponse[InboxItemRead]:
    """Incoming leads, newest first; you see those whose card you see. Filters:
    `status=new` (new, accepted, linked, declined), `channel=call` (call, form, email, sms,
    message), `contact_id=…`, `received_at__gte=…`, `first_response_at__isnull=true`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_items(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page)
    return ListResponse(data=[service.to_read(i) for i in rows], next_cursor=cursor)


@router.get("/{item_id}", response_model=InboxItemRead)
async def get_inbox_item(item_id: uuid.UUID, ctx: Ctx, response: Response) -> InboxItemRead:
    item = await service.get_item(ctx.session, ctx.principal, item_id)
    set_etag(response, item.version)
    return service.to_read(item)


@router.post("/{item_id}/accept", response_model=InboxItemRead)
async def accept_inbox_item(item_id: uuid.UUID, body: InboxAccept, ctx: Ctx,
                            response: Response) -> InboxItemRead:
    """Turn a new lead into a deal on its card: in `stage_id` / `pipeline_id` (default the
    default pipeline's first open stage), titled `title`, owned by `owner_id` (default you;
    a card without an owner gets the same). 409 unless the item is new."""
    item = await service.accept_item(ctx.session, ctx.principal, item_id, body)
    set_etag(response, item.version)
    return service.to_read(item)


@router.post("/{item_id}/link", response_model=InboxItemRead)
async def link_inbox_item(item_id: uuid.UUID, body: InboxLink, ctx: Ctx,
                          response: Response) -> InboxItemRead:
    """The lead belongs to an existing card. If the lead had created a card of its own (an
    unknown number or address), that card is merged into `contact_id`: its phone or email,
    the call or email and any task move over. 409 unless the item is new."""
    item = await service.link_item(ctx.session, ctx.principal, item_id, body.contact_id)
    set_etag(response, item.version)
    return service.to_read(item)


@router.post("/{item_id}/decline", response_model=InboxItemRead)
async def decline_inbox_item(item_id: uuid.UUID, body: InboxDecline, ctx: Ctx,
                             response: Response) -> InboxItemRead:
    """Not a lead (spam, a wrong number), with a reason. 409 unless the item is new."""
    item = await service.decline_item(ctx.session, ctx.principal, item_id, body.reason)
    set_etag(response, item.version)
    return service.to_read(item)
