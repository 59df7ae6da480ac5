"""REST: /api/v1/events — the workspace's event log in commit order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import Ctx
from app.api.rest.common import ListResponse
from app.api.rest.history import EventRead, event_read
from app.domain.outbox.feed import read_feed

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("", response_model=ListResponse[EventRead])
async def read_events(ctx: Ctx,
                      after: Annotated[str | None, Query(description="Cursor to continue from")]
                      = None,
                      types: Annotated[str | None, Query(description="Comma-separated types")]
                      = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 100) -> ListResponse[EventRead]:
    """Events after the cursor, oldest first. `next_cursor` is where to continue from next
    time (it stays put when there is nothing new), so a poller never misses or repeats one.
    Agents and managers see only events of the contacts and companies they can see."""
    events, cursor = await read_feed(ctx.session, ctx.principal, after=after, limit=limit,
                                     types=[t for t in (types or "").split(",") if t] or None)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=cursor)
