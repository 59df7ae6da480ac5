"""Reminders and overdue notices: delayed work kept in PostgreSQL and swept every minute.

A task's `reminder_at` and `due_at` are the schedule; `reminded_at` and `overdue_notified_at`
mark that the occasion has been handled. A sweep picks the open tasks whose time has come and
whose marker is empty (FOR UPDATE SKIP LOCKED, in batches, so two sweeps never take the same
task), tells the people concerned, sets the marker and writes an event. Moving the time,
reopening the task, clears the marker, so the new time fires again. Notifications also carry
a dedup key per occasion, so even a marker lost to a race cannot tell anyone twice.

The markers are derived state: setting them does not bump the task's version (an ETag a
client holds stays valid), but each is in the task's history through its event."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.notifications.service import notify
from app.domain.outbox.service import record_event
from app.domain.shared.clock import clock
from app.domain.shared.principal import system_principal
from app.domain.tasks.agenda import OPEN, wall_clock
from app.domain.tasks.models import Task
from app.domain.workspaces.models import Team, TeamMember, User, Workspace, workspace_setting

SWEEP_BATCH = 500
MAX_BATCHES = 20  # per workspace and run; the rest waits for the next minute


def _json_time(at: datetime) -> str:
    """As the task's own fields appear in events and history (`…Z`)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _timezone(session: AsyncSession, workspace_id: uuid.UUID) -> str | None:
    """The zone notification texts are written in: the workspace's."""
    return (await session.execute(select(Workspace.timezone).where(
        Workspace.id == workspace_id))).scalar_one_or_none()


async def _tells_team_heads(session: AsyncSession, workspace_id: uuid.UUID) -> bool:
    workspace = await session.get(Workspace, workspace_id)
    return workspace is None or bool(workspace_setting(workspace, "overdue_tells_team_heads"))


def _occasion(task: Task, at: datetime | None) -> str:
    """One occasion per task, scheduled time and attempt: a reopened task may fire again."""
    return f"{task.id}:{at.isoformat() if at else '-'}:{task.attempt}"


async def send_due_reminders(session: AsyncSession, workspace_id: uuid.UUID,
                             now: datetime | None = None) -> int:
    """Remind assignees of open tasks whose reminder time has come; returns how many."""
    now = now or clock.now()
    system = system_principal(workspace_id)
    tz = await _timezone(session, workspace_id)
    total = 0
    for _ in range(MAX_BATCHES):
        tasks = list((await session.execute(
            select(Task).where(Task.status == OPEN, Task.deleted_at.is_(None),
                               Task.reminded_at.is_(None), Task.reminder_at <= now)
            .order_by(Task.reminder_at).limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True))).scalars())
        for task in tasks:
            task.reminded_at = now
            await record_event(session, system, type="task.reminder_due", entity_type="task",
                               entity_id=task.id, before={"reminded_at": None},
                               after={"reminded_at": _json_time(now)})
            if task.assignee_id is not None:
                due = f"Due {wall_clock(task.due_at, tz)}" if task.due_at else None
                await notify(session, system, user_ids=[task.assignee_id], type="task_reminder",
                             title=f"Reminder: {task.title}", body=due, entity_type="task",
                             entity_id=task.id,
                             dedup_key=f"task_reminder:{_occasion(task, task.reminder_at)}")
        await session.flush()
        total += len(tasks)
        if len(tasks) < SWEEP_BATCH:
            break
    return total


async def heads_by_member(session: AsyncSession,
                           user_ids: set[uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The heads of every team each user belongs to, in one query."""
    rows = await session.execute(
        select(TeamMember.user_id, Team.head_id)
        .join(Team, (Team.workspace_id == TeamMember.workspace_id)
              & (Team.id == TeamMember.team_id))
        .where(TeamMember.user_id.in_(user_ids), Team.head_id.is_not(None)))
    heads: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for member, head in rows:
        if head != member:
            heads[member].add(head)
    return heads


async def flag_overdue_tasks(session: AsyncSession, workspace_id: uuid.UUID,
                             now: datetime | None = None) -> int:
    """Tell the assignee of each newly overdue open task, and the head of every team the
    assignee belongs to; returns how many tasks were flagged."""
    now = now or clock.now()
    system = system_principal(workspace_id)
    tz = await _timezone(session, workspace_id)
    total = 0
    for _ in range(MAX_BATCHES):
        tasks = list((await session.execute(
            select(Task).where(Task.status == OPEN, Task.deleted_at.is_(None),
                               Task.overdue_notified_at.is_(None), Task.due_at < now)
            .order_by(Task.due_at).limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True))).scalars())
        assignees = {t.assignee_id for t in tasks if t.assignee_id is not None}
        heads = await heads_by_member(session, assignees) \
            if assignees and await _tells_team_heads(session, workspace_id) else {}
        names = dict((await session.execute(select(User.id, User.full_name).where(
            User.id.in_(assignees)))).all()) if assignees else {}
        for task in tasks:
            task.overdue_notified_at = now
            await record_event(session, system, type="task.overdue", entity_type="task",
                               entity_id=task.id, before={"overdue_notified_at": None},
                               after={"overdue_notified_at": _json_time(now)})
            if task.assignee_id is None:
                continue
            due = f"Was due {wall_clock(task.due_at, tz)}" if task.due_at else None
            dedup_key = f"task_overdue:{_occasion(task, task.due_at)}"
            await notify(session, system, user_ids=[task.assignee_id], type="task_overdue",
                         title=f"Overdue: {task.title}", body=due, entity_type="task",
                         entity_id=task.id, dedup_key=dedup_key)
            team_heads = heads.get(task.assignee_id, set())
            if team_heads:
                who = names.get(task.assignee_id) or "a team member"
                await notify(session, system, user_ids=sorted(team_heads), type="task_overdue",
                             title=f"Overdue task of {who}: {task.title}", body=due,
                             entity_type="task", entity_id=task.id, dedup_key=dedup_key)
        await session.flush()
        total += len(tasks)
        if len(tasks) < SWEEP_BATCH:
            break
    return total
