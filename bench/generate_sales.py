"""Load one big sales workspace (deals, stage history, tasks) into a dedicated database.

    python -m bench.generate_sales --db relata_bench_sales --deals 100000 --tasks 1000000 \\
        --users 50 --reset

1. (Re)creates the database and applies the migrations (`relata migrate`).
2. Creates one workspace with the application's own `create_workspace` service (owner, default
   API key, `workspace.created` event). If that service does not create the default pipeline
   (app/domain/pipelines/defaults.py), it is inserted here the way the migration's
   `seed_default_pipelines` does.
3. Inserts `--users` users directly (2 managers heading a team each, the rest agents split over
   the two teams), all with one known password (`--password`, hashed once with the app's
   `hash_password`), so `POST /api/v1/auth/token` works for any of them.
4. Generates in worker processes and streams with COPY: `--contacts` minimal contacts (names,
   a time zone, an owner; no phones or e-mails), `--deals` deals over the default pipeline
   (decimal amounts, owners spread over the users, status following the stage kind,
   probability / expected amount as the app's `rescore` computes them, a stage_intervals row
   for every stage the deal went through, one or two deal_contacts), and `--tasks` tasks spread
   uniformly over the users with `due_at` uniform over now ± `--due-days` days: about 1/120 of
   a user's tasks fall on any one day; overdue ones are open 40 % of the time, future ones 98 %
   (about 70 % open overall).
5. Secondary indexes and foreign keys of the loaded tables are dropped first and re-created
   from their catalog definitions afterwards, then VACUUM ANALYZE.

State (API key, users, pipeline and stage ids, the password) goes to bench/data/<db>.json.
Not loaded: per-record history events, activities, notifications, companies.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import math
import multiprocessing as mp
import os
import random
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson

from bench.common import DEFAULT_SERVER_URL, db_url, save_state
from bench.generate import CULTURES, REGION_TZ, REGIONS, prepare_database

DEFAULT_SALES_DB = os.environ.get("BENCH_SALES_DB", "relata_bench_sales")
TABLES = ("contacts", "deals", "deal_contacts", "stage_intervals", "tasks")
DAY = 86400.0

CONTACT_COLUMNS = ["workspace_id", "id", "version", "created_at", "updated_at", "created_by",
                   "updated_by", "first_name", "last_name", "middle_name", "full_name", "phones",
                   "emails", "timezone", "status", "kind", "owner_id", "tags", "custom_fields",
                   "search_text"]
DEAL_COLUMNS = ["workspace_id", "id", "version", "created_at", "updated_at", "created_by",
                "updated_by", "title", "pipeline_id", "stage_id", "status", "amount", "currency",
                "line_items", "owner_id", "expected_close_date", "lost_reason", "source", "tags",
                "custom_fields", "search_text", "stage_entered_at", "closed_at",
                "last_activity_at", "rotting_since", "score_class", "score_points",
                "probability", "expected_amount", "max_expected_amount", "score_explanation",
                "score_adjustment"]
INTERVAL_COLUMNS = ["workspace_id", "id", "deal_id", "pipeline_id", "stage_id", "from_stage_id",
                    "entered_at", "entered_by", "left_at", "left_by"]
DEAL_CONTACT_COLUMNS = ["workspace_id", "deal_id", "contact_id", "position"]
TASK_COLUMNS = ["workspace_id", "id", "version", "created_at", "updated_at", "created_by",
                "updated_by", "title", "type", "due_at", "reminder_at", "assignee_id",
                "contact_id", "deal_id", "status", "outcome", "data", "attempt", "completed_at",
                "completed_by", "reminded_at"]

PRODUCTS = ["PVC windows", "Aluminium windows", "Balcony glazing", "Roller blinds",
            "Mosquito nets", "Window sills", "Entrance door", "Winter garden", "Window repair",
            "Окна ПВХ", "Остекление балкона", "Жалюзи", "Входная дверь"]
SOURCES = ["website", "phone", "instagram", "whatsapp", "referral", "yandex", None]
TASK_TYPES = [("call", 45), ("meeting", 10), ("email", 15), ("todo", 15), ("measurement", 10),
              ("installation", 5)]
TASK_TITLES = {"call": "Call the customer", "meeting": "Meeting at the office",
               "email": "Send the offer", "todo": "Prepare documents",
               "measurement": "Measure the openings", "installation": "Installation"}
OUTCOMES = ["done", "done", "done", "no_answer", "rescheduled"]
CONTACT_STATUSES = ["new", "cold", "warm", "hot", "vip", "regular"]
LOST_REASONS = ["price", "competitor", "no_answer", "not_interested", "other"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# --------------------------------------------------------------------------------------------
# Worker processes (forked: they inherit _G).

_G: dict[str, Any] = {}


def _init_worker(ctx: dict[str, Any]) -> None:
    _G.update(ctx)


def _run_job(job: tuple[Any, int]) -> Any:
    fn, chunk = job
    return fn(chunk)


def _uuid_at(ts: float) -> str:
    from uuid_utils.compat import uuid7

    return str(uuid7(nanoseconds=int(ts * 1e9)))


def _chunk_bounds(total: int, chunks: int, chunk: int) -> tuple[int, int]:
    return total * chunk // chunks, total * (chunk + 1) // chunks


def gen_contacts(chunk: int) -> tuple[str, bytes, int]:
    from app.domain.shared.cardfields import search_blob
    from app.domain.shared.normalize import normalize_name

    g = _G
    rng = random.Random(g["seed"] * 7_919 + chunk)
    lo, hi = _chunk_bounds(g["n_contacts"], g["contact_chunks"], chunk)
    ws, region, users = g["ws"], g["region"], g["user_ids"]
    buf = io.StringIO()
    w = csv.writer(buf)
    for k in range(lo, hi):
        cid, created = g["contact_ids"][k], g["contact_created"][k]
        culture = region if rng.random() < 0.8 else rng.choice(REGIONS)
        first, middle, last = CULTURES[culture](rng)
        full = normalize_name(" ".join(p for p in (first, middle, last) if p)) or ""
        owner = users[k % len(users)]
        tz = REGION_TZ[region] if rng.random() < 0.8 else REGION_TZ[rng.choice(REGIONS)]
        status = g["contact_status"][k]
        w.writerow((ws, cid, 1, iso(created), iso(created), f"user:{owner}", f"user:{owner}",
                    first, last, middle, full, "[]", "[]", tz, status, "customer", owner, "{}",
                    "{}", search_blob(full)))
    return "contacts", buf.getvalue().encode(), hi - lo


def _money(value: Decimal) -> str:
    return format(value, "f")


def gen_deals(chunk: int) -> list[tuple[str, bytes, int]]:
    """Deals created in one time window; each walks the pipeline up to its current stage."""
    from app.domain.deals import scoring_engine as engine
    from app.domain.shared.cardfields import search_blob
    from app.domain.shared.money import quantize

    g = _G
    rng = random.Random(g["seed"] * 104_729 + chunk)
    config = engine.config_from_dict(g["scoring"])
    engine_stages = {s["id"]: engine.Stage(id=uuid.UUID(s["id"]), name=s["name"],
                                           probability=s["probability"], kind=s["kind"])
                     for s in g["stages"]}
    lo, hi = _chunk_bounds(g["n_deals"], g["deal_chunks"], chunk)
    ws, pipeline, stages, users = g["ws"], g["pipeline_id"], g["stages"], g["user_ids"]
    currency, now = g["currency"], g["now"]
    open_stages = [s for s in stages if s["kind"] == "open"]
    won = [s for s in stages if s["kind"] == "won"]
    lost = [s for s in stages if s["kind"] == "lost"]
    dbuf, ibuf, cbuf = io.StringIO(), io.StringIO(), io.StringIO()
    dw, iw, cw = csv.writer(dbuf), csv.writer(ibuf), csv.writer(cbuf)
    n_int = n_dc = 0
    for k in range(lo, hi):
        did, created = g["deal_ids"][k], g["deal_created"][k]
        age_days = (now - created) / DAY
        owner = users[rng.randrange(len(users))]
        actor = f"user:{owner}"
        p_open = 0.85 if age_days < 90 else 0.12
        if rng.random() < p_open:
            status = "open"
            target = rng.randrange(len(open_stages))
            path = open_stages[:target + 1]
        elif rng.random() < 0.4:
            status = "won"
            path = open_stages + won
        else:
            status = "lost"
            path = open_stages[:rng.randrange(len(open_stages)) + 1] + [rng.choice(lost)]
        if len(path) > 2 and rng.random() < 0.3:  # some deals skip a stage
            del path[rng.randrange(1, len(path) - 1)]
        # Entry times: increasing, between creation and now.
        span = max(60.0, now - created)
        cuts = sorted(rng.random() for _ in range(len(path) - 1))
        if status == "open":  # open deals spent a plausible time in the current stage
            cuts = [c * rng.random() ** 0.5 for c in cuts]
            cuts.sort()
        entered = [created] + [created + c * span * (0.9 if status != "open" else 1.0)
                               for c in cuts]
        amount = None
        if path[-1]["position"] >= 2 or rng.random() < 0.6:
            amount = Decimal(str(round(rng.lognormvariate(7.3, 0.9), 2)))
        stage = path[-1]
        stage_entered = entered[-1]
        source = rng.choice(SOURCES)
        contacts = g["contact_ids"]
        picks = sorted({rng.randrange(len(contacts)) for _ in range(2 if rng.random() < 0.2
                                                                     else 1)})
        # The score as the app's engine computes it (scoring.compute): the primary contact's
        # fields, days in stage; the maximum so far from the open stages passed through.
        facts = engine.facts_for(
            SimpleNamespace(amount=amount, currency=currency, source=source, tags=[],
                            stage_id=uuid.UUID(stage["id"]), pipeline_id=uuid.UUID(pipeline),
                            owner_id=uuid.UUID(owner), expected_close_date=None,
                            line_items=[], custom_fields={}),
            SimpleNamespace(status=g["contact_status"][picks[0]], kind="customer", source=None,
                            tags=[], custom_fields={}), None,
            days_in_stage=int((now - stage_entered) // DAY))
        previous_max = None
        if amount is not None:
            factor = config.class_factors["B"]
            for s in path[:-1]:
                e = quantize(amount * engine.adjusted_probability(s["probability"], factor) / 100,
                             currency)
                previous_max = engine.next_max(previous_max, e)
        result = engine.score(config, facts, stage=engine_stages[stage["id"]], status=status,
                              amount=amount, currency=currency,
                              adjustment=engine.Adjustment(), previous_max=previous_max)
        probability, expected = result.probability, result.expected_amount
        max_expected = result.max_expected_amount
        rotting_since = None
        if status == "open" and stage["rotting_days"]:
            due = stage_entered + stage["rotting_days"] * DAY
            rotting_since = iso(due) if due < now else None
        closed_at = iso(stage_entered) if status != "open" else None
        updated = stage_entered
        versions = len(path)
        title = f"{rng.choice(PRODUCTS)} #{k:06d}"
        close_date = (datetime.fromtimestamp(now + rng.uniform(3, 90) * DAY, UTC).date()
                      .isoformat() if status == "open" and rng.random() < 0.5 else None)
        last_activity = iso(min(now, stage_entered + rng.random() * 3 * DAY)) \
            if rng.random() < 0.7 else None
        dw.writerow((ws, did, versions, iso(created), iso(updated), actor, actor, title,
                     pipeline, stage["id"], status,
                     _money(amount) if amount is not None else None, currency, "[]", owner,
                     close_date, rng.choice(LOST_REASONS) if status == "lost" else None,
                     source, "{}", "{}", search_blob(title), iso(stage_entered),
                     closed_at, last_activity, rotting_since, result.score_class,
                     result.points, probability,
                     _money(expected) if expected is not None else None,
                     _money(max_expected) if max_expected is not None else None,
                     orjson.dumps(result.explanation).decode(), 0))
        prev = None
        for i, s in enumerate(path):
            left = entered[i + 1] if i + 1 < len(path) else None
            iw.writerow((ws, _uuid_at(entered[i]), did, pipeline, s["id"], prev,
                         iso(entered[i]), actor, iso(left) if left is not None else None,
                         actor if left is not None else None))
            prev = s["id"]
            n_int += 1
        for pos, c in enumerate(picks):
            cw.writerow((ws, did, contacts[c], pos))
            n_dc += 1
    return [("deals", dbuf.getvalue().encode(), hi - lo),
            ("stage_intervals", ibuf.getvalue().encode(), n_int),
            ("deal_contacts", cbuf.getvalue().encode(), n_dc)]


def gen_tasks(chunk: int) -> tuple[str, bytes, int]:
    g = _G
    rng = random.Random(g["seed"] * 15_485_863 + chunk)
    lo, hi = _chunk_bounds(g["n_tasks"], g["task_chunks"], chunk)
    ws, users, now, days = g["ws"], g["user_ids"], g["now"], g["due_days"]
    contacts, deals = g["contact_ids"], g["deal_ids"]
    types = [t for t, _ in TASK_TYPES]
    cum = list(itertools.accumulate(wt for _, wt in TASK_TYPES))
    rows: list[tuple[float, tuple[Any, ...]]] = []
    for _ in range(lo, hi):
        assignee = users[rng.randrange(len(users))]
        due = now + rng.uniform(-days, days) * DAY
        due = due - due % 300  # on a 5-minute grid, as people set them
        created = min(now - rng.random() * 600, due - rng.uniform(0.02, 14) * DAY)
        kind = rng.choices(types, cum_weights=cum)[0]
        if due < now:
            status = "open" if rng.random() < 0.4 else ("done" if rng.random() < 0.9
                                                         else "canceled")
        else:
            status = "open" if rng.random() < 0.98 else "canceled"
        reminder = due - 900 if rng.random() < 0.3 else None
        reminded = iso(reminder) if reminder is not None and reminder < now \
            and status == "open" else None
        completed = None
        outcome = None
        attempt = 0
        if status == "done":
            completed = min(now, due + rng.uniform(-0.2, 1.0) * DAY)
            outcome = rng.choice(OUTCOMES)
            attempt = 1 + (rng.random() < 0.2)
        elif kind == "call" and rng.random() < 0.2:
            attempt = rng.randint(1, 3)
        updated = completed if completed is not None else created
        actor = f"user:{assignee}"
        row = (ws, _uuid_at(created), 1 + (status != "open"), iso(created), iso(updated),
               actor, actor, TASK_TITLES[kind], kind, iso(due),
               iso(reminder) if reminder is not None else None, assignee,
               contacts[rng.randrange(len(contacts))] if rng.random() < 0.8 else None,
               deals[rng.randrange(len(deals))] if deals and rng.random() < 0.4 else None,
               status, outcome, "{}", attempt,
               iso(completed) if completed is not None else None,
               actor if completed is not None else None, reminded)
        rows.append((created, row))
    rows.sort(key=lambda r: r[0])  # the heap in creation order, as a live table
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerows(r for _, r in rows)
    return "tasks", buf.getvalue().encode(), len(rows)


# --------------------------------------------------------------------------------------------
# Main process.

async def create_sales_workspace(server: str, db: str, region: str) -> dict[str, Any]:
    """Through the application's service, like `relata workspace create` does."""
    from app.config import Settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.workspaces import secrets
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace

    engine = create_engine(Settings(database_url=db_url(server, db)))
    sessions = session_factory(engine)
    try:
        data = WorkspaceCreate(name=f"Bench Sales {region}", owner_email="owner@sales.example",
                               default_region=region, timezone=REGION_TZ[region])
        async with unit_of_work(sessions, None) as session:
            workspace, owner, key = await create_workspace(session, data)
    finally:
        await engine.dispose()
    return {"n": 0, "id": str(workspace.id), "name": workspace.name, "region": region,
            "owner_id": str(owner.id), "api_key": key,
            "api_key_id": str(secrets.parse_token_id(key, secrets.API_KEY_PREFIX)),
            "timezone": REGION_TZ[region]}


