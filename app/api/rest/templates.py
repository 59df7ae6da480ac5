"""REST: /api/v1/templates — parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.outbox.service import entity_history
from app.domain.templates import service
from app.domain.templates.models import Template
from app.domain.templates.schemas import (
    PreviewContext,
    TemplateCreate,
    TemplatePreview,
    TemplatePreviewRequest,
    TemplateRead,
    TemplateUpdate,
)

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


def _read(template: Template) -> TemplateRead:
    return TemplateRead.model_validate(template, from_attributes=True)


@router.get("", response_model=ListResponse[TemplateRead])
async def list_templates(request: Request, ctx: Ctx, page: PageDep,
                         include_deleted: bool = False) -> ListResponse[TemplateRead]:
    """List templates, newest first. Filters: `kind=email`, `name=…`, `format=html`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_templates(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page, include_deleted=include_deleted)
    return ListResponse(data=[_read(t) for t in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TemplateRead)
async def create_template(body: TemplateCreate, ctx: Ctx, response: Response) -> TemplateRead:
    """Owners and admins only. The subject and body are checked: a syntax error or a reach
    for Python internals (`{{ ''.__class__ }}`) is a 422 pointing at the part."""
    template = await service.create_template(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/templates/{template.id}"
    set_etag(response, template.version)
    return _read(template)


@router.post("/preview", response_model=TemplatePreview)
async def preview_unsaved(body: TemplatePreviewRequest, ctx: Ctx) -> TemplatePreview:
    """Render a template that is not saved, with the variables of the given records
    (`contact_id`, `deal_id`, `company_id`, `task_id`) and/or explicit `variables`."""
    return await service.preview(ctx.session, ctx.principal, kind=body.kind,
                                 subject=body.subject, body=body.body, format_=body.format,
                                 context=body, loc=["body"])


@router.get("/{template_id}", response_model=TemplateRead)
async def get_template(template_id: uuid.UUID, ctx: Ctx, response: Response) -> TemplateRead:
    template = await service.get_template(ctx.session, ctx.principal, template_id)
    set_etag(response, template.version)
    return _read(template)


@router.post("/{template_id}/preview", response_model=TemplatePreview)
async def preview_template(template_id: uuid.UUID, ctx: Ctx,
                           body: PreviewContext | None = None) -> TemplatePreview:
    """Render the saved template with the records' variables; nothing is written."""
    template = await service.get_template(ctx.session, ctx.principal, template_id)
    return await service.preview(ctx.session, ctx.principal, kind=template.kind,
                                 subject=template.subject, body=template.body,
                                 format_=template.format, context=body or PreviewContext(),
                                 loc=["template"])


@router.patch("/{template_id}", response_model=TemplateRead)
async def update_template(template_id: uuid.UUID, body: TemplateUpdate, request: Request,
                          ctx: Ctx, response: Response) -> TemplateRead:
    """JSON merge-patch (owners and admins). `If-Match: "<version>"` refuses a lost
    update (412)."""
    template = await service.update_template(ctx.session, ctx.principal, template_id, body,
                                             expected_version=expected_version(request))
    set_etag(response, template.version)
    return _read(template)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(template_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete (owners and admins): restorable for 30 days."""
    await service.delete_template(ctx.session, ctx.principal, template_id,
                                  expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{template_id}/restore", response_model=TemplateRead)
async def restore_template(template_id: uuid.UUID, ctx: Ctx,
                           response: Response) -> TemplateRead:
    template = await service.restore_template(ctx.session, ctx.principal, template_id)
    set_etag(response, template.version)
    return _read(template)


@router.get("/{template_id}/history", response_model=ListResponse[EventRead])
async def template_history(template_id: uuid.UUID, ctx: Ctx,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values."""
    await service.get_template(ctx.session, ctx.principal, template_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [template_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
