"""The minute cron job: reminders, overdue tasks and rotting deals in every workspace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.shared.clock import clock
from app.workers.settings import WorkerSettings
from app.workers.sweeps import run_sweeps
from tests.api.rest.conftest import act_as, all_pages, new_user
from tests.api.rest.test_tasks import FROZEN, frozen, get_deal, new_deal, new_task, sessions
from tests.conftest import Workspace

__all__ = ["frozen", "sessions"]  # fixtures used here


def test_the_sweep_runs_every_minute() -> None:
    jobs = {job.coroutine: job for job in WorkerSettings.cron_jobs}
    assert run_sweeps in WorkerSettings.functions
    job = jobs[run_sweeps]
    assert (job.month, job.day, job.hour, job.minute, job.second) == (None, None, None, None,
                                                                      {0})
    assert job.unique


async def test_the_cron_job_sweeps_every_workspace(
        ws: Workspace, other_ws: Workspace, sessions: async_sessionmaker[AsyncSession],
        frozen: Callable[[datetime | None], None]) -> None:
    agent = await new_user(ws, "agent")
    theirs = await new_user(other_ws, "agent")
    as_agent, as_theirs = await act_as(ws, agent), await act_as(other_ws, theirs)
    deal_id = await new_deal(sessions, ws, agent["id"], rotting=False)
    frozen(FROZEN)
    remind = await new_task(ws, assignee_id=agent["id"],
                            reminder_at=(FROZEN - timedelta(minutes=1)).isoformat())
    late = await new_task(other_ws, assignee_id=theirs["id"],
                          due_at=(FROZEN - timedelta(minutes=1)).isoformat())
    ctx: dict[str, Any] = {"sessions": sessions}

    first = await run_sweeps(ctx)
    assert first["reminders"] >= 1 and first["overdue"] >= 1 and first["rotting"] >= 1
    await run_sweeps(ctx)  # again: nobody is told twice (other tests' workspaces may still
    # hold work, so the counts say nothing; the notifications below do)

    mine = await all_pages(as_agent, "/api/v1/notifications")
    assert [n["type"] for n in mine if n["entity_id"] == remind["id"]] == [
        "task_reminder", "task_assigned"]
    assert [n["type"] for n in mine if n["entity_id"] == str(deal_id)] == ["deal_rotting"]
    their = await all_pages(as_theirs, "/api/v1/notifications")
    assert [n["type"] for n in their if n["entity_id"] == late["id"]] == [
        "task_overdue", "task_assigned"]
    deal = await get_deal(sessions, ws, deal_id)
    assert deal.rotting_since == clock.now()