# A window shop's scoring (S8): one rule reads the primary contact, so every re-score (each
# move) loads it, as a configured workspace does.
SCORING = {"rules": [
    {"id": "big-order", "name": "Big order", "points": 30,
     "conditions": [{"field": "deal.amount", "op": "gte", "value": 5000}]},
    {"id": "warm-source", "name": "Referral or call", "points": 20,
     "conditions": [{"field": "deal.source", "op": "in", "value": ["referral", "phone"]}]},
    {"id": "hot-contact", "name": "Hot customer", "points": 25,
     "conditions": [{"field": "contact.status", "op": "in", "value": ["hot", "vip"]}]},
    {"id": "stale", "name": "Stuck in the stage", "points": -60,
     "conditions": [{"field": "deal.days_in_stage", "op": "gt", "value": 14}]},
]}


async def configure_scoring(server: str, db: str, ws: dict[str, Any]) -> dict[str, Any] | None:
    """The scoring rules above, through the app's own service (as PUT /deal-scoring does);
    returns the stored configuration, or None when this version of the app has no scoring."""
    try:
        from app.domain.deals.scoring import SETTINGS_KEY, update_config
        from app.domain.deals.scoring_schemas import ScoringConfigIn
    except ImportError:
        return None
    from app.config import Settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.shared.principal import Principal, Role

    engine = create_engine(Settings(database_url=db_url(server, db)))
    owner = Principal(workspace_id=uuid.UUID(ws["id"]), kind="user",
                      id=uuid.UUID(ws["owner_id"]), role=Role.owner)
    try:
        async with unit_of_work(session_factory(engine), owner.workspace_id) as session:
            await update_config(session, owner, ScoringConfigIn.model_validate(SCORING))
        conn = await asyncpg.connect(db_url(server, db))
        try:
            stored = await conn.fetchval("select settings -> $1 from workspaces where id = $2",
                                         SETTINGS_KEY, uuid.UUID(ws["id"]))
        finally:
            await conn.close()
    finally:
        await engine.dispose()
    return orjson.loads(stored) if isinstance(stored, str) else stored


