"""The outbox relay: committed events -> arq jobs.

A commit that writes events fires `NOTIFY relata_events` (a statement trigger), which wakes
the relay at once; a poll every second covers a lost notification or a dropped listening
connection. Each pass takes, per workspace, a bounded number of unhandled events
(`FOR UPDATE SKIP LOCKED`, so several workers' relays never take the same ones), marks them
dispatched and enqueues `handle_events` jobs of up to `JOB_EVENTS` events each, with
`_job_id = events:<first id>:<count>:<dispatch time>` (a job that finds an event already
handled, or taken by another job, skips it). An event still unhandled 30 s (a setting) after
its dispatch — its job lost with Redis, its worker killed, or run while another transaction
held the event — is dispatched again: PostgreSQL, not Redis, is the record of what is left
to do. The dispatch time is part of the job id because arq refuses an id while it holds the
job's result (an hour): a second dispatch of the same events under the first one's id would
be dropped, and the events left waiting.

Fairness: a workspace gets at most `PER_PASS` new events per pass and never more than
`IN_FLIGHT_CAP` events waiting, so a workspace importing a million contacts cannot push the
others' events to the back of the queue. Events that no enabled rule listens to (most of
them: `task.created`, `notification.created`, …) have nothing to run: they are marked
handled in place, without a job. Events only webhook subscriptions want are handled in
place too: their deliveries are written in bulk in the same transaction, and the worker's
webhook sender is woken (app/workers/webhooks.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import unit_of_work
from app.domain.automations.service import listened_event_types
from app.domain.outbox.models import Event
from app.domain.shared.clock import clock
from app.domain.webhooks.delivery import create_deliveries, subscribed_event_types
from app.workers.webhooks import wake as wake_webhook_sender

log = structlog.get_logger("relata.relay")

CHANNEL = "relata_events"
PER_PASS = 100
IN_FLIGHT_CAP = 500
POLL_SECONDS = 1.0
BUSY_POLL_SECONDS = 0.05
UNHEARD_BATCH = 5000
JOB_EVENTS = 20  # events per handle_events job: one transaction, shared lookups
WEBHOOK_BATCH = 1000  # events per pass whose only listeners are webhook subscriptions


async def _listen(settings: Settings, wake: asyncio.Event) -> asyncpg.Connection:
    url = make_url(settings.database_url)
    conn = await asyncpg.connect(user=url.username, password=url.password,
                                 database=url.database, host=url.query.get("host") or url.host,
                                 port=url.port)
    await conn.add_listener(CHANNEL, lambda *_: wake.set())
    return conn


async def _dispatch_workspace(sessions: Any, workspace_id: uuid.UUID, now: datetime,
                              redispatch_after: timedelta,
                              on_deliveries: Callable[[], None] | None = None
                              ) -> list[uuid.UUID]:
    async with unit_of_work(sessions, workspace_id) as session:
        listened = await listened_event_types(session)
        subscribed = await subscribed_event_types(session)  # None: a webhook wants all
        # Events no enabled rule or webhook listens to have nothing to run: handled in
        # place, no job.
        if subscribed is not None:
            unheard = select(Event.id).where(Event.handled_at.is_(None))
            if listened | subscribed:
                unheard = unheard.where(Event.type.not_in(listened | subscribed))
            await session.execute(update(Event).where(Event.id.in_(
                unheard.limit(UNHEARD_BATCH).with_for_update(skip_locked=True)
                .scalar_subquery())).values(dispatched_at=now, handled_at=now))
        # Events only webhooks want: their deliveries are written here, in bulk, and the
        # events handled in place — no job per event (handle_event does the same for the
        # events a rule listens to).
        if subscribed is None or subscribed - listened:
            only_hooks = select(Event).where(Event.handled_at.is_(None))
            if listened:
                only_hooks = only_hooks.where(Event.type.not_in(listened))
            if subscribed is not None:
                only_hooks = only_hooks.where(Event.type.in_(subscribed - listened))
            events = list((await session.execute(
                only_hooks.order_by(Event.txid, Event.seq).limit(WEBHOOK_BATCH)
                .with_for_update(skip_locked=True))).scalars())
            if events:
                if await create_deliveries(session, events, now) and on_deliveries:
                    on_deliveries()
                await session.execute(update(Event).where(
                    Event.id.in_([e.id for e in events]))
                    .values(dispatched_at=now, handled_at=now))
        if not listened:
            return []
        in_flight = (await session.execute(select(func.count()).where(
            Event.handled_at.is_(None), Event.dispatched_at > now - redispatch_after)
        )).scalar_one()
        room = min(PER_PASS, IN_FLIGHT_CAP - in_flight)
        if room <= 0:
            return []
        ids = list((await session.execute(
            select(Event.id).where(Event.handled_at.is_(None), Event.type.in_(listened),
                                   (Event.dispatched_at.is_(None))
                                   | (Event.dispatched_at <= now - redispatch_after))
            .order_by(Event.txid, Event.seq).limit(room)
            .with_for_update(skip_locked=True))).scalars())
        if ids:
            await session.execute(update(Event).where(Event.id.in_(ids))
                                  .values(dispatched_at=now))
        return ids


async def dispatch_once(sessions: Any, redis: Any, settings: Settings,
                        on_deliveries: Callable[[], None] | None = None) -> int:
    """One pass over every workspace with unhandled events; returns the jobs enqueued.
    `on_deliveries` is called when webhook deliveries were written (wakes the sender)."""
    enqueued, _ = await _dispatch_pass(sessions, redis, settings, on_deliveries)
    return enqueued


async def _dispatch_pass(sessions: Any, redis: Any, settings: Settings,
                         on_deliveries: Callable[[], None] | None) -> tuple[int, bool]:
    """(jobs enqueued, whether any workspace still had unhandled events)."""
    async with unit_of_work(sessions, None) as session:
        backlog = (await session.execute(text(
            "select workspace_id from relata_event_backlog()"))).scalars().all()
    enqueued = 0
    for workspace_id in backlog:
        redispatch_after = timedelta(seconds=settings.relay_redispatch_seconds)
        now = clock.now()
        ids = await _dispatch_workspace(sessions, workspace_id, now, redispatch_after,
                                        on_deliveries)
        stamp = int(now.timestamp() * 1_000_000)
        for start in range(0, len(ids), JOB_EVENTS):
            batch = [str(i) for i in ids[start:start + JOB_EVENTS]]
            job = await redis.enqueue_job("handle_events", str(workspace_id), batch,
                                          _job_id=f"events:{batch[0]}:{len(batch)}:{stamp}",
                                          _queue_name=settings.queue_name)
            enqueued += job is not None
    return enqueued, bool(backlog)


async def relay_loop(ctx: dict[str, Any]) -> None:
    """Runs in every worker until it stops."""
    settings: Settings = ctx["settings"]
    wake = asyncio.Event()
    conn: asyncpg.Connection | None = None
    while True:
        if conn is None or conn.is_closed():
            try:
                conn = await _listen(settings, wake)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("relay cannot listen; polling", error=str(exc))
                conn = None
        busy = False
        try:
            _, busy = await _dispatch_pass(ctx["sessions"], ctx["redis"], settings,
                                           lambda: wake_webhook_sender(ctx))
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis or PostgreSQL away: try again on the next tick
            log.exception("relay pass failed")
        try:
            # A backlog (a pass takes at most PER_PASS events of a workspace, and holds
            # back at IN_FLIGHT_CAP) is passed over again soon, not at the next poll.
            await asyncio.wait_for(wake.wait(), BUSY_POLL_SECONDS if busy else POLL_SECONDS)
        except TimeoutError:
            pass
        wake.clear()
