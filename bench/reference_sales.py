"""The sales part of the reference: "my work" agenda, the pipeline board and a deal move on
bare asyncpg, with the same principal, role, row-level security and SQL shapes as Relata.

Served by `bench.reference:app` (which imports this module after its own helpers):

* `GET /api/v1/tasks/agenda?bucket=today|overdue|upcoming[&assignee_id=me|<id>][&tz=][&limit=]`
  — app/domain/tasks/agenda.py: open, live tasks of the bucket, the contact's time zone
  left-joined, ordered by (due_at, id), limit + 1; the clock fields computed per row; plain
  rows to JSON (orjson, `Z` times), as the app's endpoint does.
* `GET /api/v1/pipelines/{id}/board` and `POST /api/v1/deals/{id}/move`: see their functions.

What it leaves out is what the contacts reference leaves out (rate limiting, request log,
metrics, ORM, FastAPI). The workspace's time zone comes with the cached principal, where
Relata loads the workspace row once per request (`current_workspace`).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uuid_utils.compat import uuid7

if TYPE_CHECKING:
    from bench.reference import Principal


def problem(status: int, title: str, detail: str) -> Response:
    from bench.reference import problem as _problem

    return _problem(status, title, detail)


async def authenticate(request: Request, conn: Any) -> Principal | Response:
    # bench.reference imports this module for its routes, so it is imported back lazily.
    from bench.reference import authenticate as _authenticate

    return await _authenticate(request, conn)


SQL_SET_WS = "select set_config('app.workspace_id', $1, true)"  # as bench.reference

TASK_FIELDS = (
    "id", "title", "type", "description", "due_at", "reminder_at", "assignee_id", "contact_id",
    "company_id", "deal_id", "status", "outcome", "note", "data", "attempt", "completed_at",
    "completed_by", "reminded_at", "overdue_notified_at", "version", "created_at", "updated_at",
    "deleted_at", "created_by", "updated_by")
TASK_COLUMNS = ", ".join(f"t.{c}" for c in TASK_FIELDS)
BUCKETS = ("today", "overdue", "upcoming")


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # asyncpg's UUID subclass: orjson takes only uuid.UUID
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_UTC_Z, default=_default),
                    status_code=status, media_type="application/json", headers=headers)


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _visibility(column: str, principal: Principal, args: list[Any]) -> str | None:
    """records.visibility_condition: the owner column within what the principal may see."""
    if principal.visible is None:
        return None
    parts = []
    if principal.visible:
        args.append(list(principal.visible))
        parts.append(f"{column} = any(${len(args)}::uuid[])")
    if principal.sees_unowned:
        parts.append(f"{column} is null")
    return "(" + " or ".join(parts) + ")" if parts else "false"


def _cursor(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _uncursor(raw: str) -> list[Any]:
    return orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# My work

async def agenda(request: Request) -> Response:
    params = request.query_params
    bucket = params.get("bucket", "today")
    if bucket not in BUCKETS:
        return problem(422, "Validation failed", "bucket: one of today, overdue, upcoming")
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 200:
        return problem(422, "Validation failed", "limit must be between 1 and 200")
    assignee = params.get("assignee_id")
    tz_name = params.get("tz")
    cursor = params.get("cursor")
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        await conn.execute(SQL_SET_WS, principal.workspace_id)
        tz = zone(tz_name or principal.timezone) or zone("UTC")
        assert tz is not None
        now = datetime.now(UTC)
        day = now.astimezone(tz).date()
        start = datetime.combine(day, time.min, tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
        args: list[Any] = [uuid.UUID(principal.workspace_id)]
        where = ["t.workspace_id = $1", "t.status = 'open'", "t.deleted_at is null"]
        if bucket == "today":
            args += [start, end]
            where += ["t.due_at >= $2", "t.due_at < $3"]
        elif bucket == "overdue":
            args.append(now)
            where.append("t.due_at < $2")
        else:
            args.append(end)
            where.append("t.due_at >= $2")
        if assignee in (None, "me"):
            if principal.user_id is None:
                return problem(422, "Validation failed", "an API key has no tasks of its own: "
                                                         "give assignee_id")
            args.append(principal.user_id)
        else:
            try:
                args.append(uuid.UUID(assignee))
            except ValueError:
                return problem(422, "Validation failed", "assignee_id: a user id, or `me`")
        where.append(f"t.assignee_id = ${len(args)}")
        visible = _visibility("t.assignee_id", principal, args)
        if visible:
            where.append(visible)
        if cursor:
            try:
                due, last_id = _uncursor(cursor)
                args += [datetime.fromisoformat(due), uuid.UUID(last_id)]
            except (ValueError, TypeError):
                return problem(422, "Validation failed", "invalid cursor")
            where.append(f"(t.due_at, t.id) > (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        rows = await conn.fetch(
            f"select {TASK_COLUMNS}, c.timezone as contact_timezone from tasks t "
            "left join contacts c on c.workspace_id = t.workspace_id and c.id = t.contact_id "
            f"where {' and '.join(where)} order by t.due_at, t.id limit ${len(args)}", *args)
    data = []
    for row in rows[:limit]:
        item = dict(row)
        item["data"] = orjson.loads(item["data"])
        contact_tz = item.pop("contact_timezone")
        ctz = zone(contact_tz)
        due_at = item["due_at"]
        item["overdue"] = item["status"] == "open" and due_at is not None and due_at < now
        item["contact_timezone"] = contact_tz if ctz else None
        item["contact_local_time"] = (now.astimezone(ctz).isoformat(timespec="seconds")
                                      if ctz else None)
        item["due_at_contact_local"] = (due_at.astimezone(ctz).isoformat(timespec="seconds")
                                        if ctz and due_at else None)
        data.append(item)
    next_cursor = (_cursor([data[-1]["due_at"].isoformat(), str(data[-1]["id"])])
                   if len(rows) > limit else None)
    return json_response({"data": data, "next_cursor": next_cursor})


# --------------------------------------------------------------------------------------------
# Deals: the read model (DealRead) from a row

DEAL_FIELDS = (
    "id", "title", "pipeline_id", "stage_id", "status", "amount", "currency", "line_items",
    "company_id", "owner_id", "expected_close_date", "lost_reason", "source", "tags",
    "custom_fields", "external_id", "stage_entered_at", "closed_at", "last_activity_at",
    "rotting_since", "score_class", "score_points", "probability", "expected_amount",
    "max_expected_amount", "score_explanation", "score_adjustment", "score_adjusted_by",
    "score_adjusted_at", "version", "created_at", "updated_at", "deleted_at", "created_by",
    "updated_by")
DEAL_COLUMNS = ", ".join(DEAL_FIELDS)
D_COLUMNS = ", ".join(f"d.{c}" for c in DEAL_FIELDS)
JSON_FIELDS = ("line_items", "custom_fields", "score_explanation")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def deal_row(row: Any) -> dict[str, Any]:
    deal = dict(row)
    for name in JSON_FIELDS:
        if isinstance(deal[name], str):
            deal[name] = orjson.loads(deal[name])
    return deal


def deal_json(d: dict[str, Any], contact_ids: list[uuid.UUID]) -> dict[str, Any]:
    """queries.to_read: DealRead as FastAPI serializes it (amounts as decimal strings)."""
    maximum, expected = d["max_expected_amount"], d["expected_amount"]
    drop = None if maximum is None else maximum - (expected or Decimal(0))
    return {
        "id": d["id"], "title": d["title"], "pipeline_id": d["pipeline_id"],
        "stage_id": d["stage_id"], "status": d["status"], "amount": _dec(d["amount"]),
        "currency": d["currency"], "line_items": d["line_items"], "contact_ids": contact_ids,
        "company_id": d["company_id"], "owner_id": d["owner_id"],
        "expected_close_date": d["expected_close_date"], "lost_reason": d["lost_reason"],
        "source": d["source"], "tags": d["tags"], "custom_fields": d["custom_fields"],
        "external_id": d["external_id"],
        "score": {"class": d["score_class"], "points": d["score_points"],
                  "probability": d["probability"], "expected_amount": _dec(expected),
                  "max_expected_amount": _dec(maximum), "drop_from_max": _dec(drop),
                  "currency": d["currency"], "adjustment": d["score_adjustment"],
                  "adjusted_by": d["score_adjusted_by"], "adjusted_at": d["score_adjusted_at"],
                  "explanation": d["score_explanation"]},
        "rotting": d["rotting_since"] is not None, "rotting_since": d["rotting_since"],
        "stage_entered_at": d["stage_entered_at"], "closed_at": d["closed_at"],
        "last_activity_at": d["last_activity_at"], "version": d["version"],
        "created_at": d["created_at"], "updated_at": d["updated_at"],
        "deleted_at": d["deleted_at"], "created_by": d["created_by"],
        "updated_by": d["updated_by"]}


async def contact_ids_of(conn: Any, deal_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    result: dict[uuid.UUID, list[Any]] = {i: [] for i in deal_ids}
    for r in await conn.fetch(
            "select deal_id, contact_id from deal_contacts where deal_id = any($1::uuid[]) "
            "order by deal_id, position", deal_ids):
        result[r[0]].append(r[1])
    return result


def stage_json(s: Any) -> dict[str, Any]:
    return {"id": s["id"], "pipeline_id": s["pipeline_id"], "name": s["name"],
            "position": s["position"], "kind": s["kind"], "probability": s["probability"],
            "rotting_days": s["rotting_days"], "archived": s["archived_at"] is not None,
            "archived_at": s["archived_at"], "version": s["version"],
            "created_at": s["created_at"], "updated_at": s["updated_at"]}


# --------------------------------------------------------------------------------------------
# The pipeline board (app/domain/deals/board.py)

STAGE_COLUMNS = ("id, pipeline_id, name, position, kind, probability, rotting_days, "
                 "archived_at, version, created_at, updated_at")


def _quantize(value: Decimal, currency: str) -> Decimal:
    from app.domain.shared.money import quantize

    return quantize(value, currency)


async def board(request: Request) -> Response:
    try:
        pipeline_id = uuid.UUID(request.path_params["pipeline_id"])
        limit = int(request.query_params.get("limit", "20"))
        owner = request.query_params.get("owner_id")
        owner_id = uuid.UUID(owner) if owner else None
    except ValueError:
        return problem(422, "Validation failed", "bad pipeline id, limit or owner_id")
    if not 1 <= limit <= 100:
        return problem(422, "Validation failed", "limit must be between 1 and 100")
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        await conn.execute(SQL_SET_WS, principal.workspace_id)
        pipeline = await conn.fetchrow(
            "select id, name, position, is_default, version, created_at, updated_at, "
            "deleted_at, created_by, updated_by from pipelines where id = $1 "
            "and deleted_at is null", pipeline_id)
        if pipeline is None:
            return problem(404, "Not found", f"pipeline {pipeline_id} not found")
        stages = sorted(await conn.fetch(
            f"select {STAGE_COLUMNS} from stages where pipeline_id = any($1::uuid[]) "
            "and deleted_at is null", [pipeline_id]),
            key=lambda s: (s["archived_at"] is not None, s["position"], s["id"]))
        currency = principal.currency
        args: list[Any] = []
        conditions = []
        visible = _visibility("owner_id", principal, args)
        if visible:
            conditions.append(visible)
        conditions.append("deleted_at is null")
        if owner_id is not None:
            args.append(owner_id)
            conditions.append(f"owner_id = ${len(args)}")
        where = " and ".join(conditions)
        totals: dict[uuid.UUID, dict[str, tuple[int, Decimal, Decimal]]] = {}
        for r in await conn.fetch(
                "select stage_id, currency, count(*), coalesce(sum(amount), 0), "
                "coalesce(sum(amount * probability / 100), 0) from deals "
                f"where pipeline_id = ${len(args) + 1} and {where} group by stage_id, currency",
                *args, pipeline_id):
            totals.setdefault(r[0], {})[r[1]] = (r[2], r[3], r[4])
        shown = [s for s in stages if s["archived_at"] is None or totals.get(s["id"])]
        pages: dict[uuid.UUID, list[dict[str, Any]]] = {}
        if shown:
            n = len(args)
            rows = await conn.fetch(
                f"select {D_COLUMNS} from (select id as stage_id from stages "
                f"where id = any(${n + 1}::uuid[])) s join lateral (select {DEAL_COLUMNS} "
                f"from deals where deals.stage_id = s.stage_id and {where} "
                f"order by created_at desc, id desc limit ${n + 2}) d on true",
                *args, [s["id"] for s in shown], limit + 1)
            for r in rows:
                pages.setdefault(r["stage_id"], []).append(deal_row(r))
            for deals in pages.values():
                deals.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
        all_ids = [d["id"] for s in shown for d in pages.get(s["id"], [])[:limit]]
        contacts = await contact_ids_of(conn, all_ids) if all_ids else {}
    columns = []
    for stage in shown:
        by_currency = totals.get(stage["id"], {})
        count, total, weighted = by_currency.get(currency, (0, Decimal(0), Decimal(0)))
        others = [{"currency": code, "count": c, "total_amount": str(_quantize(t, code)),
                   "weighted_amount": str(_quantize(w, code))}
                  for code, (c, t, w) in sorted(by_currency.items()) if code != currency]
        deals = pages.get(stage["id"], [])
        column = deals[:limit]
        columns.append({
            "stage": stage_json(stage), "count": count + sum(o["count"] for o in others),
            "total_amount": str(_quantize(total, currency)),
            "weighted_amount": str(_quantize(weighted, currency)), "currency": currency,
            "other_currencies": others,
            "deals": [deal_json(d, contacts[d["id"]]) for d in column],
            "next_cursor": base64.urlsafe_b64encode(orjson.dumps(
                [column[-1]["created_at"], str(column[-1]["id"])])).decode().rstrip("=")
            if len(deals) > limit else None})
    p = dict(pipeline)
    return json_response({
        "pipeline": {"id": p["id"], "name": p["name"], "position": p["position"],
                     "is_default": p["is_default"], "stages": [stage_json(s) for s in stages],
                     "version": p["version"], "created_at": p["created_at"],
                     "updated_at": p["updated_at"], "deleted_at": p["deleted_at"],
                     "created_by": p["created_by"], "updated_by": p["updated_by"]},
        "currency": currency, "stages": columns})


# --------------------------------------------------------------------------------------------
# Moving a deal (app/domain/deals/service.py move_deal): lock the deal, check the stage, close
# the open interval, open a new one, re-score with the app's pure scoring engine (its rules may
# read the primary contact), update the deal, write `deal.stage_changed` (+ won/lost/reopened)
# with the same before/after snapshots. The same rows as the app, in fewer statements.

SQL_STAGES = ("select s.id, s.pipeline_id, s.name, s.kind, s.probability, s.archived_at, "
              "p.deleted_at as pipeline_deleted_at from stages s join pipelines p "
              "on p.workspace_id = s.workspace_id and p.id = s.pipeline_id "
              "where s.id = any($1::uuid[]) and s.deleted_at is null")
SQL_CONTACTS = ("select dc.contact_id, c.status, c.kind, c.source, c.tags, c.custom_fields, "
                "c.deleted_at from deal_contacts dc left join contacts c "
                "on c.workspace_id = dc.workspace_id and c.id = dc.contact_id "
                "where dc.deal_id = $1 order by dc.position, dc.contact_id")
SQL_CLOSE_INTERVAL = ("update stage_intervals set left_at = $2, left_by = $3 "
                      "where deal_id = $1 and left_at is null")
SQL_OPEN_INTERVAL = ("insert into stage_intervals (workspace_id, id, deal_id, pipeline_id, "
                     "stage_id, from_stage_id, entered_at, entered_by) "
                     "values ($1, $2, $3, $4, $5, $6, $7, $8)")
SQL_MOVE = f"""update deals set pipeline_id = $2, stage_id = $3, status = $4, closed_at = $5,
  stage_entered_at = $6, rotting_since = null, lost_reason = $7, score_class = $8,
  score_points = $9, probability = $10, expected_amount = $11, max_expected_amount = $12,
  score_explanation = $13, version = version + 1, updated_at = $6, updated_by = $14