async def ensure_default_pipeline(conn: asyncpg.Connection, ws: str) -> tuple[str, bool]:
    """The workspace's default pipeline: the service's, or inserted like the migration does."""
    from app.domain.pipelines.defaults import DEFAULT_PIPELINE_NAME, DEFAULT_STAGES
    from app.domain.shared.ids import new_id

    found = await conn.fetchval(
        "select id::text from pipelines where workspace_id = $1 and is_default "
        "and deleted_at is null", uuid.UUID(ws))
    if found:
        return found, False
    pipeline_id = new_id()
    await conn.execute(
        "insert into pipelines (workspace_id, id, version, created_at, updated_at, created_by, "
        "updated_by, name, position, is_default) values ($1, $2, 1, now(), now(), 'system', "
        "'system', $3, 0, true)", uuid.UUID(ws), pipeline_id, DEFAULT_PIPELINE_NAME)
    for position, s in enumerate(DEFAULT_STAGES):
        await conn.execute(
            "insert into stages (workspace_id, id, version, created_at, updated_at, created_by, "
            "updated_by, pipeline_id, name, position, probability, kind, rotting_days) values "
            "($1, $2, 1, now(), now(), 'system', 'system', $3, $4, $5, $6, $7, $8)",
            uuid.UUID(ws), new_id(), pipeline_id, s["name"], position, s["probability"],
            s["kind"], s["rotting_days"])
    return str(pipeline_id), True


