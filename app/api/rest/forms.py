"""REST: /api/v1/forms — website form definitions (admins), and /api/v1/form-submissions.

The public side (submissions, embed.js, the public definition) is in `form_public.py`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest import form_public
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.forms import service
from app.domain.forms.models import Form
from app.domain.forms.schemas import FormCreate, FormRead, FormUpdate, SubmissionRead
from app.domain.outbox.service import entity_history

router = APIRouter(prefix="/api/v1/forms", tags=["forms"])
submissions = APIRouter(prefix="/api/v1/form-submissions", tags=["forms"])


def _read(request: Request, response: Response, form: Form) -> FormRead:
    # This process answers the form's public URLs with what was just saved; other processes
    # within RELATA_FORM_CACHE_SECONDS.
    form_public.forget(request.app, form.form_key)
    set_etag(response, form.version)
    return service.to_read(form)


@router.get("", response_model=ListResponse[FormRead])
async def list_forms(request: Request, ctx: Ctx, page: PageDep,
                     include_deleted: bool = False) -> ListResponse[FormRead]:
    """The workspace's forms, newest first. Filters: `name`, `enabled`, `form_key`,
    `pipeline_id`, `created_at`, `updated_at`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_forms(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page, include_deleted=include_deleted)
    return ListResponse(data=[service.to_read(f) for f in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FormRead)
async def create_form(body: FormCreate, request: Request, ctx: Ctx,
                      response: Response) -> FormRead:
    """A form: its `fields` (each `maps_to` a card or deal field, or kept as data), the
    `pipeline_id`/`stage_id` its deals start in, the `owner` strategy, the
    `allowed_origins` that may post it from a browser, and the success message or
    `redirect_url`. The answer carries the public `form_key`, `submit_url` and `embed_url`.
    Owners and admins only."""
    form = await service.create_form(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/forms/{form.id}"
    return _read(request, response, form)


@router.get("/{form_id}", response_model=FormRead)
async def get_form(form_id: uuid.UUID, ctx: Ctx, response: Response) -> FormRead:
    form = await service.get_form(ctx.session, ctx.principal, form_id)
    set_etag(response, form.version)
    return service.to_read(form)


@router.patch("/{form_id}", response_model=FormRead)
async def update_form(form_id: uuid.UUID, body: FormUpdate, request: Request, ctx: Ctx,
                      response: Response) -> FormRead:
    """JSON merge-patch; `fields` and `allowed_origins` are replaced whole.
    `{"enabled": false}` takes the form offline (its URLs answer 404)."""
    form = await service.update_form(ctx.session, ctx.principal, form_id, body,
                                     expected_version=expected_version(request))
    return _read(request, response, form)


@router.post("/{form_id}/rotate-key", response_model=FormRead)
async def rotate_form_key(form_id: uuid.UUID, request: Request, ctx: Ctx,
                          response: Response) -> FormRead:
    """A new `form_key`: the old embed code and submit URL stop working (404)."""
    old = (await service.get_form(ctx.session, ctx.principal, form_id)).form_key
    form = await service.rotate_key(ctx.session, ctx.principal, form_id,
                                    expected_version=expected_version(request))
    form_public.forget(request.app, old)
    return _read(request, response, form)


@router.delete("/{form_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_form(form_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: the public URLs answer 404; the submissions stay; restorable for 30
    days."""
    form = await service.delete_form(ctx.session, ctx.principal, form_id,
                                     expected_version=expected_version(request))
    form_public.forget(request.app, form.form_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{form_id}/restore", response_model=FormRead)
async def restore_form(form_id: uuid.UUID, request: Request, ctx: Ctx,
                       response: Response) -> FormRead:
    form = await service.restore_form(ctx.session, ctx.principal, form_id)
    return _read(request, response, form)


@router.get("/{form_id}/history", response_model=ListResponse[EventRead])
async def form_history(form_id: uuid.UUID, ctx: Ctx,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change of the form with actor, time and before/after values."""
    await service.get_form(ctx.session, ctx.principal, form_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [form_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)


@submissions.get("", response_model=ListResponse[SubmissionRead])
async def list_submissions(request: Request, ctx: Ctx,
                           page: PageDep) -> ListResponse[SubmissionRead]:
    """Accepted submissions, newest first, with the card, deal and inbox item each made.
    Filters: `form_id`, `contact_id`, `deal_id`, `created_at`. Owners and admins only."""
    reject_repeated_params(request)
    rows, cursor = await service.list_submissions(
        ctx.session, ctx.principal,
        conditions=await query_conditions(ctx.session, service.SUBMISSIONS_SPEC, request), page=page)
    return ListResponse(data=[service.submission_read(s) for s in rows], next_cursor=cursor)


@submissions.get("/{submission_id}", response_model=SubmissionRead)
async def get_submission(submission_id: uuid.UUID, ctx: Ctx) -> SubmissionRead:
    return service.submission_read(
        await service.get_submission(ctx.session, ctx.principal, submission_id))
