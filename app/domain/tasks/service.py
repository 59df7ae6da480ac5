"""Tasks: create, read, list, update, complete, reopen, delete.

Visibility follows the assignee (`Task.__owner_column__`): an agent sees the tasks assigned to
them. Every change writes an event; a change of assignee also writes `task.assigned` and tells
the new assignee (unless they assigned it to themselves)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.deals.rotting import mark_deal_activity
from app.domain.notifications.service import notify
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.cardfields import check_choice
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate, row_cursor
from app.domain.shared.principal import Principal
from app.domain.tasks.agenda import (
    STORED_FIELDS,
    clock_fields,
    encode_due_cursor,
    order_by_due,
    wall_clock,
)
from app.domain.tasks.models import Task
from app.domain.tasks.schemas import (
    TaskComplete,
    TaskCreate,
    TaskFields,
    TaskRead,
    TaskReopen,
    TaskUpdate,
)
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import workspace_setting
from app.domain.workspaces.service import require_users

ENTITY = "task"

DUE_SORTS = ("due_at", "-due_at")

LIST_SPEC = ListSpec(
    id_column=Task.id,
    fields={
        "id": FilterField(Task.id, "uuid"),
        "title": FilterField(Task.title, "str"),
        "type": FilterField(Task.type, "str"),
        "status": FilterField(Task.status, "str"),
        "outcome": FilterField(Task.outcome, "str"),
        "assignee_id": FilterField(Task.assignee_id, "uuid"),
        "contact_id": FilterField(Task.contact_id, "uuid"),
        "company_id": FilterField(Task.company_id, "uuid"),
        "deal_id": FilterField(Task.deal_id, "uuid"),
        "due_at": FilterField(Task.due_at, "datetime"),
        "reminder_at": FilterField(Task.reminder_at, "datetime"),
        "completed_at": FilterField(Task.completed_at, "datetime"),
        "completed_by": FilterField(Task.completed_by, "str"),
        "attempt": FilterField(Task.attempt, "int"),
        "created_by": FilterField(Task.created_by, "str"),
        "created_at": FilterField(Task.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Task.updated_at, "datetime", sortable=True),
    },
)
# `due_at` sorts through its own cursor (tasks without a due time come last).
SORTS = ("created_at", "updated_at", "due_at")


# Reads

async def to_reads(session: AsyncSession, tasks: list[Task]) -> list[TaskRead]:
    """Tasks as the API shows them; the contacts' time zones come in one query.

    The time zone is shown even when the contact itself is not visible to the caller: it is
    what the assignee needs to call at a decent hour, and says nothing else about the card."""
    contact_ids = {t.contact_id for t in tasks if t.contact_id is not None}
    zones: dict[uuid.UUID, str | None] = {}
    if contact_ids:
        zones = dict((await session.execute(select(Contact.id, Contact.timezone).where(
            Contact.id.in_(contact_ids)))).all())
    now = clock.now()
    reads = []
    for task in tasks:
        data = {name: getattr(task, name) for name in STORED_FIELDS}
        data.update(clock_fields(zones.get(task.contact_id) if task.contact_id else None,
                                 task.due_at, task.status, now))
        reads.append(TaskRead.model_validate(data))
    return reads


async def to_read(session: AsyncSession, task: Task) -> TaskRead:
    return (await to_reads(session, [task]))[0]


# Writes

async def _require_related(session: AsyncSession, principal: Principal, model: type[Any],
                           record_id: uuid.UUID, field: str) -> None:
    """A linked contact, company or deal must be a live record the caller can see."""
    found = await session.execute(select(exists().where(
        model.id == record_id, model.deleted_at.is_(None),
        records.visibility_condition(model, principal))))
    if not found.scalar():
        raise ValidationError.at(["body", field], f"no such {records.entity_name(model)}")


RELATED = {"contact_id": Contact, "company_id": Company, "deal_id": Deal}


async def _apply_fields(session: AsyncSession, principal: Principal, task: Task,
                        data: TaskFields, *, creating: bool,
                        verified: Collection[str] = ()) -> None:
    workspace = await current_workspace(session, principal)
    given = data.model_dump(exclude_unset=True)
    for name in ("title", "type"):
        if name in given and given[name] is None:
            raise ValidationError.at(["body", name], "cannot be null")
    if "title" in given:
        title = given["title"].strip()
        if not title:
            raise ValidationError.at(["body", "title"], "a task needs a title")
        task.title = title
    task_types = workspace_setting(workspace, "task_types")
    if "type" in given:
        if creating or given["type"] != task.type:
            check_choice(given["type"], task_types, "type")
        task.type = given["type"]
    elif creating:
        task.type = "todo" if "todo" in task_types else task_types[0]
    if "description" in given:
        task.description = given["description"]
    if "due_at" in given and given["due_at"] != task.due_at:
        task.due_at = given["due_at"]
        task.overdue_notified_at = None  # a new due time is a new occasion to be overdue
    if "reminder_at" in given and given["reminder_at"] != task.reminder_at:
        task.reminder_at = given["reminder_at"]
        task.reminded_at = None
    if "assignee_id" in given:
        if given["assignee_id"] is not None and given["assignee_id"] != task.assignee_id \
                and "assignee_id" not in verified:
            await require_users(session, [given["assignee_id"]], ["body", "assignee_id"])
        task.assignee_id = given["assignee_id"]
    elif creating:
        task.assignee_id = principal.user_id
    for name, model in RELATED.items():
        if name in given:
            value = given[name]
            if value is not None and value != getattr(task, name) and name not in verified:
                await _require_related(session, principal, model, value, name)
            setattr(task, name, value)
    if "data" in given:
        task.data = given["data"] or {}
    if "status" in given and given["status"] is not None and given["status"] != task.status:
        if given["status"] == "canceled" and task.status == "open":
            # completed_at/by say when and by whom the task was closed, done or canceled.
            task.status = "canceled"
            task.completed_at = clock.now()
            task.completed_by = principal.actor
        elif given["status"] == "open":
            raise ConflictError(f"the task is {task.status}: open it again with "
                                f"POST /api/v1/tasks/{task.id}/reopen")
        else:
            raise ConflictError(f"the task is {task.status}; only an open task can be canceled")


async def _assigned(session: AsyncSession, principal: Principal, task: Task,
                    previous: uuid.UUID | None) -> None:
    """The assignee changed: an event, and a notification unless you assigned yourself."""
    await record_event(session, principal, type="task.assigned", entity_type=ENTITY,
                       entity_id=task.id,
                       before={"assignee_id": str(previous) if previous else None},
                       after={"assignee_id": str(task.assignee_id) if task.assignee_id
                              else None})
    if task.assignee_id is not None and task.assignee_id != principal.user_id:
        workspace = await current_workspace(session, principal)
        due = f"Due {wall_clock(task.due_at, workspace.timezone)}" if task.due_at else None
        await notify(session, principal, user_ids=[task.assignee_id], type="task_assigned",
                     title=f"New task for you: {task.title}", body=due,
                     entity_type=ENTITY, entity_id=task.id,
                     dedup_key=f"task_assigned:{task.id}:{task.assignee_id}:{task.version}")


async def create_task(session: AsyncSession, principal: Principal, data: TaskCreate, *,
                      verified: Collection[str] = ()) -> Task:
    """`verified` names the references (assignee_id, contact_id, company_id, deal_id) the
    caller has just read in this transaction as they must be (an existing user; a live
    record the principal sees), so they are not checked again (a rule's run: its context)."""
    principal.require_write()
    task = Task(workspace_id=principal.workspace_id, created_by=principal.actor,
                updated_by=principal.actor)
    await _apply_fields(session, principal, task, data, creating=True, verified=verified)
    session.add(task)
    await session.flush()
    await record_event(session, principal, type="task.created", entity_type=ENTITY,
                       entity_id=task.id, after=records.snapshot(task))
    if task.assignee_id is not None:
        await _assigned(session, principal, task, None)
    return task


async def get_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                   *, include_deleted: bool = False, for_update: bool = False) -> Task:
    return await records.get_visible(session, Task, principal, task_id,
                                     include_deleted=include_deleted, for_update=for_update)


