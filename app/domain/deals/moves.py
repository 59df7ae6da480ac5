"""The plain move below the ORM (docs/decisions/0062-a-plain-move-below-the-orm.md).

`POST /deals/{id}/move` (and GraphQL `moveDeal`) is what a board does all day: a deal dragged
from one open stage to another, or to won. Such a move is read in one statement and written
in one, on the driver connection of the request's transaction:

- the read locks the deal (visibility as `records.visibility_condition`) and brings its
  contact ids, the target stage (live or not), the name of the stage it leaves, the
  workspace's scoring configuration, its primary contact and its company;
- the deal is changed as a transient `Deal` (`records.transient`) by the same code as the ORM path
  (`transitions`, `scoring.rescore_with`, `records.touch`), so the values, the snapshots and
  the events are the same;
- the write closes the open stage interval, opens the new one, updates the deal and inserts
  `deal.stage_changed` (and `deal.won` / `deal.reopened`) as one data-modifying CTE.

Anything else returns None and takes the ORM path, which reports it: a deal not found, a stage
that is gone, archived, of another pipeline or the current one, a lost stage (its reason is
checked against the workspace's list) or a lost reason sent with another stage."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from app.db import driver_connection, jsonb_param
from app.domain.deals import queries, scoring, scoring_engine, transitions
from app.domain.deals.models import Deal, StageInterval
from app.domain.deals.schemas import DealMove, DealRead
from app.domain.outbox.service import EVENT_INSERT, event_values
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.principal import Principal

PLAIN_KINDS = ("open", "won")


class StageRef(NamedTuple):
    """The target stage as `transitions` and the scoring engine read it."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    name: str
    kind: str
    probability: int


class _Record(NamedTuple):
    """The primary contact's or the company's fields the scoring rules may read."""

    status: str | None
    kind: str | None
    source: str | None
    tags: list[str]
    custom_fields: dict[str, Any]


_DEAL_COLUMNS = [c.name for c in Deal.__table__.columns]
_DEAL_JSON = {c.name for c in Deal.__table__.columns if isinstance(c.type, JSONB)}

_READ = f"""
SELECT {", ".join(f"d.{c}" for c in _DEAL_COLUMNS)},
  ARRAY(SELECT dc.contact_id FROM deal_contacts dc
        WHERE dc.workspace_id = d.workspace_id AND dc.deal_id = d.id
        ORDER BY dc.position, dc.contact_id) AS link_ids,
  t.pipeline_id AS t_pipeline_id, t.name AS t_name, t.kind AS t_kind,
  t.probability AS t_probability,
  (t.archived_at IS NULL AND t.deleted_at IS NULL AND tp.deleted_at IS NULL) AS t_live,
  f.name AS from_name,
  w.settings -> 'deal_scoring' AS scoring,
  pc.id IS NOT NULL AS c_found, pc.status AS c_status, pc.kind AS c_kind,
  pc.source AS c_source, pc.tags AS c_tags, pc.custom_fields AS c_custom_fields,
  (co.id IS NOT NULL AND co.deleted_at IS NULL) AS co_found, co.kind AS co_kind,
  co.tags AS co_tags, co.custom_fields AS co_custom_fields
FROM deals d
JOIN workspaces w ON w.id = d.workspace_id
LEFT JOIN stages t ON t.workspace_id = d.workspace_id AND t.id = $2
LEFT JOIN pipelines tp ON tp.workspace_id = t.workspace_id AND tp.id = t.pipeline_id
LEFT JOIN stages f ON f.workspace_id = d.workspace_id AND f.id = d.stage_id
LEFT JOIN LATERAL (
  SELECT c.id, c.status, c.kind, c.source, c.tags, c.custom_fields
  FROM deal_contacts dc JOIN contacts c ON c.workspace_id = dc.workspace_id
                                       AND c.id = dc.contact_id
  WHERE dc.workspace_id = d.workspace_id AND dc.deal_id = d.id AND c.deleted_at IS NULL
  ORDER BY dc.position, dc.contact_id LIMIT 1) pc ON true
LEFT JOIN companies co ON co.workspace_id = d.workspace_id AND co.id = d.company_id
WHERE d.workspace_id = $3 AND d.id = $1 AND d.deleted_at IS NULL
  AND ($4::uuid[] IS NULL OR d.owner_id = ANY($4::uuid[]) OR ($5 AND d.owner_id IS NULL))
FOR UPDATE OF d
"""

# What a move changes on the deal (transitions.enter, the score, records.touch).
_MOVED = ("pipeline_id", "stage_id", "status", "closed_at", "stage_entered_at",
          "rotting_since", "lost_reason", *scoring.SCORE_FIELDS, "version", "updated_at",
          "updated_by")
_INTERVAL_COLUMNS = [c.name for c in StageInterval.__table__.columns]


