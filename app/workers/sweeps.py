"""The minute sweep: reminders, overdue tasks, rotting deals and time-based scores, in every
workspace.

Delayed work lives in PostgreSQL (a task's reminder_at and due_at, a deal's idle time), so
nothing is lost when Redis or a worker restarts: every minute this job looks for what has
come due. Each sweep of each workspace is its own unit of work (RLS applies), so one that
fails rolls back alone and the others still run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import unit_of_work
from app.domain.deals.rotting import flag_rotting_deals
from app.domain.deals.scoring import rescore_aged_deals
from app.domain.shared.clock import clock
from app.domain.tasks.sweeps import flag_overdue_tasks, send_due_reminders
from app.workers.maintenance import all_workspace_ids

log = structlog.get_logger("relata.worker")

Sweep = Callable[[AsyncSession, uuid.UUID, datetime], Awaitable[int]]
SWEEPS: dict[str, Sweep] = {
    "reminders": send_due_reminders,
    "overdue": flag_overdue_tasks,
    "rotting": flag_rotting_deals,
    "scoring": rescore_aged_deals,  # rules on days in stage change a score with time
}


async def sweep_every_workspace(sessions: Any, sweeps: dict[str, Sweep], now: datetime,
                                workspace_ids: list[uuid.UUID] | None = None
                                ) -> dict[str, int]:
    """Run each sweep over each workspace (or the ones given), each in its own unit of work;
    returns how many records each one handled."""
    totals = dict.fromkeys(sweeps, 0)
    failures = 0
    for workspace_id in workspace_ids or await all_workspace_ids(sessions):
        for name, sweep in sweeps.items():
            try:
                async with unit_of_work(sessions, workspace_id) as session:
                    totals[name] += await sweep(session, workspace_id, now)
            except Exception:  # one workspace must not stop the others
                failures += 1
                log.exception("sweep failed", sweep=name, workspace_id=str(workspace_id))
    if any(totals.values()) or failures:
        log.info("swept", failures=failures, **totals)
    return totals


async def run_sweeps(ctx: dict[str, Any],
                     workspace_ids: list[uuid.UUID] | None = None) -> dict[str, int]:
    """Run every sweep over every workspace; returns how many records each one handled."""
    return await sweep_every_workspace(ctx["sessions"], SWEEPS, clock.now(), workspace_ids)