async def insert_users(conn: asyncpg.Connection, ws: str, count: int, password: str,
                       region: str) -> list[dict[str, Any]]:
    """`count` users: 2 managers (team heads) and agents split over their two teams."""
    from app.domain.shared.ids import new_id
    from app.domain.workspaces import secrets

    rng = random.Random(5)
    pw_hash = secrets.hash_password(password)  # once: argon2 is deliberately slow
    wsid = uuid.UUID(ws)
    users: list[dict[str, Any]] = []
    managers = min(2, count)
    for i in range(count):
        first, _, last = CULTURES[region](rng)
        role = "manager" if i < managers else "agent"
        users.append({"id": str(new_id()), "email": f"{role}{i:02d}@sales.example",
                      "full_name": f"{first} {last}", "role": role,
                      "team": i % managers if managers else None})
    await conn.executemany(
        "insert into users (workspace_id, id, email, full_name, role, password_hash, is_active, "
        "created_at, updated_at) values ($1, $2, $3, $4, $5, $6, true, now(), now())",
        [(wsid, uuid.UUID(u["id"]), u["email"], u["full_name"], u["role"], pw_hash)
         for u in users])
    teams = []
    for t in range(managers):
        team_id = new_id()
        teams.append(team_id)
        await conn.execute(
            "insert into teams (workspace_id, id, name, head_id, created_at) "
            "values ($1, $2, $3, $4, now())", wsid, team_id, f"Sales team {t + 1}",
            uuid.UUID(users[t]["id"]))
    await conn.executemany(
        "insert into team_members (workspace_id, team_id, user_id) values ($1, $2, $3)",
        [(wsid, teams[u["team"]], uuid.UUID(u["id"])) for u in users[managers:]])
    for u, t in zip(users[:managers], teams, strict=True):
        u["team_id"] = str(t)
    for u in users[managers:]:
        u["team_id"] = str(teams[u["team"]]) if teams else None
    return users


