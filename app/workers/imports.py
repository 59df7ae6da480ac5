"""Import jobs swept from PostgreSQL: a queued import, or one whose worker died (its
heartbeat went stale), is claimed by exactly one worker and run or resumed from its last
committed batch. Redis carries no import state, so nothing is lost with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.imports.models import ImportJob
from app.domain.imports.runner import run_import
from app.domain.shared.clock import clock

log = structlog.get_logger("relata.worker")

STALE_AFTER = timedelta(seconds=60)  # several batches' time: a live worker beats far sooner


async def claim_import(sessions: async_sessionmaker[AsyncSession], workspace_id: Any,
                       import_id: Any) -> bool:
    now = clock.now()
    async with unit_of_work(sessions, workspace_id) as session:
        claimed = await session.execute(
            update(ImportJob).where(ImportJob.id == import_id, or_(
                ImportJob.state == "queued",
                (ImportJob.state == "running") & (ImportJob.heartbeat_at < now - STALE_AFTER)))
            .values(state="running", heartbeat_at=now).returning(ImportJob.id))
        return claimed.first() is not None


async def run_queued_imports(ctx: dict[str, Any]) -> int:
    """Every few seconds: run what is waiting; returns how many imports this call ran."""
    sessions = ctx["sessions"]
    async with unit_of_work(sessions, None) as session:
        backlog = (await session.execute(
            text("select workspace_id, id from relata_import_backlog(:stale)"),
            {"stale": STALE_AFTER})).all()
    ran = 0
    for workspace_id, import_id in backlog:
        if not await claim_import(sessions, workspace_id, import_id):
            continue  # another worker took it
        state = await run_import(sessions, workspace_id, import_id)
        log.info("import finished", import_id=str(import_id), state=state)
        ran += 1
    return ran
