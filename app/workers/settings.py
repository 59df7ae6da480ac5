"""arq WorkerSettings: functions, cron jobs, startup/shutdown."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.config import get_settings
from app.db import create_engine, session_factory
from app.logging import configure_logging
from app.workers.maintenance import purge_expired_refresh_tokens


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    ctx["engine"] = create_engine(settings)
    ctx["sessions"] = session_factory(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


class WorkerSettings:
    functions = [purge_expired_refresh_tokens]
    cron_jobs = [cron(purge_expired_refresh_tokens, hour={3}, minute={17}, run_at_startup=True)]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    max_jobs = 20