async def drop_secondary(conn: asyncpg.Connection, tables: tuple[str, ...]
                         ) -> tuple[list[str], list[tuple[str, str, str]]]:
    indexes = await conn.fetch("""
        select i.indexname, i.indexdef from pg_indexes i
        join pg_class c on c.relname = i.indexname
        where i.schemaname = 'public' and i.tablename = any($1::text[])
          and not exists (select 1 from pg_constraint k where k.conindid = c.oid)""",
                               list(tables))
    fks = await conn.fetch("""
        select conrelid::regclass::text as tbl, conname, pg_get_constraintdef(oid) as def
        from pg_constraint where contype = 'f' and conrelid::regclass::text = any($1::text[])
        order by conrelid::regclass::text desc, conname""", list(tables))
    fk_defs = [(r["tbl"], r["conname"], r["def"]) for r in fks]
    for tbl, name, _ in fk_defs:
        await conn.execute(f'ALTER TABLE "{tbl}" DROP CONSTRAINT "{name}"')
    for r in indexes:
        await conn.execute(f'DROP INDEX "{r["indexname"]}"')
    return [r["indexdef"] for r in indexes], fk_defs


async def restore_secondary(conn: asyncpg.Connection, index_defs: list[str],
                            fk_defs: list[tuple[str, str, str]]) -> None:
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    for sql in index_defs:
        t = time.perf_counter()
        await conn.execute(sql)
        print(f"  {sql.split(' USING ')[0]}  {time.perf_counter() - t:.1f}s", flush=True)
    for tbl, name, definition in reversed(fk_defs):
        t = time.perf_counter()
        await conn.execute(f'ALTER TABLE "{tbl}" ADD CONSTRAINT "{name}" {definition}')
        print(f"  FK {tbl}.{name}  {time.perf_counter() - t:.1f}s", flush=True)


