"""arq WorkerSettings: functions, cron jobs, startup/shutdown."""

from __future__ import annotations

from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings

from app.config import get_settings
from app.db import create_engine, session_factory
from app.logging import configure_logging
from app.workers.maintenance import purge_expired_refresh_tokens
from app.workers.sweeps import run_sweeps


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    ctx["engine"] = create_engine(settings)
    ctx["sessions"] = session_factory(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [purge_expired_refresh_tokens, run_sweeps]
    cron_jobs: ClassVar[list[Any]] = [
        cron(purge_expired_refresh_tokens, hour={3}, minute={17}, run_at_startup=True),
        # Every minute at :00; `unique` keeps two workers from running the same minute, and
        # SKIP LOCKED keeps an overrunning sweep and the next one off each other's rows.
        cron(run_sweeps, second={0}, unique=True, timeout=300),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    max_jobs = 20
