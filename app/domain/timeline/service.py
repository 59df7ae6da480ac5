"""The timeline of a contact, company or deal: everything that happened to it, newest first.

Seven sources feed it: activities linked to the record, tasks linked to it (an entry when each
was created and one when it was completed or canceled), stage changes of the record's deals
(from `stage_intervals`), the record's own events (created, field changes, deleted,
restored, merged), documents generated for a deal, and the emails and SMS sent to a contact
or about a deal (one entry each, at the time it was queued, showing its delivery status now). A page reads `limit + 1` rows from each source under the same keyset
condition on (occurred_at, source, id), merges them in Python and keeps `limit`: a constant
number of queries whatever the page size, no N+1. Entries with the same time are ordered by
source and then id, and the cursor carries all three, so paging never skips or repeats one.

The card is the unit of access (docs/decisions/0016-activity-visibility-and-timeline.md):
whoever sees the record sees every activity, task and change on it, whoever handled them.
Deals are records of their own, so a contact's or company's timeline shows stage changes only
of the deals the caller may see."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal, DealContact, StageInterval
from app.domain.documents.models import Document
from app.domain.messages.models import Message
from app.domain.outbox.models import Event
from app.domain.pipelines.models import Stage
from app.domain.shared import records
from app.domain.shared.errors import ValidationError
from app.domain.shared.listing import check_limit
from app.domain.shared.principal import Principal
from app.domain.tasks.models import Task
from app.domain.workspaces.models import User

RecordType = Literal["contact", "company", "deal"]
Kind = Literal["activity", "task", "stage_change", "change", "created", "document", "message"]
KINDS: tuple[str, ...] = ("activity", "task", "stage_change", "change", "created", "document",
                          "message")
MODELS: dict[str, Any] = {"contact": Contact, "company": Company, "deal": Deal}

# Sources, and their place among entries with the same time (higher comes first).
EVENTS, STAGES, TASKS_CREATED, TASKS_CLOSED, ACTIVITIES, DOCUMENTS, MESSAGES = range(7)
_PREFIX = {EVENTS: "event", STAGES: "stage_change", TASKS_CREATED: "task_created",
           TASKS_CLOSED: "task_closed", ACTIVITIES: "activity", DOCUMENTS: "document",
           MESSAGES: "message"}

# Fields whose change is bookkeeping or derived (scores, the stage, shown as stage changes):
# an update that touched only these is not an entry, and they are left out of the rest.
_BOOKKEEPING = {"version", "updated_at", "updated_by", "created_at", "created_by"}
NOISE: dict[str, frozenset[str]] = {
    "contact": frozenset(_BOOKKEEPING),
    "company": frozenset(_BOOKKEEPING),
    "deal": frozenset(_BOOKKEEPING | {
        "stage_id", "pipeline_id", "status", "closed_at", "stage_entered_at",
        "last_activity_at", "rotting_since", "score_class", "score_points", "probability",
        "expected_amount", "max_expected_amount", "score_explanation",
        # A manual score_adjustment is a change; who made it and when are the entry's own.
        "score_adjusted_by", "score_adjusted_at"}),
}


class TimelineRecord(BaseModel):
    type: str = Field(description="activity, task, deal, contact, company, document or "
                                  "message")
    id: uuid.UUID


class TimelineEntry(BaseModel):
    id: str = Field(description="Stable id of the entry (source and row)")
    kind: Kind
    occurred_at: datetime
    actor: str = Field(description='Who or what caused it: "user:<id>", "api_key:<id>", '
                                   '"system"')
    actor_name: str | None = Field(description="The user's name when a user caused it")
    summary: str = Field(description="A short human-readable line")
    record: TimelineRecord = Field(description="The record the entry is about")
    payload: dict[str, Any] = Field(description=(
        "activity: the activity; task: the task and `event` (created, completed, canceled); "
        "stage_change: deal, stages and times; change: `event_type`, `changed`, `before`, "
        "`after`; created: `event_type` and `after`; document: id, name, sizes and download "
        "URLs; message: channel, to, subject, status, attempts, sent_at, last_error"))


# A task entry shows the task as it is now (both its created and its completed entry).
_TASK_FIELDS = ("id", "title", "type", "status", "description", "due_at", "assignee_id",
                "contact_id", "company_id", "deal_id", "outcome", "note", "data", "attempt",
                "completed_at", "completed_by", "created_at", "created_by", "version")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Row:
    """An entry before it is shaped: its sort key plus what the summary needs."""

    occurred_at: datetime
    source: int
    row_id: uuid.UUID
    kind: str
    actor: str
    summary: str
    record: tuple[str, uuid.UUID]
    payload: dict[str, Any]

    @property
    def key(self) -> tuple[datetime, int, uuid.UUID]:
        return self.occurred_at, self.source, self.row_id


@dataclass(frozen=True)
class _Cursor:
    occurred_at: datetime
    source: int
    row_id: uuid.UUID


def encode_cursor(row: _Row) -> str:
    raw = orjson.dumps([row.occurred_at.isoformat(), row.source, str(row.row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, source, row_id = orjson.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or type(source) is not int or source not in _PREFIX \
                or not isinstance(row_id, str):
            raise ValueError
        return _Cursor(moment.astimezone(UTC), source, uuid.UUID(row_id))
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValidationError.at(["query", "cursor"], "invalid cursor") from exc


def parse_kinds(raw: str | Sequence[str] | None, loc: list[str | int]) -> set[str]:
    """`types=activity,task` (or a list); none means every kind."""
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    kinds = {k.strip() for k in items if k.strip()}
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValidationError.at(loc, f"unknown entry type {min(unknown)!r}; use "
                                      + ", ".join(KINDS))
    return kinds or set(KINDS)


def _after(cursor: _Cursor | None, source: int, at: Any, row_id: Any) -> list[Any]:
    """The keyset condition for one source: entries strictly after the cursor in
    (occurred_at desc, source desc, id desc) order."""
    if cursor is None:
        return []
    if source < cursor.source:
        return [at <= cursor.occurred_at]
    if source > cursor.source:
        return [at < cursor.occurred_at]
    return [tuple_(at, row_id) < tuple_(cursor.occurred_at, cursor.row_id)]


@dataclass
class _Scope:
    """Where to look for one record's entries."""

    record_type: str
    record_id: uuid.UUID
    entity_ids: Any  # the record's own ids: a contact's include the cards merged into it
    deal_condition: ColumnElement[bool]  # which deals' stage changes belong here
    link_column: str  # contact_id / company_id / deal_id on activities and tasks


