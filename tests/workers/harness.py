"""The real worker, driven step by step: the relay's dispatch pass, then an arq worker in
burst mode on a queue of this test's own (Redis is shared with other test runs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from app.config import Settings
from app.db import create_engine, session_factory
from app.workers.events import handle_event, handle_events
from app.workers.messages import send_due_messages
from app.workers.relay import dispatch_once
from app.workers.scheduler import run_automation_sweeps
from app.workers.sweeps import run_sweeps


class Automation:
    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx

    @property
    def sessions(self) -> Any:
        return self.ctx["sessions"]

    async def drain(self, rounds: int = 10) -> int:
        """Relay and handle events until nothing is left (chains take several rounds)."""
        handled = 0
        for _ in range(rounds):
            enqueued = await dispatch_once(self.sessions, self.ctx["redis"],
                                           self.ctx["settings"])
            if not enqueued:
                return handled
            handled += await self.run_jobs()
        return handled

    async def run_jobs(self) -> int:
        """An arq worker in burst mode over the jobs queued now; returns the jobs completed."""
        worker = Worker(functions=[handle_event, handle_events], redis_pool=self.ctx["redis"],
                        queue_name=self.ctx["settings"].queue_name, burst=True,
                        poll_delay=0, ctx=dict(self.ctx), handle_signals=False,
                        max_jobs=10)
        try:
            await worker.main()
            return worker.jobs_complete
        finally:
            await worker.close()

    def deliver_to(self, *, smtp_port: int | None = None, sms_url: str | None = None) -> None:
        """Point the message sender at the test's own SMTP server and SMS receiver."""
        update: dict[str, Any] = {}
        if smtp_port is not None:
            update |= {"smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                       "smtp_starttls": False, "smtp_from": "Okna Plus <info@okna.example>"}
        if sms_url is not None:
            update |= {"sms_url": sms_url, "sms_token": "test-token"}
        self.ctx["settings"] = self.ctx["settings"].model_copy(update=update)
        self.ctx.pop("message_providers", None)

    async def send_messages(self) -> dict[str, int]:
        """The message sender's tick, once."""
        return await send_due_messages(self.ctx)

    async def sweep(self, *workspaces: Any) -> None:
        """The ten-second automation sweep and the minute sweep, once, then drain — over the
        given workspaces only (the test's own: the database holds every test's workspaces),
        or over all of them as the worker does."""
        only = [uuid.UUID(w.id) for w in workspaces] or None
        await run_automation_sweeps(self.ctx, only)
        await run_sweeps(self.ctx, only)
        await self.drain()
        await run_automation_sweeps(self.ctx, only)
        await self.drain()


@asynccontextmanager
async def automation(settings: Settings, redis_url: str) -> AsyncIterator[Automation]:
    queue = f"relata-test:{uuid.uuid4().hex}"
    engine = create_engine(settings)
    redis = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue)
    http = httpx.AsyncClient(follow_redirects=False)
    ctx = {"sessions": session_factory(engine), "redis": redis, "http": http,
           "settings": settings.model_copy(update={"queue_name": queue})}
    try:
        yield Automation(ctx)
    finally:
        await http.aclose()
        await redis.aclose()
        await engine.dispose()
