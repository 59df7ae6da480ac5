"""The rule language: a pipeline rule is data — a trigger, conditions and actions.

Every part is a pydantic model with `extra="forbid"`, so a rule is checked when it is saved
and a 422 points at the exact faulty part (`body.actions.1.create_task.due.in`). Unions are
tagged by `type` (triggers, actions) or by their one key (`all` / `any` / `not` / `field`
conditions), which keeps those locations short and readable.

Durations are written as `15m`, `3h`, `1d`, `2w` (minutes, hours, days, weeks)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
)

DURATION_RE = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = DURATION_RE.match(text)
    if not match:
        raise ValueError("a duration is a number and a unit: 15m, 3h, 1d, 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, StringConstraints(max_length=10), Field(
    description="A number and a unit: `15m`, `3h`, `1d`, `2w`", examples=["15m"])]
TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ObjectType = Literal["contact", "company", "deal", "task", "activity"]
FieldPath = Annotated[str, StringConstraints(
    min_length=3, max_length=200, pattern=r"^(contact|company|deal|task|activity|owner|stage|"
                                          r"pipeline|event)\.[A-Za-z0-9_.]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Triggers

class RecordCreated(Strict):
    """A record of `object` was created."""
    type: Literal["record_created"]
    object: ObjectType


class RecordUpdated(Strict):
    """A record of `object` was edited; with `fields`, only when one of them changed."""
    type: Literal["record_updated"]
    object: ObjectType
    fields: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=50)


class StageEntered(Strict):
    """A deal moved into a stage (any stage of the pipeline when `stage_id` is left out)."""
    type: Literal["stage_entered"]
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None


class StageLeft(Strict):
    """A deal moved out of a stage."""
    type: Literal["stage_left"]
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None


class TaskCompleted(Strict):
    """A task was completed, optionally of one type and with one outcome (`no_answer`)."""
    type: Literal["task_completed"]
    task_type: str | None = Field(default=None, max_length=50)
    outcome: str | None = Field(default=None, max_length=50)


class TaskOverdue(Strict):
    """An open task passed its due time (the minute sweep notices it once)."""
    type: Literal["task_overdue"]
    task_type: str | None = Field(default=None, max_length=50)


class ReminderDue(Strict):
    """A task's reminder time came."""
    type: Literal["reminder_due"]
    task_type: str | None = Field(default=None, max_length=50)


class DealRotting(Strict):
    """A deal sat in its stage past the stage's rotting days."""
    type: Literal["deal_rotting"]
    pipeline_id: uuid.UUID | None = None


class EventOccurred(Strict):
    """Any event of the log by its type: `call.missed`, `call.logged`, `form.submitted`,
    `email.received`, `deal.won`, `message.failed`, …"""
    type: Literal["event"]
    event: Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=80)]


class DateReached(Strict):
    """Time relative to a date field of a contact: `offset_days` before (negative) or after
    (positive) the date, at `at` o'clock in the contact's time zone (the workspace's when
    the contact has none). `yearly` repeats every year (birthdays)."""
    type: Literal["date_reached"]
    object: Literal["contact"] = "contact"
    field: Annotated[str, StringConstraints(
        pattern=r"^(birthday|custom_fields\.[a-z][a-z0-9_]{0,62})$")]
    offset_days: int = Field(default=0, ge=-366, le=366)
    at: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "09:00"
    yearly: bool = False


Trigger = Annotated[
    RecordCreated | RecordUpdated | StageEntered | StageLeft | TaskCompleted | TaskOverdue
    | ReminderDue | DealRotting | EventOccurred | DateReached,
    Field(discriminator="type")]


# Conditions

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with",
             "has", "not_has", "is_set", "is_empty", "changed"]
VALUELESS_OPS = {"is_set", "is_empty", "changed"}