def _scope(record_type: str, record_id: uuid.UUID) -> _Scope:
    if record_type == "contact":
        tree = select(Contact.id).where(Contact.id == record_id).cte("merged", recursive=True)
        tree = tree.union(select(Contact.id).where(Contact.merged_into_id == tree.c.id))
        ids = select(tree.c.id)
        deals = Deal.id.in_(select(DealContact.deal_id).where(DealContact.contact_id.in_(ids)))
        return _Scope(record_type, record_id, ids, deals, "contact_id")
    if record_type == "company":
        return _Scope(record_type, record_id, [record_id], Deal.company_id == record_id,
                      "company_id")
    # The deal's own creation is its `deal.created` event; its first interval would repeat it.
    return _Scope(record_type, record_id, [record_id],
                  and_(Deal.id == record_id, StageInterval.from_stage_id.is_not(None)), "deal_id")


def _links(column: Any, scope: _Scope) -> ColumnElement[bool]:
    ids = scope.entity_ids
    return column.in_(ids) if not isinstance(ids, list) else column == ids[0]


async def _activities(session: AsyncSession, scope: _Scope, cursor: _Cursor | None,
                      n: int) -> list[_Row]:
    query = select(Activity).where(
        _links(getattr(Activity, scope.link_column), scope), Activity.deleted_at.is_(None),
        *_after(cursor, ACTIVITIES, Activity.occurred_at, Activity.id))
    rows = await _top(session, query, Activity.occurred_at, Activity.id, n)
    result = []
    for a in rows:
        payload = activities.to_read(a).model_dump(mode="json")
        result.append(_Row(a.occurred_at, ACTIVITIES, a.id, "activity", a.created_by,
                           _activity_summary(a), ("activity", a.id), payload))
    return result