async def _locked(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                  expected_version: int | None) -> Task:
    principal.require_write()
    task = await get_task(session, principal, task_id, for_update=True)
    records.check_version(task, expected_version)
    return task


async def update_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                      data: TaskUpdate, *, expected_version: int | None = None) -> Task:
    task = await _locked(session, principal, task_id, expected_version)
    before = records.snapshot(task)
    previous_assignee = task.assignee_id
    await _apply_fields(session, principal, task, data, creating=False)
    if records.snapshot(task) == before:
        return task
    records.touch(task, principal)
    await session.flush()
    await record_event(session, principal, type="task.updated", entity_type=ENTITY,
                       entity_id=task.id, before=before, after=records.snapshot(task))
    if task.assignee_id != previous_assignee:
        await _assigned(session, principal, task, previous_assignee)
    return task


async def complete_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                        data: TaskComplete, *, expected_version: int | None = None) -> Task:
    """Done, with an outcome from the workspace's list, a note and structured data; counts
    an attempt. Completing a task linked to a deal is activity on the deal (not rotting)."""
    task = await _locked(session, principal, task_id, expected_version)
    if task.status != "open":
        raise ConflictError(f"the task is {task.status}; only an open task can be completed")
    outcome = data.outcome or "done"
    workspace = await current_workspace(session, principal)
    check_choice(outcome, workspace_setting(workspace, "task_outcomes"), "outcome")
    before = records.snapshot(task)
    now = clock.now()
    task.status = "done"
    task.outcome = outcome
    task.note = data.note
    if data.data:
        task.data = {**task.data, **data.data}
    task.attempt += 1
    task.completed_at = now
    task.completed_by = principal.actor
    records.touch(task, principal)
    await session.flush()
    await record_event(session, principal, type="task.completed", entity_type=ENTITY,
                       entity_id=task.id, before=before, after=records.snapshot(task))
    if task.deal_id is not None:
        await mark_deal_activity(session, task.deal_id, now)
    return task


