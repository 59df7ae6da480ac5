"""REST: /api/v1/deals — parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Bearer, Ctx, PageDep, below_the_orm
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
from app.domain.deals import moves, queries, service
from app.domain.deals.models import Deal
from app.domain.deals.schemas import (
    DealCreate,
    DealMove,
    DealRead,
    DealUpdate,
    StageIntervalRead,
)
from app.domain.outbox.service import entity_history
from app.domain.shared.batch import BatchOps, BatchRequest, BatchResponse, run_batch
from app.domain.shared.listing import Page, check_limit

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])

BATCH_OPS = BatchOps(schema=DealCreate, create=service.create_deal,
                     find_existing=service.upsert_target, update_existing=service.apply_upsert,
                     upsert_keys=("external_id",))


async def _read(ctx: Ctx, response: Response, deal: Deal) -> DealRead:
    set_etag(response, deal.version)
    return await queries.read_one(ctx.session, deal)


@router.get("", response_model=ListResponse[DealRead])
async def list_deals(request: Request, ctx: Ctx, page: PageDep,
                     q: Annotated[str | None, Query(max_length=200, description=(
                         "Search the title, external id and the deal's contacts"))] = None,
                     include_deleted: bool = False) -> ListResponse[DealRead]:
    """List deals, newest first. Filters: `<field>=v` or `<field>__<op>=v` (ops: eq, ne, gt,
    gte, lt, lte, in, nin, has, hasany, contains, startswith, isnull) on pipeline_id, stage_id,
    status, owner_id, company_id, contact_id, amount, currency, expected_close_date, tags,
    score_class, probability, source, lost_reason, created_at, updated_at, …;
    `stage.name`, `company.name`; `custom_fields.<key>`. The board's `next_cursor` continues
    here with `stage_id=<stage>`."""
    reject_repeated_params(request)
    rows, cursor = await queries.list_deals(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, queries.LIST_SPEC, request),
        q=q, page=page, include_deleted=include_deleted)
    return ListResponse(data=await queries.reads(ctx.session, rows), next_cursor=cursor)


@router.post("/search", response_model=ListResponse[DealRead])
async def search_deals(body: SearchRequest, ctx: Ctx) -> ListResponse[DealRead]:
    """The list filters as JSON, with `and` / `or` / `not` groups."""
    conditions, page = await search_conditions(ctx.session, queries.LIST_SPEC, body)
    rows, cursor = await queries.list_deals(ctx.session, ctx.principal, conditions=conditions,
                                            q=body.q, page=page)
    return ListResponse(data=await queries.reads(ctx.session, rows), next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DealRead)
async def create_deal(body: DealCreate, ctx: Ctx, response: Response) -> DealRead:
    """Create a deal: in the default pipeline's first open stage unless told otherwise."""
    deal = await service.create_deal(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/deals/{deal.id}"
    return await _read(ctx, response, deal)


@router.post("/batch", response_model=BatchResponse)
async def batch_deals(body: BatchRequest, ctx: Ctx) -> BatchResponse:
    """Up to 1,000 creates (or upserts with `upsert_on=external_id`); a result per item."""
    results = await run_batch(ctx.session, ctx.principal, BATCH_OPS, body.items, body.upsert_on)
    return BatchResponse.model_validate({"results": results})


@router.get("/{deal_id}", response_model=DealRead)
async def get_deal(deal_id: uuid.UUID, ctx: Ctx, response: Response) -> DealRead:
    return await _read(ctx, response, await service.get_deal(ctx.session, ctx.principal,
                                                             deal_id))


@router.patch("/{deal_id}", response_model=DealRead)
async def update_deal(deal_id: uuid.UUID, body: DealUpdate, request: Request, ctx: Ctx,
                      response: Response) -> DealRead:
    """JSON merge-patch. A new `stage_id` (with `pipeline_id` for another pipeline) moves the
    deal. Send `If-Match: "<version>"` to refuse a lost update (412)."""
    deal = await service.update_deal(ctx.session, ctx.principal, deal_id, body,
                                     expected_version=expected_version(request))
    set_etag(response, deal.version)
    return deal


@router.post("/{deal_id}/move", response_model=DealRead)
async def move_deal(deal_id: uuid.UUID, body: DealMove, request: Request, response: Response,
                    credentials: Bearer) -> DealRead:
    """Move the deal to a stage; a lost stage needs `lost_reason` from the workspace list."""
    # A board's drag, all day: a plain move runs on the driver connection with no ORM
    # session (decisions 0062, 0063); anything else through the ORM, which reports it.
    version = expected_version(request)
    deal = await below_the_orm(
        request, credentials,
        lambda conn, principal: moves.plain_move_on(conn, principal, deal_id, body,
                                                    expected_version=version),
        lambda session, principal, tried: service.move_deal(
            session, principal, deal_id, body, expected_version=version, plain=not tried))
    set_etag(response, deal.version)
    return deal


@router.delete("/{deal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deal(deal_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: restorable for 30 days; the history and stage history stay."""
    await service.delete_deal(ctx.session, ctx.principal, deal_id,
                              expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{deal_id}/restore", response_model=DealRead)
async def restore_deal(deal_id: uuid.UUID, ctx: Ctx, response: Response) -> DealRead:
    deal = await service.restore_deal(ctx.session, ctx.principal, deal_id)
    return await _read(ctx, response, deal)


@router.get("/{deal_id}/history", response_model=ListResponse[EventRead])
async def deal_history(deal_id: uuid.UUID, ctx: Ctx,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values (survives deletion)."""
    await service.get_deal(ctx.session, ctx.principal, deal_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [deal_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)


@router.get("/{deal_id}/stage-history", response_model=ListResponse[StageIntervalRead])
async def deal_stage_history(deal_id: uuid.UUID, ctx: Ctx,
                             limit: Annotated[int, Query(ge=1, le=200)] = 100,
                             cursor: str | None = None) -> ListResponse[StageIntervalRead]:
    """The deal's stays in stages, oldest first: stage (by its current name), entered and
    left at, by whom, from which stage, and for how long."""
    await service.get_deal(ctx.session, ctx.principal, deal_id, include_deleted=True)
    rows, next_cursor = await queries.stage_history(
        ctx.session, deal_id, Page(limit=check_limit(limit, ["query", "limit"]), cursor=cursor,
                                   sort=None))
    return ListResponse(data=rows, next_cursor=next_cursor)