async def _tasks(session: AsyncSession, scope: _Scope, cursor: _Cursor | None, n: int,
                 *, closed: bool) -> list[_Row]:
    source = TASKS_CLOSED if closed else TASKS_CREATED
    at = Task.completed_at if closed else Task.created_at
    query = select(Task).where(_links(getattr(Task, scope.link_column), scope),
                               Task.deleted_at.is_(None),
                               *([Task.completed_at.is_not(None)] if closed else []),
                               *_after(cursor, source, at, Task.id))
    result = []
    for task in await _top(session, query, at, Task.id, n):
        event = ("canceled" if task.status == "canceled" else "completed") if closed \
            else "created"
        shown = records.snapshot(task)
        payload = {**{k: shown.get(k) for k in _TASK_FIELDS}, "event": event}
        actor = (task.completed_by or task.updated_by) if closed else task.created_by
        result.append(_Row(task.completed_at if closed else task.created_at, source, task.id,
                           "task", actor, _task_summary(task, event), ("task", task.id),
                           payload))
    return result


async def _stage_changes(session: AsyncSession, principal: Principal, scope: _Scope,
                         cursor: _Cursor | None, n: int) -> list[_Row]:
    to_stage, from_stage = aliased(Stage), aliased(Stage)
    query = (
        select(StageInterval, Deal.title, Deal.lost_reason, to_stage.name, to_stage.kind,
               from_stage.name)
        .join(Deal, and_(Deal.workspace_id == StageInterval.workspace_id,
                         Deal.id == StageInterval.deal_id))
        .join(to_stage, and_(to_stage.workspace_id == StageInterval.workspace_id,
                             to_stage.id == StageInterval.stage_id))
        .outerjoin(from_stage, and_(from_stage.workspace_id == StageInterval.workspace_id,
                                    from_stage.id == StageInterval.from_stage_id))
        .where(scope.deal_condition, Deal.deleted_at.is_(None),
               records.visibility_condition(Deal, principal),
               *_after(cursor, STAGES, StageInterval.entered_at, StageInterval.id)))
    rows = (await session.execute(query.order_by(
        StageInterval.entered_at.desc(), StageInterval.id.desc()).limit(n))).all()
    result = []
    for interval, title, deal_lost_reason, stage_name, stage_kind, from_name in rows:
        # The deal's lost reason belongs to the lost stage it is in now.
        lost_reason = deal_lost_reason if stage_kind == "lost" and interval.left_at is None \
            else None
        payload = {"deal_id": str(interval.deal_id), "deal_title": title,
                   "pipeline_id": str(interval.pipeline_id),
                   "stage_id": str(interval.stage_id), "stage_name": stage_name,
                   "from_stage_id": str(interval.from_stage_id) if interval.from_stage_id
                   else None, "from_stage_name": from_name,
                   "entered_at": _iso(interval.entered_at), "entered_by": interval.entered_by,
                   "left_at": _iso(interval.left_at) if interval.left_at else None,
                   "lost_reason": lost_reason}
        summary = _stage_summary(title, from_name, stage_name)
        if lost_reason:
            summary += f" (lost: {lost_reason})"
        result.append(_Row(interval.entered_at, STAGES, interval.id, "stage_change",
                           interval.entered_by, summary, ("deal", interval.deal_id), payload))
    return result