async def reopen_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                      data: TaskReopen | None = None, *,
                      expected_version: int | None = None) -> Task:
    """Open again (a done or canceled task), optionally for a new due time. The attempt
    count stays; the reminder and overdue notice may fire again."""
    task = await _locked(session, principal, task_id, expected_version)
    if task.status == "open":
        raise ConflictError("the task is already open")
    before = records.snapshot(task)
    given = data.model_dump(exclude_unset=True) if data else {}
    for name in ("due_at", "reminder_at"):
        if given.get(name) is not None:
            setattr(task, name, given[name])
    task.status = "open"
    task.completed_at = None
    task.completed_by = None
    task.reminded_at = None
    task.overdue_notified_at = None
    records.touch(task, principal)
    await session.flush()
    await record_event(session, principal, type="task.reopened", entity_type=ENTITY,
                       entity_id=task.id, before=before, after=records.snapshot(task))
    if task.deal_id is not None:
        await mark_deal_activity(session, task.deal_id, clock.now())
    return task


async def delete_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID,
                      *, expected_version: int | None = None) -> None:
    task = await _locked(session, principal, task_id, expected_version)
    await records.soft_delete(session, task, principal, ENTITY)


async def restore_task(session: AsyncSession, principal: Principal,
                       task_id: uuid.UUID) -> Task:
    principal.require_write()
    task = await get_task(session, principal, task_id, include_deleted=True, for_update=True)
    await records.restore(session, task, principal, ENTITY)
    return task


# Lists

def _check_sort(sort: str | None, loc: list[str | int]) -> None:
    if sort is not None and sort.lstrip("-+") not in SORTS:
        raise ValidationError.at(loc, f"cannot sort by {sort.lstrip('-+')!r}; use one of "
                                      + ", ".join(SORTS))


async def list_tasks(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                     q: str | None, page: Page, include_deleted: bool = False,
                     sort_loc: list[str | int] | None = None
                     ) -> tuple[list[Task], str | None]:
    """Newest first by default; `sort=due_at` (or `-due_at`) puts tasks without a due time
    last. `q` searches titles."""
    sort_loc = sort_loc or ["query", "sort"]
    _check_sort(page.sort, sort_loc)
    query = select(Task).where(records.visibility_condition(Task, principal), *conditions)
    if not include_deleted:
        query = query.where(Task.deleted_at.is_(None))
    if q and "\x00" in q:
        raise ValidationError.at([*sort_loc[:-1], "q"], "must not contain NUL characters")
    if q:
        needle = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Task.title.ilike(f"%{needle}%", escape="\\"))
    if page.sort and page.sort.lstrip("+") in DUE_SORTS:
        query = order_by_due(query, page.cursor, descending=page.sort.startswith("-"))
        rows = list((await session.execute(query.limit(page.limit + 1))).scalars())
        if len(rows) <= page.limit:
            return rows, None
        rows = rows[:page.limit]
        return rows, encode_due_cursor(rows[-1].due_at, rows[-1].id)
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


def task_cursor(sort: str | None, task: Task) -> str:
    """The cursor that continues a listing right after `task` (GraphQL edges)."""
    if sort and sort.lstrip("+") in DUE_SORTS:
        return encode_due_cursor(task.due_at, task.id)
    return row_cursor(LIST_SPEC, sort, task)


# Batch: creates only (tasks have no natural key to upsert on).

async def no_upsert_target(session: AsyncSession, principal: Principal, data: TaskCreate,
                           upsert_on: str) -> None:
    raise ValidationError.at(["body", "upsert_on"], "tasks are not upserted")


async def no_upsert(session: AsyncSession, principal: Principal, existing: Task,
                    data: TaskCreate) -> bool:
    raise ValidationError.at(["body", "upsert_on"], "tasks are not upserted")