where id = $1 returning {DEAL_COLUMNS}"""
SQL_EVENT = ("insert into events (workspace_id, id, type, entity_type, entity_id, actor, before, "
             "after, changed, occurred_at, depth) values ($1, $2, $3, 'deal', $4, $5, $6, $7, $8, "
             "$9, 0)")
SNAPSHOT_SKIP = {"search_text", "workspace_id"}


def _snap_value(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def snapshot(d: dict[str, Any], contact_ids: list[Any]) -> dict[str, Any]:
    """records.snapshot (model_dump in JSON mode) plus the contact ids, as events store it."""
    out = {k: _snap_value(v) for k, v in d.items() if k not in SNAPSHOT_SKIP}
    out["contact_ids"] = [str(c) for c in contact_ids]
    return out


def _dump(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


async def move_deal(request: Request) -> Response:
    from app.domain.deals import scoring_engine as engine

    try:
        deal_id = uuid.UUID(request.path_params["deal_id"])
        body = orjson.loads(await request.body())
        if not isinstance(body, dict) or set(body) - {"stage_id", "pipeline_id", "lost_reason"}:
            raise ValueError
        stage_id = uuid.UUID(body["stage_id"])
        pipeline_id = uuid.UUID(body["pipeline_id"]) if body.get("pipeline_id") else None
        lost_reason = body.get("lost_reason")
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return problem(422, "Validation failed", "body: {stage_id, pipeline_id?, lost_reason?}")
    if_match = request.headers.get("if-match")
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        if not principal.write:
            return problem(403, "Forbidden", "this API key is read-only")
        await conn.execute(SQL_SET_WS, principal.workspace_id)
        args: list[Any] = [deal_id]
        visible = _visibility("owner_id", principal, args)
        row = await conn.fetchrow(
            f"select {DEAL_COLUMNS} from deals where id = $1 and deleted_at is null"
            + (f" and {visible}" if visible else "") + " for update", *args)
        if row is None:
            return problem(404, "Not found", f"deal {deal_id} not found")
        deal = deal_row(row)
        if if_match and if_match.strip() != "*" and \
                if_match.strip().removeprefix("W/").strip('"') != str(deal["version"]):
            return problem(412, "Precondition failed", "If-Match does not match the ETag")
        stages = {s["id"]: s for s in await conn.fetch(SQL_STAGES, [stage_id, deal["stage_id"]])}
        target = stages.get(stage_id)
        if target is None or target["pipeline_deleted_at"] is not None:
            return problem(422, "Validation failed", f"no such stage: {stage_id}")
        if target["archived_at"] is not None:
            return problem(422, "Validation failed", "the stage is archived")
        if target["pipeline_id"] != (pipeline_id or deal["pipeline_id"]):
            return problem(422, "Validation failed", "the stage belongs to another pipeline")
        if stage_id == deal["stage_id"]:
            return problem(422, "Validation failed", "the deal is in that stage already "
                                                     "(not measured here)")
        settings = _json_obj(await conn.fetchval("select settings from workspaces"))
        if target["kind"] == "lost":
            if lost_reason not in settings.get("lost_reasons", []):
                return problem(422, "Validation failed", "a lost deal needs a lost reason")
        elif lost_reason is not None:
            return problem(422, "Validation failed", "only a lost deal has a lost reason")
        links = await conn.fetch(SQL_CONTACTS, deal_id)
        contact_ids = [r["contact_id"] for r in links]
        before = snapshot(deal, contact_ids)
        from_stage_id = deal["stage_id"]
        from_stage = stages.get(from_stage_id)
        now = datetime.now(UTC)
        old_status = deal["status"]
        # _enter: the status follows the stage's kind
        if target["kind"] != old_status or deal["closed_at"] is None and target["kind"] != "open":
            deal["closed_at"] = None if target["kind"] == "open" else now
        deal.update(pipeline_id=target["pipeline_id"], stage_id=target["id"],
                    status=target["kind"], stage_entered_at=now, rotting_since=None,
                    lost_reason=lost_reason if target["kind"] == "lost" else None)
        # scoring.compute with the workspace's configuration
        config = engine.config_from_dict(settings.get("deal_scoring"))
        contact = next((SimpleNamespace(status=r["status"], kind=r["kind"], source=r["source"],
                                        tags=r["tags"], custom_fields=_json_obj(r["custom_fields"]))
                        for r in links if r["status"] is not None and r["deleted_at"] is None),
                       None) if config.uses("contact") else None
        company = None
        if deal["company_id"] is not None and config.uses("company"):
            c = await conn.fetchrow("select kind, tags, custom_fields, deleted_at from companies "
                                    "where id = $1", deal["company_id"])
            company = SimpleNamespace(kind=c["kind"], tags=c["tags"],
                                      custom_fields=_json_obj(c["custom_fields"])) \
                if c and c["deleted_at"] is None else None
        facts = engine.facts_for(SimpleNamespace(**deal), contact, company, days_in_stage=0)
        result = engine.score(
            config, facts, stage=engine.Stage(id=target["id"], name=target["name"],
                                              probability=target["probability"],
                                              kind=target["kind"]),
            status=deal["status"], amount=deal["amount"], currency=deal["currency"],
            adjustment=engine.Adjustment(value=deal["score_adjustment"] or 0,
                                         by=deal["score_adjusted_by"],
                                         at=deal["score_adjusted_at"],
                                         note=_previous_note(deal)),
            previous_max=deal["max_expected_amount"])
        actor = principal.actor
        ws = uuid.UUID(principal.workspace_id)
        await conn.execute(SQL_CLOSE_INTERVAL, deal_id, now, actor)
        await conn.execute(SQL_OPEN_INTERVAL, ws, uuid7(), deal_id, target["pipeline_id"],
                           target["id"], from_stage_id, now, actor)
        moved = deal_row(await conn.fetchrow(
            SQL_MOVE, deal_id, deal["pipeline_id"], deal["stage_id"], deal["status"],
            deal["closed_at"], now, deal["lost_reason"], result.score_class, result.points,
            result.probability, result.expected_amount, result.max_expected_amount,
            _dump(result.explanation), actor))
        after = snapshot(moved, contact_ids)
        before["stage_name"] = from_stage["name"] if from_stage else None
        after["stage_name"] = target["name"]
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        events = [(ws, uuid7(), "deal.stage_changed", deal_id, actor,
                   _dump({k: before.get(k) for k in changed}),
                   _dump({k: after.get(k) for k in changed}), changed, now)]
        if moved["status"] != old_status:
            kind = {"won": "deal.won", "lost": "deal.lost"}.get(moved["status"], "deal.reopened")
            status_after = {
                "status": moved["status"], "previous_status": old_status,
                "pipeline_id": str(moved["pipeline_id"]), "stage_id": str(moved["stage_id"]),
                "amount": _dec(moved["amount"]), "currency": moved["currency"],
                "lost_reason": moved["lost_reason"],
                "closed_at": moved["closed_at"].isoformat() if moved["closed_at"] else None}
            events.append((ws, uuid7(), kind, deal_id, actor, None, _dump(status_after),
                           sorted(status_after), now))
        await conn.executemany(SQL_EVENT, events)
    return json_response(deal_json(moved, contact_ids), headers={"ETag": f'"{moved["version"]}"'})


def _json_obj(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else (value or {})


def _previous_note(deal: dict[str, Any]) -> str | None:
    at = deal["score_adjusted_at"].isoformat() if deal["score_adjusted_at"] else None
    for entry in deal["score_explanation"] or []:
        if entry.get("kind") == "adjustment" and entry.get("at") == at:
            return entry.get("note")  # type: ignore[no-any-return]
    return None


ROUTES = [
    Route("/api/v1/tasks/agenda", agenda),
    Route("/api/v1/pipelines/{pipeline_id}/board", board),
    Route("/api/v1/deals/{deal_id}/move", move_deal, methods=["POST"]),
]
