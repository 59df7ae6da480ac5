"""arq WorkerSettings: functions, cron jobs, startup/shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import httpx
from arq import cron
from arq.connections import RedisSettings

from app.config import get_settings
from app.db import create_engine, session_factory
from app.heap import settle_after_startup
from app.logging import configure_logging
from app.workers.events import handle_event, handle_events
from app.workers.imports import run_queued_imports
from app.workers.maintenance import purge_expired_refresh_tokens
from app.workers.messages import send_due_messages
from app.workers.relay import relay_loop
from app.workers.scheduler import run_automation_sweeps
from app.workers.sweeps import run_sweeps
from app.workers.webhooks import deliver_webhooks, sender_loop


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    ctx["engine"] = create_engine(settings)
    ctx["sessions"] = session_factory(ctx["engine"])
    ctx["settings"] = settings
    ctx["http"] = httpx.AsyncClient(follow_redirects=False)
    ctx["relay"] = asyncio.create_task(relay_loop(ctx))
    ctx["webhook_wake"] = asyncio.Event()
    ctx["webhook_sender"] = asyncio.create_task(sender_loop(ctx))
    settle_after_startup()


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["relay"].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ctx["relay"]
    ctx["webhook_sender"].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ctx["webhook_sender"]
    if ctx.get("webhook_http") is not None:
        await ctx["webhook_http"].aclose()
    await ctx["http"].aclose()
    await ctx["engine"].dispose()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [purge_expired_refresh_tokens, run_sweeps, handle_event,
                                      handle_events,
                                      run_automation_sweeps, run_queued_imports,
                                      send_due_messages, deliver_webhooks]
    cron_jobs: ClassVar[list[Any]] = [
        cron(purge_expired_refresh_tokens, hour={3}, minute={17}, run_at_startup=True),
        # Every minute at :00; `unique` keeps two workers from running the same minute, and
        # SKIP LOCKED keeps an overrunning sweep and the next one off each other's rows.
        cron(run_sweeps, second={0}, unique=True, timeout=300),
        cron(run_automation_sweeps, second=set(range(5, 60, 10)), unique=True, timeout=300),
        # Imports wait in PostgreSQL; a long one keeps running while later ticks take others.
        cron(run_queued_imports, second=set(range(0, 60, 5)), unique=True, timeout=6 * 3600),
        # Emails and SMS wait in PostgreSQL; every 5 s what is due is claimed and sent.
        cron(send_due_messages, second=set(range(2, 60, 5)), unique=True, timeout=300),
        # Webhooks are sent by each worker's sender loop at once; this is the backstop.
        cron(deliver_webhooks, second=set(range(7, 60, 10)), unique=True, timeout=300),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    queue_name = get_settings().queue_name
    max_jobs = 20
    # arq polls Redis for new jobs; its default half second would be most of the time from
    # a committed event to its effect (bench/RESULTS.md, "Automations").
    poll_delay = 0.05
