"""REST: /api/v1/events — the workspace's event log in commit order, polled or streamed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import Bearer, Ctx, authenticate, resources
from app.api.live import follow_events, starting_cursor
from app.api.rest.common import ListResponse
from app.api.rest.history import EventRead, event_read
from app.domain.outbox.feed import read_feed
from app.domain.outbox.service import decode_event_cursor
from app.domain.shared.errors import DomainError

router = APIRouter(prefix="/api/v1/events", tags=["events"])

TypesQuery = Annotated[str | None, Query(description="Comma-separated types")]
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0


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
    credentials: Bearer,
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
    res = resources(request)
    if cursor is None:
        cursor = await starting_cursor(res.sessions, principal)
    follower = follow_events(res.sessions, principal, lambda: authenticate(request, credentials),
                             after=cursor, types=_types(types), poll=POLL_SECONDS)

    async def events() -> AsyncIterator[bytes]:
        started = last_sent = time.monotonic()
        yield b": connected\n\n"
        try:
            async for item in follower:
                if item is not None:
                    event_cursor, event = item
                    data = orjson.dumps(event_read(event).model_dump(mode="json"))
                    yield b"id: %s\nevent: %s\ndata: %s\n\n" % (
                        event_cursor.encode(), event.type.encode(), data)
                    last_sent = time.monotonic()
                    continue
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    return
                if await request.is_disconnected():
                    return
                if time.monotonic() - last_sent > HEARTBEAT_SECONDS:
                    yield b": keep-alive\n\n"
                    last_sent = time.monotonic()
        except DomainError as exc:  # revoked, expired, rate limited: say so, then end
            yield b"event: error\ndata: %s\n\n" % orjson.dumps(
                {"status": exc.status, "detail": str(exc)})
        finally:
            await follower.aclose()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

