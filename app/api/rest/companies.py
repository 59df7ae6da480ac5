"""REST: /api/v1/companies — parse, call the service, shape the response."""

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
from app.domain.companies import service
from app.domain.companies.schemas import (
    CompanyCreate,
    CompanyRead,
    CompanyUpdate,
)
from app.domain.outbox.service import entity_history
from app.domain.shared.batch import BatchOps, BatchRequest, BatchResponse, run_batch

router = APIRouter(prefix="/api/v1/companies", tags=["companies"])

BATCH_OPS = BatchOps(schema=CompanyCreate, create=service.create_company,
                     find_existing=service.upsert_target, update_existing=service.apply_upsert,
                     upsert_keys=("external_id",))


@router.get("", response_model=ListResponse[CompanyRead])
async def list_companies(request: Request, ctx: Ctx, page: PageDep,
                        q: Annotated[str | None, Query(max_length=200,
                                                       description="Search name, domain, "
                                                       "emails and phones")] = None,
                        include_deleted: bool = False) -> ListResponse[CompanyRead]:
    """List companies. Filters: `<field>=v` or `<field>__<op>=v` (ops: eq, ne, gt, gte, lt,
    lte, in, nin, has, hasany, contains, startswith, isnull), `custom_fields.<key>__<op>=v`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_companies(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        q=q, page=page, include_deleted=include_deleted)
    return ListResponse(data=[service.to_read(c) for c in rows], next_cursor=cursor)


@router.post("/search", response_model=ListResponse[CompanyRead])
async def search_companies(body: SearchRequest, ctx: Ctx) -> ListResponse[CompanyRead]:
    """The list filters as JSON, with `and` / `or` / `not` groups."""
    conditions, page = await search_conditions(ctx.session, service.LIST_SPEC, body)
    rows, cursor = await service.list_companies(ctx.session, ctx.principal,
                                               conditions=conditions, q=body.q, page=page)
    return ListResponse(data=[service.to_read(c) for c in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CompanyRead)
async def create_company(body: CompanyCreate, ctx: Ctx, response: Response) -> CompanyRead:
    company = await service.create_company(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/companies/{company.id}"
    set_etag(response, company.version)
    return service.to_read(company)


@router.post("/batch", response_model=BatchResponse)
async def batch_companies(body: BatchRequest, ctx: Ctx) -> BatchResponse:
    """Up to 1,000 creates (or upserts with `upsert_on=external_id`); a result per item."""
    results = await run_batch(ctx.session, ctx.principal, BATCH_OPS, body.items, body.upsert_on)
    return BatchResponse.model_validate({"results": results})


@router.get("/{company_id}", response_model=CompanyRead)
async def get_company(company_id: uuid.UUID, ctx: Ctx, response: Response) -> CompanyRead:
    company = await service.get_company(ctx.session, ctx.principal, company_id)
    set_etag(response, company.version)
    return service.to_read(company)


@router.patch("/{company_id}", response_model=CompanyRead)
async def update_company(company_id: uuid.UUID, body: CompanyUpdate, request: Request,
                         ctx: Ctx, response: Response) -> CompanyRead:
    """JSON merge-patch. Send `If-Match: "<version>"` to refuse a lost update (412)."""
    company = await service.update_company(ctx.session, ctx.principal, company_id, body,
                                           expected_version=expected_version(request))
    set_etag(response, company.version)
    return service.to_read(company)


@router.delete("/{company_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_company(company_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: restorable for 30 days; the history stays."""
    await service.delete_company(ctx.session, ctx.principal, company_id,
                                 expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{company_id}/restore", response_model=CompanyRead)
async def restore_company(company_id: uuid.UUID, ctx: Ctx, response: Response) -> CompanyRead:
    company = await service.restore_company(ctx.session, ctx.principal, company_id)
    set_etag(response, company.version)
    return service.to_read(company)


@router.get("/{company_id}/history", response_model=ListResponse[EventRead])
async def company_history(company_id: uuid.UUID, ctx: Ctx,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50,
                          cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values (survives deletion)."""
    await service.get_company(ctx.session, ctx.principal, company_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [company_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
