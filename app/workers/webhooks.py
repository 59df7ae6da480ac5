"""The webhook sender: due deliveries of every workspace are claimed in batches (a lease,
`FOR UPDATE SKIP LOCKED`), sent concurrently through one shared pinning httpx client, and
settled in one transaction per batch.

Promptness: `handle_event` wakes the sender of its own worker after it commits new
deliveries (`wake(ctx)`), so a delivery leaves within milliseconds; a poll every second
takes due retries and whatever another worker's wake-up missed, and the 10-second cron
`deliver_webhooks` is the backstop. Ordering: none is promised — deliveries of one
subscription go out concurrently and a retry waits its backoff while later events go on
(receivers order by `data.cursor` or `data.occurred_at`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import text

from app.config import Settings
from app.db import unit_of_work
from app.domain.shared.clock import clock
from app.domain.webhooks import delivery
from app.domain.webhooks.service import announce_stopped
from app.integrations import http_guard, webhook_sender

log = structlog.get_logger("relata.webhooks")

POLL_SECONDS = 1.0
MAX_ROUNDS = 20  # per pass and workspace: what is left waits for the next pass


def http_client(ctx: dict[str, Any]) -> httpx.AsyncClient:
    """The worker's one client for webhooks (pinning, bounded pool), made on first use."""
    client = ctx.get("webhook_http")
    if client is None:
        settings: Settings = ctx["settings"]
        client = ctx["webhook_http"] = http_guard.pinning_client(
            max_connections=max(10, settings.webhook_concurrency))
    return client


def wake(ctx: dict[str, Any]) -> None:
    event = ctx.get("webhook_wake")
    if event is not None:
        event.set()


async def due_workspaces(sessions: Any) -> list[uuid.UUID]:
    async with unit_of_work(sessions, None) as session:
        return list((await session.execute(
            text("select workspace_id from relata_due_webhook_workspaces(:now)"),
            {"now": clock.now()})).scalars())


async def _send_batch(ctx: dict[str, Any], workspace_id: uuid.UUID,
                      ids: list[uuid.UUID] | None = None) -> int:
    settings: Settings = ctx["settings"]
    sessions = ctx["sessions"]
    async with unit_of_work(sessions, workspace_id) as session:
        claimed = await delivery.claim(session, clock.now(), ids=ids)
    if not claimed:
        return 0
    client = http_client(ctx)
    timeouts = webhook_sender.Timeouts(settings.webhook_connect_timeout_seconds,
                                       settings.webhook_timeout_seconds)
    limit = asyncio.Semaphore(max(1, settings.webhook_concurrency))

    async def one(c: delivery.Claimed) -> tuple[delivery.Claimed, delivery.Outcome]:
        async with limit:
            return c, await webhook_sender.send(client, c, timeouts=timeouts)

    results = await asyncio.gather(*(one(c) for c in claimed))
    async with unit_of_work(sessions, workspace_id) as session:
        settled = await delivery.settle(
            session, results, clock.now(),
            retry_after_cap=settings.webhook_retry_after_max_seconds,
            pause_min_failing=timedelta(minutes=settings.webhook_pause_min_failing_minutes))
        for sub_id in (settled.paused or []) + (settled.disabled or []):
            await announce_stopped(session, workspace_id, sub_id)
    if settled.paused or settled.disabled:
        log.warning("webhook subscriptions stopped", workspace_id=str(workspace_id),
                    paused=[str(s) for s in settled.paused or []],
                    disabled=[str(s) for s in settled.disabled or []])
    return len(claimed)


async def deliver_webhooks(ctx: dict[str, Any],
                           workspace_ids: list[uuid.UUID] | None = None) -> int:
    """Send everything due (in the given workspaces, or every one with due deliveries);
    returns how many requests were made."""
    sent = 0
    for workspace_id in workspace_ids or await due_workspaces(ctx["sessions"]):
        try:
            for _ in range(MAX_ROUNDS):
                count = await _send_batch(ctx, workspace_id)
                sent += count
                if count < delivery.CLAIM_BATCH:
                    break
        except Exception:  # one workspace must not stop the others
            log.exception("webhook deliveries failed", workspace_id=str(workspace_id))
    return sent


async def sender_loop(ctx: dict[str, Any]) -> None:
    """Runs in every worker until it stops: woken by handle_event, else once a second."""
    wake_event = ctx.setdefault("webhook_wake", asyncio.Event())
    while True:
        wake_event.clear()
        try:
            await deliver_webhooks(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # PostgreSQL away: try again on the next tick
            log.exception("webhook pass failed")
        try:
            await asyncio.wait_for(wake_event.wait(), POLL_SECONDS)
        except TimeoutError:
            pass