async def _events(session: AsyncSession, scope: _Scope, kinds: set[str],
                  cursor: _Cursor | None, n: int) -> list[_Row]:
    entity = scope.record_type
    types = ([f"{entity}.created"] if "created" in kinds else []) + (
        [f"{entity}.{t}" for t in ("updated", "deleted", "restored", "merged")]
        if "change" in kinds else [])
    noise = NOISE[entity]
    query = select(Event).where(
        _links(Event.entity_id, scope), Event.entity_type == entity, Event.type.in_(types),
        not_(Event.changed.contained_by(sorted(noise))),
        *_after(cursor, EVENTS, Event.occurred_at, Event.id))
    result = []
    for event in await _top(session, query, Event.occurred_at, Event.id, n):
        if event.type.endswith(".created"):
            kind = "created"
            payload: dict[str, Any] = {"event_type": event.type, "after": event.after or {}}
        else:
            kind = "change"
            changed = [f for f in event.changed if f not in noise]
            payload = {"event_type": event.type, "changed": changed,
                       "before": {f: (event.before or {}).get(f) for f in changed},
                       "after": {f: (event.after or {}).get(f) for f in changed}}
        result.append(_Row(event.occurred_at, EVENTS, event.id, kind, event.actor,
                           _change_summary(entity, event.type, payload),
                           (entity, event.entity_id), payload))
    return result


async def _documents(session: AsyncSession, scope: _Scope, cursor: _Cursor | None,
                     n: int) -> list[_Row]:
    if scope.record_type != "deal":
        return []
    query = select(Document.id, Document.name, Document.template_id, Document.pdf_size,
                   Document.html_size, Document.created_at, Document.created_by).where(
        Document.deal_id == scope.record_id, Document.deleted_at.is_(None),
        *_after(cursor, DOCUMENTS, Document.created_at, Document.id))
    rows = (await session.execute(query.order_by(
        Document.created_at.desc(), Document.id.desc()).limit(n))).all()
    result = []
    for row in rows:
        base = f"/api/v1/documents/{row.id}/content"
        payload = {"id": str(row.id), "name": row.name,
                   "template_id": str(row.template_id) if row.template_id else None,
                   "pdf_size": row.pdf_size, "html_size": row.html_size,
                   "pdf_url": f"{base}?format=pdf", "html_url": f"{base}?format=html"}
        result.append(_Row(row.created_at, DOCUMENTS, row.id, "document", row.created_by,
                           f"Document generated: {_excerpt(row.name)}", ("document", row.id),
                           payload))
    return result


_MESSAGE_FIELDS = ("id", "channel", "to", "subject", "status", "attempts", "send_at",
                   "sent_at", "failed_at", "last_error", "template_id", "contact_id",
                   "deal_id", "document_ids", "created_at")


async def _messages(session: AsyncSession, scope: _Scope, cursor: _Cursor | None,
                    n: int) -> list[_Row]:
    if scope.record_type not in ("contact", "deal"):
        return []
    query = select(Message).where(
        _links(getattr(Message, scope.link_column), scope), Message.deleted_at.is_(None),
        *_after(cursor, MESSAGES, Message.created_at, Message.id))
    result = []
    for m in await _top(session, query, Message.created_at, Message.id, n):
        shown = records.snapshot(m)
        payload = {k: shown.get(k) for k in _MESSAGE_FIELDS}
        what = "Email" if m.channel == "email" else "SMS"
        line = f"{what} to {m.to}: {_excerpt(m.subject or m.body, 60)} ({m.status})"
        result.append(_Row(m.created_at, MESSAGES, m.id, "message", m.created_by, line,
                           ("message", m.id), payload))
    return result


async def _top(session: AsyncSession, query: Select[Any], at: Any, row_id: Any,
               n: int) -> list[Any]:
    ordered = query.order_by(at.desc(), row_id.desc()).limit(n)
    return list((await session.execute(ordered)).scalars())


def _excerpt(value: str | None, size: int = 80) -> str:
    line = " ".join((value or "").split())
    return line if len(line) <= size else line[: size - 1] + "…"


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h {minutes} min" if hours else
            f"{minutes} min {rest} s" if rest else f"{minutes} min")


def _activity_summary(a: Activity) -> str:
    incoming = a.direction == "in"
    if a.type == "call":
        line = "Incoming call" if incoming else "Outgoing call"
        if a.call_status in ("missed", "busy"):
            return f"{line} ({a.call_status})"
        return f"{line}, {_duration(a.duration_seconds)}" if a.duration_seconds else line
    if a.type == "email":
        return f"Email {'received' if incoming else 'sent'}: " \
               f"{_excerpt(a.subject) or '(no subject)'}"
    text = _excerpt(a.subject or a.body)
    if a.type in ("sms", "message"):
        what = "SMS" if a.type == "sms" else "Message"
        via = f" via {a.channel}" if a.type == "message" and a.channel else ""
        line = f"{what} {'received' if incoming else 'sent'}{via}"
        return f"{line}: {text}" if text else line
    return f"{a.type.capitalize()}: {text}" if text else a.type.capitalize()


