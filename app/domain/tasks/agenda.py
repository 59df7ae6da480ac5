"""The clock side of tasks: the contact's local times, due-time keysets, and "my work".

"My work" is what a frontend shows all day (my open tasks due today, overdue, upcoming), so
it is one lean query on `ix_tasks_agenda` (workspace, assignee, due_at, id; open and live
tasks only) with the contact's time zone joined in, returning plain rows: no ORM objects.

Buckets, in the time zone `tz` (default: the workspace's):
  today     due between the start and the end of today, including what is already past due
  overdue   due before now
  upcoming  due after the end of today
so a task due this morning and not done is in both "today" and "overdue" (see decision 0014).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, false, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from app.db import driver_connection
from app.domain.contacts.models import Contact
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.principal import Principal
from app.domain.shared.records import visibility_condition
from app.domain.tasks.models import Task
from app.domain.workspaces.context import workspace_timezone
from app.domain.workspaces.models import Team, TeamMember

Bucket = Literal["today", "overdue", "upcoming"]
BUCKETS: tuple[str, ...] = ("today", "overdue", "upcoming")

# A literal, not a bind parameter: the partial indexes say `status = 'open'`, and a generic
# plan for `status = $1` could not use them.
OPEN = literal_column("'open'")

# Stored columns a task read shows, in TaskRead's order (the clock fields are computed).
STORED_FIELDS = (
    "id", "title", "type", "description", "due_at", "reminder_at", "assignee_id", "contact_id",
    "company_id", "deal_id", "status", "outcome", "note", "data", "attempt", "completed_at",
    "completed_by", "reminded_at", "overdue_notified_at", "version", "created_at", "updated_at",
    "deleted_at", "created_by", "updated_by")


# Every field of a task read, in TaskRead's order: the stored ones, then the clock ones.
READ_ORDER = (*STORED_FIELDS[:19], "overdue", "contact_timezone", "contact_local_time",
              "due_at_contact_local", *STORED_FIELDS[19:])


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return None


def wall_clock(at: datetime, tz_name: str | None) -> str:
    """A time as people read it in a zone: `2027-03-02 12:15 Europe/Moscow`."""
    tz = zone(tz_name) or zone("UTC")
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M} {tz_name if zone(tz_name) else 'UTC'}"


def clock_fields(contact_tz: str | None, due_at: datetime | None, status: str,
                 now: datetime) -> dict[str, Any]:
    """What a task read adds to the stored row: the contact's clock now and at the due time."""
    tz = zone(contact_tz)
    return {
        "overdue": status == "open" and due_at is not None and due_at < now,
        "contact_timezone": contact_tz if tz else None,
        "contact_local_time": now.astimezone(tz).isoformat(timespec="seconds") if tz else None,
        "due_at_contact_local": (due_at.astimezone(tz).isoformat(timespec="seconds")
                                 if tz and due_at else None),
    }


# Keyset on (due_at, id). Lists sorted by due_at put tasks without one last, either way.

