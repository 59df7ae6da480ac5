"""GraphQL object and input types for tasks and notifications."""

from __future__ import annotations

import datetime
import enum
import uuid

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.types.common import PageInfo
from app.api.graphql.types.records import Company, Contact
from app.domain.notifications.models import Notification as NotificationModel
from app.domain.tasks.schemas import TaskRead


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.enum(description="Which open tasks: due today (in `tz`, including past due), "
                             "overdue (due before now), or upcoming (due after today)")
class AgendaBucket(enum.Enum):
    TODAY = "today"
    OVERDUE = "overdue"
    UPCOMING = "upcoming"


@strawberry.type
class Task:
    id: strawberry.ID
    title: str
    type: str
    description: str | None
    due_at: datetime.datetime | None
    reminder_at: datetime.datetime | None
    assignee_id: strawberry.ID | None
    contact_id: strawberry.ID | None
    company_id: strawberry.ID | None
    deal_id: strawberry.ID | None
    status: str
    outcome: str | None
    note: str | None
    data: JSON
    attempt: int
    completed_at: datetime.datetime | None
    completed_by: str | None
    reminded_at: datetime.datetime | None
    overdue_notified_at: datetime.datetime | None
    overdue: bool
    contact_timezone: str | None
    contact_local_time: str | None = strawberry.field(description="The contact's clock now")
    due_at_contact_local: str | None = strawberry.field(
        description="The due time on the contact's clock")
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field(description="The related contact, when you may see it")
    async def contact(self, info: strawberry.Info) -> Contact | None:
        if self.contact_id is None:
            return None
        found = await info.context.loaders.get("contact").load(
            uuid.UUID(str(self.contact_id)))
        return Contact.of(found) if found else None

    @strawberry.field(description="The related company, when you may see it")
    async def company(self, info: strawberry.Info) -> Company | None:
        if self.company_id is None:
            return None
        found = await info.context.loaders.company.load(uuid.UUID(str(self.company_id)))
        return Company.of(found) if found else None

    @classmethod
    def of(cls, t: TaskRead) -> Task:
        return cls(id=strawberry.ID(str(t.id)), title=t.title, type=t.type,
                   description=t.description, due_at=t.due_at, reminder_at=t.reminder_at,
                   assignee_id=_id(t.assignee_id), contact_id=_id(t.contact_id),
                   company_id=_id(t.company_id), deal_id=_id(t.deal_id), status=t.status,
                   outcome=t.outcome, note=t.note, data=t.data, attempt=t.attempt,
                   completed_at=t.completed_at, completed_by=t.completed_by,
                   reminded_at=t.reminded_at, overdue_notified_at=t.overdue_notified_at,
                   overdue=t.overdue, contact_timezone=t.contact_timezone,
                   contact_local_time=t.contact_local_time,
                   due_at_contact_local=t.due_at_contact_local, version=t.version,
                   created_at=t.created_at, updated_at=t.updated_at)


@strawberry.type
class TaskEdge:
    cursor: str
    node: Task


@strawberry.type
class TaskConnection:
    edges: list[TaskEdge]
    page_info: PageInfo


@strawberry.type
class Notification:
    id: strawberry.ID
    type: str
    title: str
    body: str | None
    entity_type: str = strawberry.field(description="The record it is about")
    entity_id: strawberry.ID
    actor: str
    created_at: datetime.datetime
    read_at: datetime.datetime | None

    @classmethod
    def of(cls, n: NotificationModel) -> Notification:
        return cls(id=strawberry.ID(str(n.id)), type=n.type, title=n.title, body=n.body,
                   entity_type=n.entity_type, entity_id=strawberry.ID(str(n.entity_id)),
                   actor=n.actor, created_at=n.created_at, read_at=n.read_at)


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type
class NotificationConnection:
    edges: list[NotificationEdge]
    page_info: PageInfo


@strawberry.type
class ReadAllSuccess:
    count: int = strawberry.field(description="How many notifications were marked read now")


@strawberry.input(description="Fields of a task; on update, omitted fields stay as they are "
                              "and null clears a field (merge-patch). Times need an offset.")
class TaskInput:
    title: str | None = strawberry.UNSET
    type: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    due_at: datetime.datetime | None = strawberry.UNSET
    reminder_at: datetime.datetime | None = strawberry.UNSET
    assignee_id: strawberry.ID | None = strawberry.UNSET
    contact_id: strawberry.ID | None = strawberry.UNSET
    company_id: strawberry.ID | None = strawberry.UNSET
    deal_id: strawberry.ID | None = strawberry.UNSET
    data: JSON | None = strawberry.UNSET
    status: str | None = strawberry.field(
        default=strawberry.UNSET, description="Update only: `canceled` cancels an open task")


@strawberry.input
class CompleteTaskInput:
    outcome: str | None = strawberry.UNSET
    note: str | None = strawberry.UNSET
    data: JSON | None = strawberry.UNSET


@strawberry.input
class ReopenTaskInput:
    due_at: datetime.datetime | None = strawberry.UNSET
    reminder_at: datetime.datetime | None = strawberry.UNSET
