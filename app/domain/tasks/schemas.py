"""Task request and response shapes.

Times are RFC 3339 with an offset (a naive time is ambiguous: whose 10:00?) and are stored
in UTC. `outcome`, `note`, `attempt` and `completed_*` are written by `/complete` only, so they
are not accepted in a create or a patch (unknown fields are a 422)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

TASK_STATUSES = ("open", "done", "canceled")


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # year 1 with a positive offset, and the like
        raise ValueError("the time is out of range") from exc


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("must not contain NUL characters")
    return value


MAX_DATA_DEPTH = 10


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """What JSONB can store: finite numbers (JSON has no NaN or Infinity), no NUL characters,
    and not nested without end."""
    def check(item: Any, depth: int) -> None:
        if depth > MAX_DATA_DEPTH:
            raise ValueError(f"nested more than {MAX_DATA_DEPTH} levels deep")
        if isinstance(item, str):
            _no_nul(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite")
        elif isinstance(item, dict):
            for key, inner in item.items():
                _no_nul(key)
                check(inner, depth + 1)
        elif isinstance(item, list):
            for inner in item:
                check(inner, depth + 1)

    check(value, 0)
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_no_nul)]
Choice = Annotated[str, StringConstraints(min_length=1, max_length=50), AfterValidator(_no_nul)]
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_nul)]
TaskData = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_storable_json)]


class TaskFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    type: Choice | None = Field(default=None, description="One of the workspace's task_types")
    description: LongText | None = None
    due_at: UtcDatetime | None = None
    reminder_at: UtcDatetime | None = Field(
        default=None, description="When to remind the assignee (a `task_reminder` notification)")
    assignee_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the user who creates the task")
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    data: TaskData | None = Field(default=None, description="Structured data (an object)")


class TaskCreate(TaskFields):
    title: Title


class TaskUpdate(TaskFields):
    """JSON merge-patch: a field that is present is set (null clears it); absent ones stay.

    `status` may be set to `canceled` (from open); a task is done through `/complete` and
    opened again through `/reopen`."""

    status: Literal["open", "canceled"] | None = None


class TaskComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Choice | None = Field(
        default=None, description="One of the workspace's task_outcomes; default `done`")
    note: LongText | None = None
    data: TaskData | None = Field(
        default=None, description="Merged into the task's data (e.g. the measurements)")


class TaskReopen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_at: UtcDatetime | None = Field(default=None, description="A new due time")
    reminder_at: UtcDatetime | None = Field(default=None, description="A new reminder time")


class TaskRead(BaseModel):
    id: uuid.UUID
    title: str
    type: str
    description: str | None
    due_at: datetime | None
    reminder_at: datetime | None
    assignee_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    company_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    status: str
    outcome: str | None
    note: str | None
    data: dict[str, Any]
    attempt: int
    completed_at: datetime | None
    completed_by: str | None
    reminded_at: datetime | None = Field(description="When the reminder was sent")
    overdue_notified_at: datetime | None = Field(description="When the overdue notice was sent")
    overdue: bool = Field(description="Open and past its due time")
    contact_timezone: str | None = Field(description="The related contact's IANA time zone")
    contact_local_time: str | None = Field(description="The contact's clock now")
    due_at_contact_local: str | None = Field(description="due_at on the contact's clock")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str
