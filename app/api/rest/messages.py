"""REST: /api/v1/messages — queue an email or SMS, read its delivery status."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import ListResponse, query_conditions, reject_repeated_params, set_etag
from app.domain.messages import service
from app.domain.messages.schemas import MessageCreate, MessageRead

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MessageRead)
async def queue_message(body: MessageCreate, ctx: Ctx, response: Response) -> MessageRead:
    """Send an email or SMS to a contact (its first address or number) or to an explicit
    `to`, now or at `send_at`, from a template or a subject and body, with documents attached
    (emails). The message is rendered and stored now (`queued` or `scheduled`) and sent by
    the worker within seconds; follow its `status` here or on the contact's timeline."""
    message = await service.queue_message(
        ctx.session, ctx.principal, channel=body.channel, contact_id=body.contact_id,
        to=body.to, template_id=body.template_id, subject=body.subject, body=body.body,
        deal_id=body.deal_id, send_at=body.send_at, document_ids=body.document_ids,
        variables_from={"variables": body.variables} if body.variables else None)
    response.headers["Location"] = f"/api/v1/messages/{message.id}"
    set_etag(response, message.version)
    return service.to_read(message)


@router.get("", response_model=ListResponse[MessageRead])
async def list_messages(request: Request, ctx: Ctx, page: PageDep) -> ListResponse[MessageRead]:
    """Messages, newest first. Filters: `channel=sms`, `status=failed`, `contact_id=…`,
    `deal_id=…`, `sent_at__gte=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_messages(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page)
    return ListResponse(data=[service.to_read(m) for m in rows], next_cursor=cursor)


@router.get("/{message_id}", response_model=MessageRead)
async def get_message(message_id: uuid.UUID, ctx: Ctx, response: Response) -> MessageRead:
    message = await service.get_message(ctx.session, ctx.principal, message_id)
    set_etag(response, message.version)
    return service.to_read(message)