def _times(rng: random.Random, n: int, start: float, end: float) -> list[float]:
    return sorted(rng.uniform(start, end) for _ in range(n))


async def main_async(args: argparse.Namespace) -> None:
    from uuid_utils.compat import uuid7

    started = time.perf_counter()
    await prepare_database(args.server, args.db, args.reset)
    conn = await asyncpg.connect(db_url(args.server, args.db))
    if await conn.fetchval("select count(*) from workspaces"):
        raise SystemExit(f"database {args.db} already has data; pass --reset")
    t = time.perf_counter()
    ws = await create_sales_workspace(args.server, args.db, args.region)
    pipeline_id, inserted = await ensure_default_pipeline(conn, ws["id"])
    print(f"workspace via the service in {time.perf_counter() - t:.1f}s; default pipeline "
          f"{'inserted here (create_workspace does not create one yet)' if inserted else 'created by the service'}",
          flush=True)
    stages = [{"id": str(r["id"]), "name": r["name"], "position": r["position"],
               "probability": r["probability"], "kind": r["kind"],
               "rotting_days": r["rotting_days"]} for r in await conn.fetch(
        "select id, name, position, probability, kind, rotting_days from stages "
        "where pipeline_id = $1 and archived_at is null and deleted_at is null order by position",
        uuid.UUID(pipeline_id))]
    currency = await conn.fetchval(
        "select coalesce(settings->>'currency', 'USD') from workspaces where id = $1",
        uuid.UUID(ws["id"]))
    users = await insert_users(conn, ws["id"], args.users, args.password, args.region)
    print(f"{len(users)} users in 2 teams (password {args.password!r})", flush=True)
    scoring = await configure_scoring(args.server, args.db, ws) if not args.no_scoring else None
    print(f"deal scoring: {len(scoring['rules']) if scoring else 0} rules", flush=True)

    rng = random.Random(args.seed)
    now = time.time()
    contact_created = _times(rng, args.contacts, now - 3 * 365 * DAY, now - 60)
    deal_created = _times(rng, args.deals, now - 2 * 365 * DAY, now - 60)
    ctx = {
        "seed": args.seed, "ws": ws["id"], "region": args.region, "now": now,
        "user_ids": [u["id"] for u in users], "pipeline_id": pipeline_id, "stages": stages,
        "currency": currency, "due_days": args.due_days, "scoring": scoring,
        "contact_status": rng.choices(CONTACT_STATUSES, weights=[15, 20, 25, 15, 5, 20],
                                      k=args.contacts),
        "n_contacts": args.contacts, "contact_chunks": max(1, math.ceil(args.contacts / 25_000)),
        "contact_ids": [str(uuid7(nanoseconds=int(c * 1e9))) for c in contact_created],
        "contact_created": contact_created,
        "n_deals": args.deals, "deal_chunks": max(1, math.ceil(args.deals / 10_000)),
        "deal_ids": [str(uuid7(nanoseconds=int(c * 1e9))) for c in deal_created],
        "deal_created": deal_created,
        "n_tasks": args.tasks, "task_chunks": max(1, math.ceil(args.tasks / 50_000)),
    }
    index_defs, fk_defs = await drop_secondary(conn, TABLES)
    columns = {"contacts": CONTACT_COLUMNS, "deals": DEAL_COLUMNS,
               "stage_intervals": INTERVAL_COLUMNS, "deal_contacts": DEAL_CONTACT_COLUMNS,
               "tasks": TASK_COLUMNS}
    counts: dict[str, int] = dict.fromkeys(columns, 0)
    t = time.perf_counter()
    with mp.get_context("fork").Pool(args.jobs, initializer=_init_worker,
                                     initargs=(ctx,)) as pool:
        jobs = ([(gen_contacts, c) for c in range(ctx["contact_chunks"])]
                + [(gen_deals, c) for c in range(ctx["deal_chunks"])]
                + [(gen_tasks, c) for c in range(ctx["task_chunks"])])
        for out in pool.imap(_run_job, jobs):
            for table, data, n in (out if isinstance(out, list) else [out]):
                await conn.copy_to_table(table, source=io.BytesIO(data),
                                         columns=columns[table], format="csv")
                counts[table] += n
            el = time.perf_counter() - t
            print("\r  " + "  ".join(f"{k} {v:,}" for k, v in counts.items())
                  + f"  {el:6.1f}s", end="", flush=True)
    print(f"\nCOPY done in {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    await restore_secondary(conn, index_defs, fk_defs)
    print(f"indexes and foreign keys in {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    for table in (*TABLES, "workspaces", "users", "teams", "team_members", "api_keys",
                  "pipelines", "stages"):
        await conn.execute(f'VACUUM (ANALYZE) "{table}"')
    print(f"vacuum analyze in {time.perf_counter() - t:.1f}s", flush=True)
    today = await conn.fetchrow("""
        select count(*) filter (where status = 'open') as open_today,
               count(*) as all_today
        from tasks where deleted_at is null
          and due_at >= date_trunc('day', now() at time zone $1) at time zone $1
          and due_at < (date_trunc('day', now() at time zone $1) + interval '1 day') at time zone $1
        """, ws["timezone"])
    open_share = await conn.fetchval(
        "select avg((status = 'open')::int)::float from tasks")
    size = await conn.fetchval("select pg_size_pretty(pg_database_size(current_database()))")
    await conn.close()
    total = time.perf_counter() - started
    print(f"tasks due today ({ws['timezone']}): {today['all_today']:,}, open "
          f"{today['open_today']:,} = {today['open_today'] / max(1, len(users)):.0f} per user; "
          f"open overall {open_share:.0%}")
    ws["contacts"] = counts["contacts"]
    save_state(args.db, {
        "db": args.db, "kind": "sales", "contacts": counts["contacts"],
        "deals": counts["deals"], "stage_intervals": counts["stage_intervals"],
        "deal_contacts": counts["deal_contacts"], "tasks": counts["tasks"],
        "workspaces": [ws], "users": users, "password": args.password,
        "pipeline_id": pipeline_id, "stages": stages, "currency": currency, "scoring": scoring,
        "open_tasks_due_today": today["open_today"],
        "generated_at": datetime.now(UTC).isoformat(), "generated_at_epoch": now,
        "seconds": round(total, 1), "database_size": size})
    print(f"done: {counts['deals']:,} deals, {counts['stage_intervals']:,} intervals, "
          f"{counts['tasks']:,} tasks, {counts['contacts']:,} contacts, {size}, {total:.0f}s "
          f"total; state in bench/data/{args.db}.json")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.generate_sales",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=DEFAULT_SERVER_URL,
                   help="PostgreSQL server URL without a database (superuser; env BENCH_PG_URL)")
    p.add_argument("--db", default=DEFAULT_SALES_DB,
                   help="database to (re)create (env BENCH_SALES_DB)")
    p.add_argument("--deals", type=int, default=100_000)
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--users", type=int, default=50, help="assignees: 2 managers + agents")
    p.add_argument("--region", default="RU", choices=REGIONS)
    p.add_argument("--due-days", type=float, default=60.0,
                   help="task due times are uniform over now ± this many days")
    p.add_argument("--password", default="bench-sales-password",
                   help="password of every generated user")
    p.add_argument("--no-scoring", action="store_true",
                   help="leave the workspace without scoring rules (the default class only)")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)),
                   help="generator processes")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reset", action="store_true", help="drop and recreate the database")
    args = p.parse_args()
    if args.users < 3 or args.contacts < 1:
        raise SystemExit("need at least 3 users and 1 contact")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
