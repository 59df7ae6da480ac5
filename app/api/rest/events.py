"""REST: /api/v1/events — the workspace's event log in commit order, polled or streamed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from app.api.deps import Ctx, authenticate, bearer, resources
from app.api.rest.common import ListResponse
from app.api.rest.history import EventRead, event_read
from app.db import unit_of_work
from app.domain.outbox.feed import read_feed
from app.domain.outbox.service import (
    decode_event_cursor,
    encode_event_cursor,
    latest_event_cursor,
)
from app.domain.shared.errors import DomainError

router = APIRouter(prefix="/api/v1/events", tags=["events"])

TypesQuery = Annotated[str | None, Query(description="Comma-separated types")]
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
REAUTH_SECONDS = 30.0  # a revoked key or a changed role stops or narrows the stream


def _types(types: str | None) -> list[str] | None:
    return [t for t in (types or "").split(",") if t] or None


@router.get("", response_model=ListResponse[EventRead])
async def read_events(ctx: Ctx,
                      after: Annotated[str | None, Query(description="Cursor to continue from")]
                      = None,
                      types: TypesQuery = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 100) -> ListResponse[EventRead]:
    """Events after the cursor, oldest first. `next_cursor` is where to continue from next
    time (it stays put when there is nothing new), so a poller never misses or repeats one.
    Agents and managers see only events of the records they can see."""
    events, cursor = await read_feed(ctx.session, ctx.principal, after=after, limit=limit,
                                     types=_types(types))
    return ListResponse(data=[event_read(e) for e in events], next_cursor=cursor)


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-sent events: `id` is the event's cursor, "
                                            "`event` its type, `data` the event as JSON"}})
async def stream_events(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    after: Annotated[str | None, Query(description="Cursor to continue from (default: now)")]
    = None,
    types: TypesQuery = None,
    max_seconds: Annotated[int | None, Query(ge=1, le=86400, description=(
        "Close the stream after this many seconds (default: keep it open)"))] = None,
    last_event_id: Annotated[str | None, Header(description="Sent by EventSource when it "
                                                "reconnects; wins over `after`")] = None,
) -> StreamingResponse:
    """The same log live, as server-sent events, in commit order. A reconnecting client sends
    `Last-Event-ID` and continues exactly where it stopped. Without a cursor the stream starts
    at the newest event. A comment line every 15 s keeps proxies from closing it."""
    principal = await authenticate(request, credentials)
    cursor = last_event_id or after
    if cursor:
        decode_event_cursor(cursor)  # a bad cursor is a 422 now, not a broken stream later
    type_list = _types(types)
    res = resources(request)
    if cursor is None:
        async with unit_of_work(res.sessions, principal.workspace_id) as session:
            cursor = await latest_event_cursor(session)

    async def events() -> AsyncIterator[bytes]:
        nonlocal cursor, principal
        started = last_sent = checked = time.monotonic()
        yield b": connected\n\n"
        while max_seconds is None or time.monotonic() - started < max_seconds:
            if await request.is_disconnected():
                return
            if time.monotonic() - checked > REAUTH_SECONDS:
                try:
                    principal = await authenticate(request, credentials)
                except DomainError as exc:  # revoked, expired, rate limited: say so, then end
                    yield b"event: error\ndata: %s\n\n" % orjson.dumps(
                        {"status": exc.status, "detail": str(exc)})
                    return
                checked = time.monotonic()
            async with unit_of_work(res.sessions, principal.workspace_id) as session:
                batch, _ = await read_feed(session, principal, after=cursor, types=type_list,
                                           limit=200)
            for event in batch:
                cursor = encode_event_cursor(event.txid, event.seq)
                data = orjson.dumps(event_read(event).model_dump(mode="json"))
                yield b"id: %s\nevent: %s\ndata: %s\n\n" % (cursor.encode(), event.type.encode(),
                                                           data)
                last_sent = time.monotonic()
            if len(batch) < 200:
                if time.monotonic() - last_sent > HEARTBEAT_SECONDS:
                    yield b": keep-alive\n\n"
                    last_sent = time.monotonic()
                await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

