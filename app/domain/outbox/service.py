"""Writing events in the caller's transaction, and reading the log in commit order."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import and_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DriverInsert, driver_connection
from app.domain.outbox.models import Event
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal

# Only events whose transaction is older than every transaction still running are served,
# so a reader never skips an event that commits later with a smaller cursor.
_VISIBLE_HORIZON = text("events.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if not before:  # a creation (the common case in a batch): what it sets
        return sorted(k for k, v in (after or {}).items() if v is not None)
    after = after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def event_values(principal: Principal, *, type: str, entity_type: str, entity_id: uuid.UUID,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The event's columns as `record_event` writes them, for a writer below the ORM."""
    changed = changed_fields(before, after)
    if before is not None and after is not None:
        # Updates keep only what changed: the history shows before/after of those fields.
        before = {k: before.get(k) for k in changed}
        after = {k: after.get(k) for k in changed}
    return {"workspace_id": principal.workspace_id, "id": new_id(), "type": type,
            "entity_type": entity_type, "entity_id": entity_id, "actor": principal.actor,
            "before": before, "after": after, "changed": changed, "occurred_at": clock.now(),
            "depth": principal.depth, "cause_run_id": principal.cause_run_id}


# An event as `event_values` makes it, for a writer below the ORM (txid and seq are the
# database's).
EVENT_INSERT = DriverInsert(Event, ["workspace_id", "id", "type", "entity_type", "entity_id",
                                    "actor", "before", "after", "changed", "occurred_at",
                                    "depth", "cause_run_id"])
_INSERT_EVENTS = EVENT_INSERT.many_sql()


async def record_event(
    session: AsyncSession,
    principal: Principal,
    *,
    type: str,
    entity_type: str,
    entity_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Event:
    event = Event(**event_values(principal, type=type, entity_type=entity_type,
                                 entity_id=entity_id, before=before, after=after))
    session.add(event)
    return event


async def record_created_events(session: AsyncSession, principal: Principal, *, type: str,
                                entity_type: str, created: list[tuple[uuid.UUID, dict[str, Any]]]
                                ) -> None:
    """`record_event(type=…, after=…)` for many new records: one multi-row INSERT, in the
    given order, instead of an ORM object each (a batch of 1,000 cards)."""
    if not created:
        return
    await session.flush()  # what the session holds is written first, in its order
    conn = await driver_connection(session)
    # On the driver connection: SQLAlchemy's per-row parameter processing was a tenth of a
    # 1,000-card batch's CPU.
    await conn.execute(_INSERT_EVENTS, *EVENT_INSERT.many_params([event_values(
        principal, type=type, entity_type=entity_type, entity_id=entity_id, after=after)
        for entity_id, after in created]))


def encode_event_cursor(txid: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{txid}:{seq}".encode()).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        txid, seq = base64.urlsafe_b64decode(padded).decode().split(":")
        return int(txid), int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError.at(["query", "after"], "invalid cursor") from exc


async def list_events(
    session: AsyncSession,
    *,
    after: str | None,
    types: list[str] | None,
    limit: int,
    entity_ids: list[uuid.UUID] | None = None,
    condition: Any = None,
) -> tuple[list[Event], str | None]:
    query = select(Event).where(_VISIBLE_HORIZON)
    if condition is not None:
        query = query.where(condition)
    if after:
        txid, seq = decode_event_cursor(after)
        query = query.where(tuple_(Event.txid, Event.seq) > tuple_(txid, seq))
    if types:
        query = query.where(Event.type.in_(types))
    if entity_ids:
        query = query.where(Event.entity_id.in_(entity_ids))
    query = query.order_by(Event.txid, Event.seq).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page = rows[:limit]
    next_cursor = encode_event_cursor(page[-1].txid, page[-1].seq) if page else after
    return page, next_cursor


async def latest_event_cursor(session: AsyncSession) -> str | None:
    """The cursor of the newest event a reader may be served now (below the horizon)."""
    row = (await session.execute(select(Event.txid, Event.seq).where(_VISIBLE_HORIZON)
                                 .order_by(Event.txid.desc(), Event.seq.desc()).limit(1))).first()
    return encode_event_cursor(row.txid, row.seq) if row else None


async def entity_history(
    session: AsyncSession, entity_ids: list[uuid.UUID], *, after: str | None, limit: int
) -> tuple[list[Event], str | None]:
    """All events about the given records, oldest first (history survives soft delete)."""
    query = select(Event).where(Event.entity_id.in_(entity_ids))
    if after:
        txid, seq = decode_event_cursor(after)
        query = query.where(and_(tuple_(Event.txid, Event.seq) > tuple_(txid, seq)))
    rows = list((await session.execute(
        query.order_by(Event.txid, Event.seq).limit(limit + 1))).scalars())
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_event_cursor(page[-1].txid, page[-1].seq) if more and page else None
