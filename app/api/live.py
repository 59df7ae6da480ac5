"""Following the event log live: the loop behind the SSE stream and the GraphQL subscription.

It is the poller of decision 0004 run by the server (decision 0017): every `poll` seconds it
reads the log after its cursor with `read_feed` (same horizon, same visibility, same types) in a
short transaction of its own, so an idle follower holds no connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.outbox.feed import read_feed
from app.domain.outbox.models import Event
from app.domain.outbox.service import encode_event_cursor, latest_event_cursor
from app.domain.shared.principal import Principal

BATCH = 200
REAUTH_SECONDS = 30.0  # a revoked key or a changed role stops or narrows the stream


async def starting_cursor(sessions: async_sessionmaker[AsyncSession],
                          principal: Principal) -> str | None:
    """Where a follower without a cursor starts: after the newest event served now."""
    async with unit_of_work(sessions, principal.workspace_id) as session:
        return await latest_event_cursor(session)


async def follow_events(sessions: async_sessionmaker[AsyncSession], principal: Principal,
                        reauthenticate: Callable[[], Awaitable[Principal]], *,
                        after: str | None, types: list[str] | None, poll: float
                        ) -> AsyncIterator[tuple[str, Event] | None]:
    """Yields (cursor, event) in commit order, and None after each empty poll (a caller's
    chance for a keep-alive or a disconnect check). `reauthenticate` runs every 30 s and may
    raise to end the stream."""
    cursor = after
    checked = time.monotonic()
    while True:
        if time.monotonic() - checked > REAUTH_SECONDS:
            principal = await reauthenticate()
            checked = time.monotonic()
        async with unit_of_work(sessions, principal.workspace_id) as session:
            batch, _ = await read_feed(session, principal, after=cursor, types=types,
                                       limit=BATCH)
        for event in batch:
            cursor = encode_event_cursor(event.txid, event.seq)
            yield cursor, event
        if len(batch) < BATCH:
            yield None
            await asyncio.sleep(poll)