def _task_summary(task: Task, event: str) -> str:
    line = f"Task {event}: {_excerpt(task.title)}"
    return f"{line} (outcome: {task.outcome})" if event == "completed" and task.outcome \
        else line


def _stage_summary(title: str, from_name: str | None, to_name: str) -> str:
    if from_name is None:
        return f"Deal “{_excerpt(title, 60)}” created in stage {to_name}"
    return f"Deal “{_excerpt(title, 60)}” moved from {from_name} to {to_name}"


def _shown(value: Any) -> str | None:
    if value is None:
        return "—"
    if isinstance(value, str | int | float | bool):
        return _excerpt(str(value), 40)
    return None


def _change_summary(entity: str, event_type: str, payload: dict[str, Any]) -> str:
    name, action = entity.capitalize(), event_type.rpartition(".")[2]
    if action in ("created", "deleted", "restored"):
        return f"{name} {action}"
    if action == "merged":
        return f"{name} merged into another card"
    fields = payload["changed"]
    if len(fields) == 1:
        before, after = _shown(payload["before"][fields[0]]), _shown(payload["after"][fields[0]])
        if before is not None and after is not None:
            return f"{fields[0].replace('_', ' ').capitalize()}: {before} → {after}"
    return "Changed " + ", ".join(f.replace("_", " ") for f in fields)


async def _actor_names(session: AsyncSession, rows: list[_Row]) -> dict[str, str]:
    ids = set()
    for row in rows:
        kind, _, raw = row.actor.partition(":")
        if kind == "user":
            try:
                ids.add(uuid.UUID(raw))
            except ValueError:
                continue
    if not ids:
        return {}
    found = await session.execute(select(User.id, User.full_name, User.email)
                                  .where(User.id.in_(ids)))
    return {f"user:{uid}": name or email for uid, name, email in found.all()}


async def timeline(session: AsyncSession, principal: Principal, record_type: str,
                   record_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None,
                   kinds: set[str] | None = None
                   ) -> tuple[list[tuple[TimelineEntry, str]], str | None]:
    """One page of the record's timeline, newest first — each entry with the cursor that
    continues right after it — and the cursor of the next page (None on the last).
    A record that does not exist, is deleted, or is not visible to `principal` is a 404."""
    check_limit(limit, ["query", "limit"])
    position = decode_cursor(cursor) if cursor else None
    kinds = kinds or set(KINDS)
    await records.get_visible(session, MODELS[record_type], principal, record_id)
    scope, n = _scope(record_type, record_id), limit + 1
    rows: list[_Row] = []
    if "activity" in kinds:
        rows += await _activities(session, scope, position, n)
    if "task" in kinds:
        rows += await _tasks(session, scope, position, n, closed=False)
        rows += await _tasks(session, scope, position, n, closed=True)
    if "stage_change" in kinds:
        rows += await _stage_changes(session, principal, scope, position, n)
    if kinds & {"change", "created"}:
        rows += await _events(session, scope, kinds, position, n)
    if "document" in kinds:
        rows += await _documents(session, scope, position, n)
    if "message" in kinds:
        rows += await _messages(session, scope, position, n)
    rows.sort(key=lambda r: r.key, reverse=True)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    names = await _actor_names(session, page)
    return [(TimelineEntry(
        id=f"{_PREFIX[r.source]}:{r.row_id}", kind=r.kind,  # type: ignore[arg-type]
        occurred_at=r.occurred_at, actor=r.actor, actor_name=names.get(r.actor),
        summary=r.summary, record=TimelineRecord(type=r.record[0], id=r.record[1]),
        payload=r.payload), encode_cursor(r)) for r in page], next_cursor
