"""REST: /api/v1/{contacts,companies,deals}/{id}/timeline — parse, call the service, shape
the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import Ctx
from app.api.rest.common import ListResponse
from app.domain.timeline import service
from app.domain.timeline.service import TimelineEntry

router = APIRouter(tags=["timeline"])

Limit = Annotated[int, Query(description="Page size, 1–200")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Types = Annotated[str | None, Query(
    max_length=200, description="Comma-separated entry kinds to include: activity, task, "
                                "stage_change, change, created, document, message (default "
                                "all)")]

DESCRIPTION = """Everything that happened to the {what}, newest first: activities linked to
it, its tasks (created, completed), stage changes of {deals}, and changes of its own fields —
each entry with who or what caused it (`actor`) and a one-line `summary`. Keyset paging:
follow `next_cursor`; entries with the same time never repeat or go missing across pages.
404 when the {what} does not exist or is not visible to you."""


async def _page(ctx: Ctx, record_type: str, record_id: uuid.UUID, limit: int,
                cursor: str | None, types: str | None) -> ListResponse[TimelineEntry]:
    kinds = service.parse_kinds(types, ["query", "types"])
    entries, next_cursor = await service.timeline(ctx.session, ctx.principal, record_type,
                                                  record_id, limit=limit, cursor=cursor,
                                                  kinds=kinds)
    return ListResponse(data=[entry for entry, _ in entries], next_cursor=next_cursor)


@router.get("/api/v1/contacts/{contact_id}/timeline", response_model=ListResponse[TimelineEntry],
            description=DESCRIPTION.format(what="contact", deals="its deals"))
async def contact_timeline(contact_id: uuid.UUID, ctx: Ctx, limit: Limit = 50,
                           cursor: Cursor = None, types: Types = None
                           ) -> ListResponse[TimelineEntry]:
    return await _page(ctx, "contact", contact_id, limit, cursor, types)


@router.get("/api/v1/companies/{company_id}/timeline",
            response_model=ListResponse[TimelineEntry],
            description=DESCRIPTION.format(what="company", deals="its deals"))
async def company_timeline(company_id: uuid.UUID, ctx: Ctx, limit: Limit = 50,
                           cursor: Cursor = None, types: Types = None
                           ) -> ListResponse[TimelineEntry]:
    return await _page(ctx, "company", company_id, limit, cursor, types)


@router.get("/api/v1/deals/{deal_id}/timeline", response_model=ListResponse[TimelineEntry],
            description=DESCRIPTION.format(what="deal", deals="the deal"))
async def deal_timeline(deal_id: uuid.UUID, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None,
                        types: Types = None) -> ListResponse[TimelineEntry]:
    return await _page(ctx, "deal", deal_id, limit, cursor, types)