def _placeholders(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


def _write_sql(events: int) -> str:
    """$1 deal id, $2 workspace, $3 now, $4 actor; then the new interval, the moved columns
    and `events` events."""
    n = 5
    interval = _placeholders(n, len(_INTERVAL_COLUMNS))
    n += len(_INTERVAL_COLUMNS)
    moved = ", ".join(f"{c} = ${n + i}" for i, c in enumerate(_MOVED))
    n += len(_MOVED)
    return f"""
WITH closed AS (
  UPDATE stage_intervals SET left_at = $3, left_by = $4
  WHERE workspace_id = $2 AND deal_id = $1 AND left_at IS NULL),
opened AS (
  INSERT INTO stage_intervals ({", ".join(_INTERVAL_COLUMNS)}) VALUES ({interval})),
moved AS (
  UPDATE deals SET {moved} WHERE workspace_id = $2 AND id = $1)
{EVENT_INSERT.sql(n, events)}
"""


_WRITE = {1: _write_sql(1), 2: _write_sql(2)}


def _record(row: dict[str, Any], prefix: str, found: str) -> _Record | None:
    """The contact (`c_…`) or the company (`co_…`, which has no status or source)."""
    if not row[found]:
        return None
    return _Record(status=row.get(f"{prefix}_status"), kind=row[f"{prefix}_kind"],
                   source=row.get(f"{prefix}_source"), tags=row[f"{prefix}_tags"] or [],
                   custom_fields=row[f"{prefix}_custom_fields"] or {})


async def plain_move(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                     data: DealMove, *, expected_version: int | None) -> DealRead | None:
    """The move written in the session's transaction, or None when it is not a plain one (the
    caller takes the ORM path). A deal this session holds (a rule's earlier action loaded
    it) is moved through the ORM too, so that the loaded object stays true; what the session
    has pending is flushed first, so rows and events keep the order they were made in."""
    if identity_key(Deal, (principal.workspace_id, deal_id)) in session.identity_map:
        return None
    await session.flush()
    return await plain_move_on(await driver_connection(session), principal, deal_id, data,
                               expected_version=expected_version)


async def plain_move_on(conn: asyncpg.Connection, principal: Principal, deal_id: uuid.UUID,
                        data: DealMove, *, expected_version: int | None) -> DealRead | None:
    """`plain_move` on a driver connection inside the caller's transaction, its workspace
    set (REST's move runs on `deps.driver_context`, with no session). Nothing is written when
    it returns None."""
    principal.require_write()
    if data.lost_reason is not None:
        return None
    owners = None if principal.visible_owner_ids is None else list(principal.visible_owner_ids)
    found = await conn.fetchrow(_READ, deal_id, data.stage_id, principal.workspace_id, owners,
                                principal.sees_unowned)
    if found is None or not found["t_live"] or found["t_kind"] not in PLAIN_KINDS \
            or found["stage_id"] == data.stage_id \
            or found["t_pipeline_id"] != (data.pipeline_id or found["pipeline_id"]):
        return None
    row = dict(found)
    deal = records.transient(Deal, {c: row[c] for c in _DEAL_COLUMNS})
    records.check_version(deal, expected_version)
    contact_ids = list(row["link_ids"])
    target = StageRef(id=data.stage_id, pipeline_id=row["t_pipeline_id"], name=row["t_name"],
                      kind=row["t_kind"], probability=row["t_probability"])
    before = transitions.snapshot(deal, contact_ids)
    old_status, now = deal.status, clock.now()
    interval = transitions.interval_values(principal, deal, target, now, deal.stage_id)
    transitions.enter(deal, target, None, now)
    config = scoring_engine.config_from_dict(row["scoring"])
    scoring.rescore_with(
        config, deal, target,
        _record(row, "c", "c_found") if config.uses("contact") else None,
        _record(row, "co", "co_found") if deal.company_id and config.uses("company") else None)
    records.touch(deal, principal)
    after = transitions.snapshot(deal, contact_ids)
    moved_before, moved_after = transitions.stage_changed(before, after, row["from_name"],
                                                          target.name)
    events = [event_values(principal, type="deal.stage_changed", entity_type=transitions.ENTITY,
                           entity_id=deal.id, before=moved_before, after=moved_after)]
    status = transitions.status_event(deal, old_status)
    if status is not None:
        events.append(event_values(principal, type=status[0], entity_type=transitions.ENTITY,
                                   entity_id=deal.id, before=None, after=status[1]))
    await conn.execute(
        _WRITE[len(events)], deal.id, principal.workspace_id, now, principal.actor,
        *(interval[c] for c in _INTERVAL_COLUMNS),
        *(jsonb_param(getattr(deal, c)) if c in _DEAL_JSON else getattr(deal, c)
          for c in _MOVED),
        *(p for e in events for p in EVENT_INSERT.params(e)))
    return queries.to_read(deal, contact_ids)