class FieldCondition(Strict):
    """Compare a field of the record or its related records: `deal.amount`,
    `contact.tags`, `contact.custom_fields.visit_frequency`, `task.attempt`, `owner.team_ids`,
    `stage.kind`, `event.after.outcome`. `changed` is true when the triggering event changed
    that field."""
    field: FieldPath
    op: Op = "eq"
    value: Any = None

    @field_validator("value")
    @classmethod
    def _small(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 200:
            raise ValueError("at most 200 values")
        if isinstance(value, str) and len(value) > 1000:
            raise ValueError("at most 1000 characters")
        return value


class AllOf(Strict):
    all: list[Condition] = Field(max_length=50)


class AnyOf(Strict):
    any: list[Condition] = Field(max_length=50)


class NotOf(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "field"
    if isinstance(value, BaseModel):
        return {AllOf: "all", AnyOf: "any", NotOf: "not"}.get(type(value), "field")
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")] | Annotated[NotOf, Tag("not")]
    | Annotated[FieldCondition, Tag("field")],
    Discriminator(_condition_kind)]


# Who: assignees and recipients

class OwnerOfRecord(Strict):
    """The owner of the trigger's record (a task's assignee; a task's deal owner when the
    task has none)."""
    strategy: Literal["owner"]


class OneUser(Strict):
    strategy: Literal["user"]
    user_id: uuid.UUID


class UsersWithRole(Strict):
    """Users with a role: an assignment takes them in turn, a notice goes to all."""
    strategy: Literal["role"]
    role: Literal["owner", "admin", "manager", "agent"]


class RoundRobin(Strict):
    """The members of a team in turn (the measurers, the installers)."""
    strategy: Literal["round_robin"]
    team_id: uuid.UUID


class TeamHead(Strict):
    """The head of a team; without `team_id`, the heads of every team the record's owner
    belongs to (the head of department)."""
    strategy: Literal["team_head"]
    team_id: uuid.UUID | None = None


Who = Annotated[OwnerOfRecord | OneUser | UsersWithRole | RoundRobin | TeamHead,
                Field(discriminator="strategy")]


# Actions

class DueIn(Strict):
    """Due `in` a duration from now, or at a date/time field plus `offset`
    (`task.data.visit_at`)."""
    in_: Duration | None = Field(default=None, alias="in")
    field: FieldPath | None = None
    offset: Annotated[str, StringConstraints(pattern=r"^-?\d{1,5}[mhdw]$")] | None = None
    business_hours: bool = Field(default=False, description=(
        "Move a due time outside the workspace's business hours (in the contact's time zone) "
        "to the next opening"))
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("in_")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return _check_duration(value) if value is not None else None


class CreateTask(Strict):
    type: Literal["create_task"]
    title: TemplateText = Field(description="A template: `Call {{ contact.full_name }}`")
    task_type: str = Field(default="call", max_length=50)
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    due: DueIn | None = None
    reminder_before: Duration | None = None
    assignee: Who = Field(default_factory=lambda: OwnerOfRecord(strategy="owner"))

    @field_validator("reminder_before")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return _check_duration(value) if value is not None else None


class AssignOwner(Strict):
    type: Literal["assign_owner"]
    object: Literal["contact", "company", "deal"] | None = Field(
        default=None, description="Default: the trigger's record (a task's deal)")
    assignee: Who


class MoveDeal(Strict):
    type: Literal["move_deal"]
    stage_id: uuid.UUID
    lost_reason: str | None = Field(default=None, max_length=200)


class UpdateFields(Strict):
    """Set fields as a PATCH would (the same checks): `{"status": "hot"}`."""
    type: Literal["update_fields"]
    object: Literal["contact", "company", "deal", "task"] | None = None
    set: dict[str, Any] = Field(min_length=1, max_length=50)


class Notify(Strict):
    type: Literal["notify"]
    to: Who
    title: TemplateText
    body: Annotated[str, StringConstraints(max_length=5000)] | None = None


class SendMessage(Strict):
    """An email or SMS to the record's contact (or to a user), from a template or a text."""
    type: Literal["send_email", "send_sms"]
    to: Literal["contact"] | OneUser = "contact"
    template_id: uuid.UUID | None = None
    subject: Annotated[str, StringConstraints(max_length=500)] | None = None
    body: Annotated[str, StringConstraints(max_length=20000)] | None = None
    attach_documents: bool = Field(default=False, description=(
        "Attach the documents an earlier generate_document action of this run made"))


class GenerateDocument(Strict):
    type: Literal["generate_document"]
    template_id: uuid.UUID


class CallWebhook(Strict):
    """POST the event and the record to a URL (retried with backoff; the `webhook-id`
    header stays the same across retries)."""
    type: Literal["call_webhook"]
    url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://")]


class Wait(Strict):
    """Wait, then go on with the actions after this one (the record is read again then).
    With `recheck`, the rule's conditions must still hold then ("if the task is still
    open two days later"), or the rest is skipped."""
    type: Literal["wait"]
    for_: Duration = Field(alias="for")
    recheck: bool = False
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("for_")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _check_duration(value)


class NoAnswerCadence(Strict):
    """Reschedule-by-attempt (S4): on a task trigger, attempt n reopens the task due
    `offsets[n-1]` from now; once the offsets are used up, `on_exhausted` runs."""
    type: Literal["cadence"]
    offsets: list[Duration] = Field(min_length=1, max_length=20)
    on_exhausted: list[SimpleAction] = Field(default_factory=list, max_length=10)

    @field_validator("offsets")
    @classmethod
    def _durations(cls, values: list[str]) -> list[str]:
        return [_check_duration(v) for v in values]


SimpleAction = Annotated[
    CreateTask | AssignOwner | MoveDeal | UpdateFields | Notify | SendMessage | GenerateDocument
    | CallWebhook, Field(discriminator="type")]
Action = Annotated[
    CreateTask | AssignOwner | MoveDeal | UpdateFields | Notify | SendMessage | GenerateDocument
    | CallWebhook | Wait | NoAnswerCadence, Field(discriminator="type")]


class RuleSpec(Strict):
    """What a rule does: the parts the engine reads."""
    trigger: Trigger
    conditions: Condition | None = None
    actions: list[Action] = Field(min_length=1, max_length=20)


for _model in (AllOf, AnyOf, NotOf, NoAnswerCadence, RuleSpec):
    _model.model_rebuild()