def encode_due_cursor(due_at: datetime | None, task_id: uuid.UUID) -> str:
    payload = orjson.dumps([due_at.isoformat() if due_at else None, str(task_id)])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_due_cursor(cursor: str, loc: list[str | int]) -> tuple[datetime | None, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, task_id = orjson.loads(raw)
        due = datetime.fromisoformat(value) if value is not None else None
        if due is not None:
            if due.tzinfo is None:
                raise ValueError
            due = due.astimezone(UTC)  # out of range (year 1 at +05:00) raises here, not later
        return due, uuid.UUID(task_id)
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValidationError.at(loc, "invalid cursor") from exc


def order_by_due(query: Select[Any], cursor: str | None, *, descending: bool = False,
                 loc: list[str | int] | None = None) -> Select[Any]:
    """Sort by due time then id, tasks without a due time last, continuing after `cursor`."""
    if cursor:
        due, last_id = decode_due_cursor(cursor, loc or ["query", "cursor"])
        after_id = Task.id < last_id if descending else Task.id > last_id
        if due is None:
            query = query.where(Task.due_at.is_(None), after_id)
        else:
            later = Task.due_at < due if descending else Task.due_at > due
            query = query.where(or_(later, and_(Task.due_at == due, after_id),
                                    Task.due_at.is_(None)))
    if descending:
        return query.order_by(Task.due_at.desc().nulls_last(), Task.id.desc())
    return query.order_by(Task.due_at.asc().nulls_last(), Task.id.asc())


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end of the local day that contains `now` (23 or 25 hours on DST days)."""
    day = now.astimezone(tz).date()
    return (datetime.combine(day, time.min, tzinfo=tz),
            datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz))


async def _scope(session: AsyncSession, principal: Principal, assignee_id: str | None,
                 team_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    """Whose tasks: the caller's by default, an assignee's, or a team's members'."""
    conditions: list[ColumnElement[bool]] = []
    if assignee_id == "me" or (assignee_id is None and team_id is None):
        if principal.user_id is None:
            raise ValidationError.at(["query", "assignee_id"],
                                     "an API key has no tasks of its own: give assignee_id "
                                     "(a user id) or team_id")
        conditions.append(Task.assignee_id == principal.user_id)
    elif assignee_id is not None:
        try:
            conditions.append(Task.assignee_id == uuid.UUID(assignee_id))
        except ValueError as exc:
            raise ValidationError.at(["query", "assignee_id"],
                                     "a user id, or `me`") from exc
    if team_id is not None:
        exists = (await session.execute(select(Team.id).where(Team.id == team_id))).first()
        if exists is None:
            raise ValidationError.at(["query", "team_id"], "no such team")
        members = list((await session.execute(select(TeamMember.user_id).where(
            TeamMember.team_id == team_id))).scalars())
        conditions.append(Task.assignee_id.in_(members) if members else false())
    return conditions


def _base_select() -> Select[Any]:
    return (select(*(getattr(Task, name) for name in STORED_FIELDS),
                   Contact.timezone.label("contact_timezone"))
            .select_from(Task)
            .outerjoin(Contact, and_(Contact.workspace_id == Task.workspace_id,
                                     Contact.id == Task.contact_id))
            .where(Task.workspace_id == bindparam("ws"), Task.status == OPEN,
                   Task.deleted_at.is_(None)))


# The caller's own bucket — what every frontend asks all day — is one fixed prepared
# statement on the driver connection (decision 0055's pattern): SQLAlchemy's execute and row
# processing cost more than the query. Everybody may see their own tasks, so no visibility
# condition is needed; RLS scopes it to the workspace, as it does every query. $3/$4 bound the
# bucket; $6/$7 continue it after a cursor.
_MINE_SQL = (
    "select " + ", ".join(f"t.{name}" for name in STORED_FIELDS) + ", c.timezone"
    " from tasks t left join contacts c"
    " on c.workspace_id = t.workspace_id and c.id = t.contact_id"
    " where t.workspace_id = $1 and t.status = 'open' and t.deleted_at is null"
    " and t.assignee_id = $2 and t.due_at >= $3 and t.due_at < $4{after}"
    " order by t.due_at, t.id limit $5")
_MINE = _MINE_SQL.format(after="")
_MINE_AFTER = _MINE_SQL.format(after=" and (t.due_at, t.id) > ($6, $7)")
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)

# Positions in a row: the stored fields in order, then the contact's time zone. A read puts
# the clock fields between the stored ones, before `_CLOCK_AT`.
_CLOCK_AT = READ_ORDER.index("overdue")
_HEAD, _TAIL = STORED_FIELDS[:_CLOCK_AT], STORED_FIELDS[_CLOCK_AT:]
_DUE, _STATUS, _TZ = (STORED_FIELDS.index("due_at"), STORED_FIELDS.index("status"),
                      len(STORED_FIELDS))


def _shaped(rows: list[Any], limit: int, now: datetime) -> tuple[list[dict[str, Any]],
                                                                 str | None]:
    """Rows (SQLAlchemy's or asyncpg's, by position) as TaskRead dicts, in READ_ORDER."""
    result = []
    for row in rows[:limit]:
        values = tuple(row)
        data = dict(zip(_HEAD, values))
        data.update(clock_fields(values[_TZ], values[_DUE], values[_STATUS], now))
        data.update(zip(_TAIL, values[_CLOCK_AT:_TZ]))
        result.append(data)
    next_cursor = (encode_due_cursor(result[-1]["due_at"], result[-1]["id"])
                   if len(rows) > limit else None)
    return result, next_cursor


async def agenda(session: AsyncSession, principal: Principal, *, bucket: str,
                 assignee_id: str | None = None, team_id: uuid.UUID | None = None,
                 tz: str | None = None, limit: int = 50, cursor: str | None = None,
                 loc_prefix: str = "query") -> tuple[list[dict[str, Any]], str | None]:
    """Open, live tasks of a bucket ordered by due time: rows shaped as TaskRead."""
    if bucket not in BUCKETS:
        raise ValidationError.at([loc_prefix, "bucket"], "one of " + ", ".join(BUCKETS))
    if tz is not None:
        zone_info = zone(tz)
        if zone_info is None:
            raise ValidationError.at([loc_prefix, "tz"], "unknown IANA time zone")
    else:
        zone_info = zone(await workspace_timezone(session, principal)) or zone("UTC")
    assert zone_info is not None
    now = clock.now()
    start, end = day_bounds(now, zone_info)
    after: tuple[datetime, uuid.UUID] | None = None
    if cursor:
        due, last_id = decode_due_cursor(cursor, [loc_prefix, "cursor"])
        if due is None:
            raise ValidationError.at([loc_prefix, "cursor"], "invalid cursor")
        after = (due, last_id)
    low, high = {"today": (start, end), "overdue": (_EARLIEST, now),
                 "upcoming": (end, _LATEST)}[bucket]
    if assignee_id in (None, "me") and team_id is None and principal.user_id is not None:
        args = [principal.workspace_id, principal.user_id, low, high, limit + 1]
        if after is not None:
            args.extend(after)
        connection = await driver_connection(session)
        rows = await connection.fetch(_MINE if after is None else _MINE_AFTER, *args)
        return _shaped(rows, limit, now)
    params: dict[str, Any] = {"ws": principal.workspace_id, "start": low, "end": high,
                              "lim": limit + 1}
    if after is not None:
        params.update(after_due=after[0], after_id=after[1])
    query = (_base_select()
             .where(Task.due_at >= bindparam("start"), Task.due_at < bindparam("end"),
                    *(await _scope(session, principal, assignee_id, team_id)),
                    visibility_condition(Task, principal)))
    if after is not None:
        query = query.where(tuple_(Task.due_at, Task.id)
                            > tuple_(bindparam("after_due"), bindparam("after_id")))
    query = query.order_by(Task.due_at, Task.id).limit(bindparam("lim"))
    rows = (await session.execute(query, params)).all()
    return _shaped(list(rows), limit, now)
