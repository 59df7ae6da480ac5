"""GraphQL for tasks, "my work" and notifications: the same services as REST."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    check_q,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.api.graphql.types.work import (
    AgendaBucket,
    CompleteTaskInput,
    Notification,
    NotificationConnection,
    NotificationEdge,
    ReadAllSuccess,
    ReopenTaskInput,
    Task,
    TaskConnection,
    TaskEdge,
    TaskInput,
)
from app.domain.notifications import service as notifications
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.errors import ValidationError as DomainValidationError
from app.domain.shared.listing import row_cursor
from app.domain.tasks import agenda as agenda_service
from app.domain.tasks import service as tasks
from app.domain.tasks.agenda import encode_due_cursor
from app.domain.tasks.schemas import TaskComplete, TaskCreate, TaskRead, TaskReopen, TaskUpdate


async def _task(info: strawberry.Info, found: Any) -> Task:
    return Task.of(await tasks.to_read(info.context.session, found))


@strawberry.type
class WorkQuery:
    @strawberry.field(description="One task by id; null when it does not exist or is not "
                                  "visible to you.")
    async def task(self, info: strawberry.Info, id: strawberry.ID) -> Task | None:
        async with info.context.db_lock:
            try:
                found = await tasks.get_task(info.context.session, info.context.principal,
                                             parse_id(id, "task"))
            except DomainNotFound:
                return None
            return await _task(info, found)

    @strawberry.field(description="Tasks, newest first by default (`sort`: created_at, "
                                  "updated_at or due_at, - for descending; due_at puts tasks "
                                  "without one last). `filter` takes the same JSON as POST "
                                  "/api/v1/tasks/search; `q` searches titles. `first` is 1–200.")
    async def tasks(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                    filter: JSON | None = None, q: str | None = None,
                    sort: str | None = None) -> TaskConnection:
        async with info.context.db_lock:
            rows, next_cursor = await tasks.list_tasks(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, tasks.LIST_SPEC, filter), q=check_q(q),
                page=page_of(first, after, sort), sort_loc=["sort"])
            reads = await tasks.to_reads(info.context.session, rows)
            edges = [TaskEdge(cursor=tasks.task_cursor(sort, row), node=Task.of(read))
                     for row, read in zip(rows, reads, strict=True)]
        return TaskConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="My work: open tasks by due time. Mine by default; "
                                  "`assigneeId` (a user id or `me`) or `teamId` for others' "
                                  "(only what you may see). `tz` decides what 'today' is "
                                  "(default the workspace's time zone).")
    async def agenda(self, info: strawberry.Info, bucket: AgendaBucket = AgendaBucket.TODAY,
                     assignee_id: str | None = None, team_id: strawberry.ID | None = None,
                     tz: str | None = None, first: int = 50,
                     after: str | None = None) -> TaskConnection:
        page = page_of(first, after, None)
        team = None
        if team_id is not None:
            try:
                team = uuid.UUID(str(team_id))
            except ValueError as exc:
                raise DomainValidationError.at(["teamId"], "not a team id") from exc
        async with info.context.db_lock:
            rows, next_cursor = await agenda_service.agenda(
                info.context.session, info.context.principal, bucket=bucket.value,
                assignee_id=assignee_id, team_id=team, tz=tz, limit=page.limit,
                cursor=after, loc_prefix="query")
        edges = [TaskEdge(cursor=encode_due_cursor(r["due_at"], r["id"]),
                          node=Task.of(TaskRead.model_validate(r))) for r in rows]
        return TaskConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="Your notifications, newest first; `unread: true` for the "
                                  "unread ones only. Users only (an API key gets an error).")
    async def notifications(self, info: strawberry.Info, unread: bool | None = None,
                            first: int = 50, after: str | None = None) -> NotificationConnection:
        async with info.context.db_lock:
            rows, next_cursor = await notifications.list_notifications(
                info.context.session, info.context.principal, unread=unread, conditions=[],
                page=page_of(first, after, None))
        edges = [NotificationEdge(cursor=row_cursor(notifications.LIST_SPEC, None, n),
                                  node=Notification.of(n)) for n in rows]
        return NotificationConnection(edges=edges, page_info=page_info(edges, next_cursor))


TaskResult = Annotated[
    Task | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("TaskResult")]
NotificationResult = Annotated[
    Notification | ValidationError | NotFoundError | ForbiddenError,
    strawberry.union("NotificationResult")]
ReadAllResult = Annotated[ReadAllSuccess | ForbiddenError, strawberry.union("ReadAllResult")]


@strawberry.type
class WorkMutation:
    @strawberry.mutation
    async def create_task(self, info: strawberry.Info, input: TaskInput) -> TaskResult:
        async def run() -> Task:
            data = TaskCreate.model_validate(input_to_dict(input))
            return await _task(info, await tasks.create_task(info.context.session,
                                                             info.context.principal, data))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a task; `version` refuses a lost update.")
    async def update_task(self, info: strawberry.Info, id: strawberry.ID, input: TaskInput,
                          version: int | None = None) -> TaskResult:
        async def run() -> Task:
            data = TaskUpdate.model_validate(input_to_dict(input))
            return await _task(info, await tasks.update_task(
                info.context.session, info.context.principal, parse_id(id, "task"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Done, with an outcome from the workspace's list "
                                     "(default `done`), a note and structured data.")
    async def complete_task(self, info: strawberry.Info, id: strawberry.ID,
                            input: CompleteTaskInput | None = None,
                            version: int | None = None) -> TaskResult:
        async def run() -> Task:
            data = TaskComplete.model_validate(input_to_dict(input) if input else {})
            return await _task(info, await tasks.complete_task(
                info.context.session, info.context.principal, parse_id(id, "task"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Open a done or canceled task again, optionally for a "
                                     "new due time; the attempt count stays.")
    async def reopen_task(self, info: strawberry.Info, id: strawberry.ID,
                          input: ReopenTaskInput | None = None,
                          version: int | None = None) -> TaskResult:
        async def run() -> Task:
            data = TaskReopen.model_validate(input_to_dict(input) if input else {})
            return await _task(info, await tasks.reopen_task(
                info.context.session, info.context.principal, parse_id(id, "task"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def delete_task(self, info: strawberry.Info, id: strawberry.ID,
                          version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await tasks.delete_task(info.context.session, info.context.principal,
                                    parse_id(id, "task"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def restore_task(self, info: strawberry.Info, id: strawberry.ID) -> TaskResult:
        async def run() -> Task:
            return await _task(info, await tasks.restore_task(
                info.context.session, info.context.principal, parse_id(id, "task")))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation
    async def mark_notification_read(self, info: strawberry.Info,
                                     id: strawberry.ID) -> NotificationResult:
        async def run() -> Notification:
            return Notification.of(await notifications.mark_read(
                info.context.session, info.context.principal, parse_id(id, "notification")))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation
    async def mark_all_notifications_read(self, info: strawberry.Info) -> ReadAllResult:
        async def run() -> ReadAllSuccess:
            return ReadAllSuccess(count=await notifications.mark_all_read(
                info.context.session, info.context.principal))
        return await in_savepoint(info, run, body=None)


QUERY_TYPES: list[type] = [WorkQuery]
MUTATION_TYPES: list[type] = [WorkMutation]
