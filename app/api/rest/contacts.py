"""REST: /api/v1/contacts — parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Bearer, Ctx, PageDep, below_the_orm
from app.api.rest.common import (
    ListResponse,
    SearchRequest,
    expected_version,
    page_of,
    query_conditions,
    record_response,
    reject_repeated_params,
    search_conditions,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.contacts import service
from app.domain.contacts.schemas import (
    ContactCreate,
    ContactMerge,
    ContactRead,
    ContactUpdate,
)
from app.domain.outbox.service import entity_history
from app.domain.shared.batch import BatchOps, BatchRequest, BatchResponse, run_batch

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])

BATCH_OPS = BatchOps(schema=ContactCreate, create=service.create_contact,
                     find_existing=service.upsert_target, update_existing=service.apply_upsert,
                     bulk_create=service.create_contacts_bulk)


@router.get("", response_model=ListResponse[ContactRead])
async def list_contacts(request: Request, ctx: Ctx, page: PageDep,
                        q: Annotated[str | None, Query(max_length=200,
                                                       description="Search names, emails, "
                                                       "phones and company name")] = None,
                        include_deleted: bool = False) -> ListResponse[ContactRead]:
    """List contacts. Filters: `<field>=v` or `<field>__<op>=v` (ops: eq, ne, gt, gte, lt,
    lte, in, nin, has, hasany, contains, startswith, isnull), `company.<field>__<op>=v`,
    `custom_fields.<key>__<op>=v`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_contact_rows(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        q=q, page=page, include_deleted=include_deleted)
    return page_of(ContactRead, rows, cursor)


@router.post("/search", response_model=ListResponse[ContactRead])
async def search_contacts(body: SearchRequest, ctx: Ctx) -> ListResponse[ContactRead]:
    """The list filters as JSON, with `and` / `or` / `not` groups."""
    conditions, page = await search_conditions(ctx.session, service.LIST_SPEC, body)
    rows, cursor = await service.list_contact_rows(ctx.session, ctx.principal,
                                                   conditions=conditions, q=body.q, page=page)
    return page_of(ContactRead, rows, cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContactRead)
async def create_contact(body: ContactCreate, ctx: Ctx, response: Response) -> ContactRead:
    """Create a card. A phone or email that another card has is a 409 naming that card."""
    contact = await service.create_contact(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/contacts/{contact.id}"
    set_etag(response, contact.version)
    return service.to_read(contact)


@router.post("/batch", response_model=BatchResponse)
async def batch_contacts(body: BatchRequest, ctx: Ctx) -> BatchResponse:
    """Up to 1,000 creates (or upserts with `upsert_on`); a result per item."""
    results = await run_batch(ctx.session, ctx.principal, BATCH_OPS, body.items, body.upsert_on)
    return BatchResponse.model_validate({"results": results})


@router.get("/lookup", response_model=ContactRead)
async def lookup_contact(request: Request, credentials: Bearer,
                         phone: Annotated[str | None, Query(max_length=50)] = None,
                         email: Annotated[str | None, Query(max_length=320)] = None
                         ) -> Response:
    """Find the card by a phone in any common format, or by email."""
    # One statement in one round trip for a cached caller, as the card's GET (decision 0069).
    contact = await below_the_orm(
        request, credentials,
        lambda conn, principal: service.lookup_contact_alone(conn, principal, phone=phone,
                                                             email=email),
        lambda session, principal, _tried: service.lookup_contact(session, principal,
                                                                  phone=phone, email=email),
        one_statement=True)
    return record_response(contact, contact.version)


@router.get("/{contact_id}", response_model=ContactRead)
async def get_contact(contact_id: uuid.UUID, request: Request,
                      credentials: Bearer) -> Response:
    # The card a phone or a frontend opens all day: one statement in one round trip, with no
    # ORM session when the caller is cached (decisions 0063, 0067).
    contact = await below_the_orm(
        request, credentials,
        lambda conn, principal: service.read_contact_alone(conn, principal, contact_id),
        lambda session, principal, _tried: service.read_contact(session, principal,
                                                                contact_id),
        one_statement=True)
    return record_response(contact, contact.version)


@router.patch("/{contact_id}", response_model=ContactRead)
async def update_contact(contact_id: uuid.UUID, body: ContactUpdate, request: Request,
                         ctx: Ctx, response: Response) -> ContactRead:
    """JSON merge-patch. Send `If-Match: "<version>"` to refuse a lost update (412)."""
    contact = await service.update_contact(ctx.session, ctx.principal, contact_id, body,
                                           expected_version=expected_version(request))
    set_etag(response, contact.version)
    return service.to_read(contact)


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_contact(contact_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: restorable for 30 days; the history stays."""
    await service.delete_contact(ctx.session, ctx.principal, contact_id,
                                 expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{contact_id}/restore", response_model=ContactRead)
async def restore_contact(contact_id: uuid.UUID, ctx: Ctx, response: Response) -> ContactRead:
    contact = await service.restore_contact(ctx.session, ctx.principal, contact_id)
    set_etag(response, contact.version)
    return service.to_read(contact)


@router.post("/{contact_id}/merge", response_model=ContactRead)
async def merge_contact(contact_id: uuid.UUID, body: ContactMerge, ctx: Ctx,
                        response: Response) -> ContactRead:
    """Merge the duplicate `source_id` into this card; its history moves with it."""
    contact = await service.merge_contacts(ctx.session, ctx.principal, contact_id,
                                           body.source_id)
    set_etag(response, contact.version)
    return service.to_read(contact)


@router.get("/{contact_id}/history", response_model=ListResponse[EventRead])
async def contact_history(contact_id: uuid.UUID, ctx: Ctx,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50,
                          cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values (survives deletion)."""
    await service.get_contact(ctx.session, ctx.principal, contact_id, include_deleted=True)
    ids = await service.history_ids(ctx.session, contact_id)
    events, next_cursor = await entity_history(ctx.session, ids, after=cursor, limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
