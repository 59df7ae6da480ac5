"""Automations benchmark (issue 4): event committed -> the rule's effect, and worker throughput.

    python -m bench.automations            # full: 50 events/s for 20 s, 10,000 no-op events
    python -m bench.automations --quick    # smoke run: 5 s, 1,000 events
    python -m bench.automations --tuned    # + the same phases on a worker with the proposed
                                           #   settings (bench-side monkeypatch, app/ untouched)

Targets: committed -> effect p50 <= 100 ms, p99 <= 1 s at 50 events/s sustained; the worker
keeps up with 500 events/s of matching no-op rules. Every phase has a bare-arq reference
(bench/reference_arq.py) in the same run, and the results give Relata/reference ratios.

What is measured:
* Latency: a rule `record_created contact -> create_task` (due in 15m, a fixed assignee).
  The driver creates contacts with the app's `create_contact`, each in its own
  `unit_of_work`, open-loop at `--rate` per second. `commit` = wall clock right after the
  commit returned. `effect` = the task's `created_at`, which the worker sets (Python clock,
  same machine) when it builds the task inside its `handle_event` transaction, a few ms
  before that transaction commits. `visible` = the start of the first observer query that
  saw the task (the observer LISTENs on `relata_events` and queries right after every
  notification, i.e. after every commit that wrote events, and every 100 ms otherwise): an
  upper bound of when the task became visible to other transactions.
  Reference: `enqueue_job` at the same rate; `commit` = when `enqueue_job` returned,
  `effect` = the time the no-op job ran.
* Throughput: a rule on every `contact.created` that notifies the contact's owner, on a
  contact without one: it matches, loads its context, records a `succeeded` run, and
  notifies nobody. N `contact.created` events for that contact are inserted in one
  transaction (as an import would); rate = N / (last `handled_at` - commit), and the steady
  rate (N-1) / (last - first `handled_at`). Reference: N no-op jobs are enqueued while the
  reference worker is stopped, then it starts; rate = (N-1) / (last - first execution).

Uses its own database (`--db`, dropped and re-created on each run) on BENCH_PG_URL and
Redis db 7 with a queue name of its own; never the test databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import asyncpg

from bench.common import DATA_DIR, DEFAULT_SERVER_URL, ROOT, db_url

DEFAULT_DB = os.environ.get("BENCH_AUTOMATIONS_DB", "relata_bench_automations")
DEFAULT_REDIS = os.environ.get("BENCH_AUTOMATIONS_REDIS_URL", "redis://127.0.0.1:6379/7")
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"p50_ms": 100.0, "p99_ms": 1000.0, "rate": 50.0, "throughput": 500.0}


# --------------------------------------------------------------------------------------------
# Processes and meters

def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_jiffies() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts), parts[3] + parts[4]


class Meter:
    """CPU of some processes and idleness of the machine during one phase."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def __enter__(self) -> Self:
        self.t0 = time.monotonic()
        self.cpu0 = sum(proc_cpu_seconds(p) for p in self.pids)
        self.j0 = machine_jiffies()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self.t0
        self.cpu = sum(proc_cpu_seconds(p) for p in self.pids) - self.cpu0
        j1 = machine_jiffies()
        total, idle = j1[0] - self.j0[0], j1[1] - self.j0[1]
        self.idle_pct = 100 * idle / total if total else 0.0

    def as_dict(self, items: int) -> dict[str, Any]:
        return {"worker_cpu_s": round(self.cpu, 2),
                "worker_cpu_pct": round(100 * self.cpu / self.seconds, 1),
                "worker_cpu_ms_per_item": round(1000 * self.cpu / items, 3) if items else None,
                "machine_idle_pct": round(self.idle_pct, 1)}


class Proc:
    """A worker subprocess (Relata's `relata worker`, or the bare arq reference)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log,
                                      stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()


def relata_worker(args: argparse.Namespace, queue: str, log: Path, tuned: bool) -> Proc:
    env = {**os.environ, "RELATA_DATABASE_URL": db_url(args.server, args.db),
           "RELATA_REDIS_URL": args.redis, "RELATA_QUEUE_NAME": queue,
           "RELATA_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "app.cli", "worker"]
    if tuned:
        argv = [sys.executable, "-m", "bench.automations", "--tuned-worker"]
    return Proc(argv, env, log)


def reference_worker(args: argparse.Namespace, queue: str, poll_delay: float,
                     log: Path) -> Proc:
    return Proc([sys.executable, "-m", "bench.reference_arq", "--queue", queue,
                 "--redis", args.redis, "--poll-delay", str(poll_delay)], dict(os.environ), log)


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("  (py-spy not installed: no profile)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "97", "--duration", str(int(seconds)), "--output",
                             str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def pg_backend_cpu(conn: asyncpg.Connection, db: str) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend connected to the bench database."""
    pids = await conn.fetch("select pid from pg_stat_activity where datname = $1 "
                            "and pid <> pg_backend_pid()", db)
    return {r["pid"]: proc_cpu_seconds(r["pid"]) for r in pids}


async def pg_cpu_since(conn: asyncpg.Connection, db: str, before: dict[int, float]) -> float:
    now = await pg_backend_cpu(conn, db)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary_ms(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": _r(pct(ms, 50)), "p95_ms": _r(pct(ms, 95)),
            "p99_ms": _r(pct(ms, 99)), "max_ms": _r(max(ms) if ms else None),
            "mean_ms": _r(statistics.fmean(ms) if ms else None)}


def _r(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


async def wait_idle(seconds: float, threshold: float) -> float:
    """Hold until the machine was >= threshold % idle over one second, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    idle = 0.0
    while True:
        j0 = machine_jiffies()
        await asyncio.sleep(1)
        j1 = machine_jiffies()
        idle = 100 * (j1[1] - j0[1]) / max(1, j1[0] - j0[0])
        if idle >= threshold or time.monotonic() >= deadline:
            return idle


# --------------------------------------------------------------------------------------------
# Setup: database, workspaces, users, rules (through the app's services)

def prepare_database(args: argparse.Namespace) -> None:
    async def recreate() -> None:
        conn = await asyncpg.connect(db_url(args.server, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{args.db}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    os.environ["RELATA_DATABASE_URL"] = db_url(args.server, args.db)
    from app.config import get_settings

    get_settings.cache_clear()
    from app.cli import migrate_database

    migrate_database()


async def setup(sessions: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from app.db import unit_of_work
    from app.domain.automations.schemas import RuleCreate
    from app.domain.automations.service import create_rule
    from app.domain.contacts.schemas import ContactCreate
    from app.domain.contacts.service import create_contact
    from app.domain.outbox.models import Event
    from app.domain.shared.principal import system_principal
    from app.domain.workspaces.schemas import UserCreate, WorkspaceCreate
    from app.domain.workspaces.service import create_user, create_workspace

    state: dict[str, Any] = {}
    for kind in ("latency", "throughput"):
        async with unit_of_work(sessions, None) as session:
            workspace, owner, _ = await create_workspace(session, WorkspaceCreate(
                name=f"Bench automations {kind}", owner_email=f"owner@{kind}.example",
                default_region="US", timezone="UTC"))
        state[kind] = {"workspace_id": workspace.id, "owner_id": owner.id}
    lat, tp = state["latency"], state["throughput"]
    async with unit_of_work(sessions, lat["workspace_id"]) as session:
        principal = system_principal(lat["workspace_id"])
        user = await create_user(session, principal, UserCreate(
            email="assignee@latency.example", full_name="Fixed Assignee", role="agent"))
        rule = await create_rule(session, principal, RuleCreate.model_validate({
            "name": "New contact: call in 15 minutes",
            "trigger": {"type": "record_created", "object": "contact"},
            "actions": [{"type": "create_task", "title": "Call {{ contact.full_name }}",
                         "task_type": "call", "due": {"in": "15m"},
                         "assignee": {"strategy": "user", "user_id": str(user.id)}}]}))
        lat.update(user_id=user.id, rule_id=rule.id)
    async with unit_of_work(sessions, tp["workspace_id"]) as session:
        principal = system_principal(tp["workspace_id"])
        rule = await create_rule(session, principal, RuleCreate.model_validate({
            "name": "Every new contact: tell its owner (there is none)",
            "trigger": {"type": "record_created", "object": "contact"},
            "actions": [{"type": "notify", "to": {"strategy": "owner"},
                         "title": "New contact {{ contact.full_name }}"}]}))
        contact = await create_contact(session, principal,
                                       ContactCreate(full_name="Throughput Target"))
        tp.update(rule_id=rule.id, contact_id=contact.id)
    async with unit_of_work(sessions, tp["workspace_id"]) as session:
        event = (await session.execute(select(Event).where(
            Event.entity_id == tp["contact_id"], Event.type == "contact.created"))).scalar_one()
        tp["after"], tp["changed"] = event.after, list(event.changed or [])
    return state


# --------------------------------------------------------------------------------------------
# Latency

class Observer:
    """Sees tasks become visible: queries right after each NOTIFY relata_events."""

    def __init__(self, conn: asyncpg.Connection, workspace_id: uuid.UUID) -> None:
        self.conn, self.workspace_id = conn, workspace_id
        self.pending: set[uuid.UUID] = set()
        self.visible: dict[uuid.UUID, float] = {}
        self.wake = asyncio.Event()
        self.stopping = False

    async def run(self) -> None:
        await self.conn.add_listener("relata_events", lambda *_: self.wake.set())
        while not self.stopping:
            try:
                await asyncio.wait_for(self.wake.wait(), 0.1)
            except TimeoutError:
                pass
            self.wake.clear()
            if not self.pending:
                continue
            started = time.time()
            rows = await self.conn.fetch(
                "select contact_id from tasks where workspace_id = $1 "
                "and contact_id = any($2::uuid[])", self.workspace_id, list(self.pending))
            for row in rows:
                self.visible.setdefault(row["contact_id"], started)
                self.pending.discard(row["contact_id"])


async def drive_contacts(sessions: Any, workspace_id: uuid.UUID, rate: float, count: int,
                         observer: Observer | None, prefix: str) -> dict[uuid.UUID, dict[str, float]]:
    from app.db import unit_of_work
    from app.domain.contacts.schemas import ContactCreate
    from app.domain.contacts.service import create_contact
    from app.domain.shared.principal import system_principal

    principal = system_principal(workspace_id)
    out: dict[uuid.UUID, dict[str, float]] = {}
    loop = asyncio.get_running_loop()
    wall0, mono0 = time.time() + 0.1, loop.time() + 0.1

    async def one(i: int) -> None:
        async with unit_of_work(sessions, workspace_id) as session:
            contact = await create_contact(session, principal,
                                           ContactCreate(full_name=f"{prefix} {i}"))
            contact_id = contact.id
        committed = time.time()
        out[contact_id] = {"scheduled": wall0 + i / rate, "committed": committed}
        if observer is not None:
            observer.pending.add(contact_id)

    tasks = []
    for i in range(count):
        delay = mono0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return out


async def task_times(conn: asyncpg.Connection, workspace_id: uuid.UUID) -> dict[uuid.UUID, float]:
    rows = await conn.fetch("select contact_id, created_at from tasks where workspace_id = $1",
                            workspace_id)
    return {r["contact_id"]: r["created_at"].timestamp() for r in rows}


async def wait_until(predicate: Any, timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return False


async def relata_latency(args: argparse.Namespace, sessions: Any, conn: asyncpg.Connection,
                         state: dict[str, Any], worker: Proc, label: str,
                         rate: float, profile_to: Path | None = None) -> dict[str, Any]:
    ws = state["latency"]["workspace_id"]
    # Warm-up (and readiness): the worker has started once these have their tasks.
    warm = await drive_contacts(sessions, ws, 10, 10, None, f"{label} warm-up")
    ok = await wait_until(lambda: _all_have_tasks(conn, ws, warm), 60)
    if not ok:
        raise SystemExit(f"{label}: the worker did not create the warm-up tasks in 60 s "
                         f"(see {worker.log.name})")
    await wait_idle(args.wait_idle, args.idle_threshold)
    observer = Observer(await asyncpg.connect(db_url(args.server, args.db)), ws)
    watcher = asyncio.create_task(observer.run())
    count = int(rate * args.duration)
    pg0 = await pg_backend_cpu(conn, args.db)
    spy = profile(worker.pid, args.duration, profile_to) if profile_to else None
    with Meter([worker.pid]) as meter:
        created = await drive_contacts(sessions, ws, rate, count, observer, label)
        await wait_until(lambda: _all_have_tasks(conn, ws, created), args.drain_timeout)
        await wait_until(lambda: _backlog_empty(conn, ws), 30)
    pg = await pg_cpu_since(conn, args.db, pg0)
    if spy is not None:
        spy.wait(60)
    await asyncio.sleep(0.3)
    observer.stopping = True
    await watcher
    await observer.conn.close()
    tasks = await task_times(conn, ws)
    effect = [tasks[c] - t["committed"] for c, t in created.items() if c in tasks]
    visible = [observer.visible[c] - t["committed"] for c, t in created.items()
               if c in observer.visible]
    lag = [t["committed"] - t["scheduled"] for t in created.values()]
    span = max(t["committed"] for t in created.values()) - min(
        t["scheduled"] for t in created.values())
    return {"phase": label, "rate": rate, "contacts": count,
            "achieved_rate": round(count / span, 1),
            "with_task": sum(c in tasks for c in created), "with_task_fraction":
            round(sum(c in tasks for c in created) / count, 4),
            "commit_to_task_created_at": summary_ms(effect),
            "commit_to_visible": summary_ms(visible),
            "scheduled_to_commit": summary_ms(lag), **meter.as_dict(count),
            "pg_backends_cpu_ms_per_item": round(1000 * pg / count, 2),
            "note": "CPU per contact: its create_task run plus the follow-up task.created and "
                    "notification.created events (no rule listens; still one job each); PG "
                    "backends include the driver's own connections"}


async def _backlog_empty(conn: asyncpg.Connection, ws: uuid.UUID) -> bool:
    return not await conn.fetchval("select count(*) from events where workspace_id = $1 "
                                   "and handled_at is null", ws)


async def _all_have_tasks(conn: asyncpg.Connection, ws: uuid.UUID,
                          created: dict[uuid.UUID, Any]) -> bool:
    n = await conn.fetchval("select count(*) from tasks where workspace_id = $1 "
                            "and contact_id = any($2::uuid[])", ws, list(created))
    return n >= len(created)


async def reference_latency(args: argparse.Namespace, pool: Any, queue: str, tag: str,
                            worker: Proc, label: str, rate: float) -> dict[str, Any]:
    # Readiness: one job through.
    job = await pool.enqueue_job("noop", _job_id=f"{tag}:warm", _queue_name=queue)
    await job.result(timeout=60)
    await wait_idle(args.wait_idle, args.idle_threshold)
    count = int(rate * args.duration)
    loop = asyncio.get_running_loop()
    mono0 = loop.time() + 0.1
    enqueued: dict[str, float] = {}

    async def one(i: int) -> None:
        job_id = f"{tag}:{i}"
        await pool.enqueue_job("noop", _job_id=job_id, _queue_name=queue)
        enqueued[job_id] = time.time()

    with Meter([worker.pid]) as meter:
        tasks = []
        for i in range(count):
            delay = mono0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        results = await _results(pool, queue, list(enqueued), timeout=30)
    effect = [results[j] - t for j, t in enqueued.items() if j in results]
    return {"phase": label, "rate": rate, "jobs": count, "executed": len(results),
            "enqueue_to_execute": summary_ms(effect), **meter.as_dict(count)}


async def _results(pool: Any, queue: str, job_ids: list[str], timeout: float
                   ) -> dict[str, float]:
    from arq.jobs import Job

    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        missing = [j for j in job_ids if j not in found]
        if not missing:
            break
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            infos = await asyncio.gather(*(Job(j, pool, _queue_name=queue).result_info()
                                           for j in chunk))
            for job_id, info in zip(chunk, infos, strict=True):
                if info is not None and info.success:
                    found[job_id] = float(info.result)
        if len(found) < len(job_ids):
            await asyncio.sleep(0.5)
    return found


# --------------------------------------------------------------------------------------------
# Throughput

async def insert_events(sessions: Any, tp: dict[str, Any], count: int, marker: datetime
                        ) -> float:
    from sqlalchemy import insert

    from app.db import unit_of_work
    from app.domain.outbox.models import Event
    from app.domain.shared.ids import new_id

    rows = [{"workspace_id": tp["workspace_id"], "id": new_id(), "type": "contact.created",
             "entity_type": "contact", "entity_id": tp["contact_id"], "actor": "system",
             "before": None, "after": tp["after"], "changed": tp["changed"],
             "occurred_at": marker, "depth": 0} for _ in range(count)]
    async with unit_of_work(sessions, tp["workspace_id"]) as session:
        await session.execute(insert(Event), rows)
    return time.time()


async def relata_throughput(args: argparse.Namespace, sessions: Any, conn: asyncpg.Connection,
                            state: dict[str, Any], workers: list[Proc], label: str,
                            profile_to: Path | None, count: int) -> dict[str, Any]:
    tp = state["throughput"]
    ws = tp["workspace_id"]
    await wait_idle(args.wait_idle, args.idle_threshold)
    marker = datetime.now(UTC)
    timeout = args.throughput_timeout
    t0 = time.time()
    spy = None
    pg0 = await pg_backend_cpu(conn, args.db)
    with Meter([w.pid for w in workers]) as meter:
        committed = await insert_events(sessions, tp, count, marker)
        if profile_to is not None:
            spy = profile(workers[0].pid, min(30, timeout), profile_to)

        async def done() -> bool:
            left = await conn.fetchval(
                "select count(*) from events where workspace_id = $1 and occurred_at = $2 "
                "and handled_at is null", ws, marker)
            return left == 0

        finished = await wait_until(done, timeout, step=0.2)
    pg = await pg_cpu_since(conn, args.db, pg0)
    if spy is not None:
        spy.wait(60)
    row = await conn.fetchrow(
        "select count(*) filter (where handled_at is not null) handled, "
        "min(handled_at) first, max(handled_at) last from events "
        "where workspace_id = $1 and occurred_at = $2", ws, marker)
    runs = {r["status"]: r["n"] for r in await conn.fetch(
        "select r.status, count(*) n from rule_runs r join events e "
        "on e.workspace_id = r.workspace_id and e.id = r.event_id "
        "where r.workspace_id = $1 and e.occurred_at = $2 group by r.status", ws, marker)}
    handled = row["handled"]
    end = row["last"].timestamp() if row["last"] else time.time()
    first = row["first"].timestamp() if row["first"] else end
    if not finished:  # the rest would run into the next phase: marked handled here
        await conn.execute("update events set handled_at = now() where workspace_id = $1 "
                           "and occurred_at = $2 and handled_at is null", ws, marker)
    return {"phase": label, "workers": len(workers), "events": count, "handled": handled,
            "finished": finished, "insert_s": round(committed - t0, 2),
            "commit_to_last_handled_s": round(end - committed, 2),
            "events_per_s": round(handled / (end - committed), 1) if end > committed else None,
            "steady_events_per_s": round((handled - 1) / (end - first), 1)
            if end > first else None,
            "runs": runs, **meter.as_dict(handled),
            "pg_backends_cpu_ms_per_item": round(1000 * pg / handled, 2) if handled else None}


async def reference_throughput(args: argparse.Namespace, pool: Any, queue: str, tag: str,
                               poll_delay: float, log: Path, label: str) -> dict[str, Any]:
    count = args.events
    ids = [f"{tag}:{i}" for i in range(count)]
    t0 = time.time()
    for start in range(0, count, 200):
        await asyncio.gather(*(pool.enqueue_job("noop", _job_id=j, _queue_name=queue)
                               for j in ids[start:start + 200]))
    enqueue_s = time.time() - t0
    await wait_idle(args.wait_idle, args.idle_threshold)
    worker = reference_worker(args, queue, poll_delay, log)
    try:
        with Meter([worker.pid]) as meter:
            async def drained() -> bool:
                return await pool.zcard(queue) == 0
            await wait_until(drained, max(60.0, count / 40), step=0.2)
            await asyncio.sleep(0.5)
        results = await _results(pool, queue, ids, timeout=30)
    finally:
        worker.stop()
    times = sorted(results.values())
    return {"phase": label, "jobs": count, "executed": len(results),
            "enqueue_s": round(enqueue_s, 2),
            "steady_jobs_per_s": round((len(times) - 1) / (times[-1] - times[0]), 1)
            if len(times) > 1 else None, **meter.as_dict(len(results))}


# --------------------------------------------------------------------------------------------
# The tuned worker: the proposed changes applied from here, to measure them (app/ untouched)

def tuned_worker() -> None:
    """`relata worker` with (1) arq's poll_delay at 50 ms instead of 0.5 s and (2) a relay that
    starts its next pass at once when the last one enqueued jobs, and polls every 50 ms for
    two seconds after any activity, instead of waiting for a NOTIFY or the 1 s tick."""
    from arq.worker import run_worker

    from app.workers import relay, settings

    async def eager_relay_loop(ctx: dict[str, Any]) -> None:
        cfg = ctx["settings"]
        wake = asyncio.Event()
        conn = None
        busy_until = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if conn is None or conn.is_closed():
                try:
                    conn = await relay._listen(cfg, wake)
                except (OSError, asyncpg.PostgresError):
                    conn = None
            enqueued = 0
            try:
                enqueued = await relay.dispatch_once(ctx["sessions"], ctx["redis"], cfg)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                relay.log.exception("relay pass failed")
            if enqueued:
                busy_until = loop.time() + 2.0
                await asyncio.sleep(0)
                continue
            timeout = 0.05 if loop.time() < busy_until else relay.POLL_SECONDS
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass
            wake.clear()

    settings.relay_loop = eager_relay_loop  # startup() looks it up in its module

    settings.WorkerSettings.poll_delay = 0.05  # type: ignore[attr-defined]
    run_worker(settings.WorkerSettings)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Main

def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


async def main_async(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings

    from app.config import Settings
    from app.db import create_engine, session_factory

    engine = create_engine(Settings(database_url=db_url(args.server, args.db)))
    sessions = session_factory(engine)
    conn = await asyncpg.connect(db_url(args.server, args.db))
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    run_tag = uuid.uuid4().hex[:12]
    results: dict[str, Any] = {"relata": {}, "reference": {}}
    try:
        t = time.perf_counter()
        state = await setup(sessions)
        print(f"setup: 2 workspaces, a user, 2 rules, 1 contact in "
              f"{time.perf_counter() - t:.1f}s", flush=True)
        variants = [("default", False)] + ([("tuned", True)] if args.tuned else [])
        for variant, tuned in variants:
            queue = f"relata-bench:{run_tag}:{variant}"
            w1 = relata_worker(args, queue, run_dir / f"worker-{variant}-1.log", tuned)
            workers = [w1]
            try:
                if "latency" in args.scenarios:
                    for rate in args.rate:
                        prof = (args.profile / f"{run_tag}-{variant}-latency-{rate:g}.txt"
                                if args.profile and rate == args.rate[0] else None)
                        r = await relata_latency(args, sessions, conn, state, w1,
                                                 f"relata-{variant}-latency-{rate:g}", rate, prof)
                        if prof is not None:
                            r["profile"] = str(prof)
                        results["relata"][r["phase"]] = r
                        print(json.dumps(r), flush=True)
                if "throughput" in args.scenarios:
                    counts = args.workers if not tuned else [1]
                    for n in counts:
                        while len(workers) < n:
                            workers.append(relata_worker(
                                args, queue, run_dir / f"worker-{variant}-{len(workers) + 1}.log",
                                tuned))
                            await asyncio.sleep(3)  # started; it idles until events come
                        prof = (args.profile / f"{run_tag}-{variant}-{n}w.txt"
                                if args.profile else None)
                        r = await relata_throughput(
                            args, sessions, conn, state, workers[:n],
                            f"relata-{variant}-throughput-{n}w", prof,
                            args.events if not tuned else min(args.events, args.tuned_events))
                        if prof is not None:
                            r["profile"] = str(prof)
                        results["relata"][r["phase"]] = r
                        print(json.dumps(r), flush=True)
            finally:
                for w in workers:
                    w.stop()
        for delay in args.ref_poll_delays:
            queue = f"relata-bench-ref:{run_tag}:{delay}"
            if "latency" in args.scenarios:
                w = reference_worker(args, queue, delay, run_dir / f"reference-{delay}.log")
                try:
                    for rate in args.rate:
                        r = await reference_latency(args, pool, queue,
                                                    f"{run_tag}:lat:{delay}:{rate}", w,
                                                    f"reference-poll{delay}-latency-{rate:g}",
                                                    rate)
                        results["reference"][r["phase"]] = r
                        print(json.dumps(r), flush=True)
                finally:
                    w.stop()
            if "throughput" in args.scenarios:
                r = await reference_throughput(args, pool, queue, f"{run_tag}:tp:{delay}", delay,
                                               run_dir / f"reference-{delay}.log",
                                               f"reference-poll{delay}-throughput")
                results["reference"][r["phase"]] = r
                print(json.dumps(r), flush=True)
    finally:
        # Our keys only: the reference's results and the queues' own keys.
        keys = [k async for k in pool.scan_iter(match=f"*{run_tag}*", count=1000)]
        for start in range(0, len(keys), 500):
            await pool.delete(*keys[start:start + 500])
        await pool.aclose()
        await conn.close()
        await engine.dispose()
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Markdown: each Relata phase against the reference with Relata's arq settings."""
    rel, ref = results["relata"], results["reference"]
    base = f"reference-poll{args.ref_poll_delays[0] if args.ref_poll_delays else None}"
    lines = ["", "| phase | figure | Relata | reference | Relata/ref | target | met |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for name, r in rel.items():
        if "latency" in name:
            b = ref.get(f"{base}-latency-{r['rate']:g}", {}).get("enqueue_to_execute", {})
            e, v = r["commit_to_task_created_at"], r["commit_to_visible"]
            at_target = r["rate"] >= TARGETS["rate"]
            for key, target in (("p50_ms", TARGETS["p50_ms"]), ("p95_ms", None),
                                ("p99_ms", TARGETS["p99_ms"])):
                met = "" if target is None or not at_target else (
                    "yes" if e[key] is not None and e[key] <= target else "**no**")
                lines.append(f"| {name} | committed→task {key[:3]} (visible {v[key]}) | "
                             f"{e[key]} ms | {b.get(key)} ms | {ratio(e[key], b.get(key))} | "
                             f"{f'≤ {target:g} ms' if target and at_target else ''} | {met} |")
            lines.append(f"| {name} | got their task; driver rate | {r['with_task']}/"
                         f"{r['contacts']}; {r['achieved_rate']}/s of {r['rate']:g}/s | | | "
                         f"| | |")
            ref_cpu = ref.get(f"{base}-latency-{r['rate']:g}", {}).get("worker_cpu_ms_per_item")
            lines.append(f"| {name} | worker CPU per contact (PG backends) | "
                         f"{r['worker_cpu_ms_per_item']} ms ({r['pg_backends_cpu_ms_per_item']}"
                         f" ms) | {ref_cpu} ms | | | |")
        else:
            b = ref.get(f"{base}-throughput", {}).get("steady_jobs_per_s")
            rate = r["events_per_s"]
            lines.append(f"| {name} | events/s, commit→last handled (steady "
                         f"{r['steady_events_per_s']}; {r['handled']}/{r['events']}) | {rate} | "
                         f"{b} | {ratio(rate, b)} | ≥ 500/s | "
                         f"{'yes' if rate and rate >= 500 else '**no**'} |")
            lines.append(f"| {name} | worker CPU per event (PG backends) | "
                         f"{r['worker_cpu_ms_per_item']} ms ({r['pg_backends_cpu_ms_per_item']}"
                         f" ms) | {ref.get(f'{base}-throughput', {}).get('worker_cpu_ms_per_item')}"
                         f" ms | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=DEFAULT_SERVER_URL)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--quick", action="store_true", help="5 s at the rate, 1,000 events")
    parser.add_argument("--rate", default="50,10",
                        help="contacts per second, one latency phase each (the target is at 50)")
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to wait for the last tasks after a latency phase")
    parser.add_argument("--throughput-timeout", type=float, default=300.0,
                        help="a throughput phase stops here; the rate is then handled/elapsed")
    parser.add_argument("--tuned-events", type=int, default=3000,
                        help="N of the tuned worker's throughput phase (1 worker)")
    parser.add_argument("--duration", type=float, default=None, help="latency seconds (20)")
    parser.add_argument("--events", type=int, default=None, help="throughput N (10,000)")
    parser.add_argument("--workers", default="1,2", help="worker counts for throughput")
    parser.add_argument("--scenarios", default="latency,throughput")
    parser.add_argument("--ref-poll-delays", default="0.5,0.05",
                        help="arq poll_delay of the reference worker(s); the first is the "
                             "one the ratios use (0.5 = what Relata's worker runs with)")
    parser.add_argument("--tuned", action="store_true",
                        help="also run Relata's phases on the tuned worker (see tuned_worker)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy raw stacks of the first worker in throughput phases")
    parser.add_argument("--wait-idle", type=float, default=20.0)
    parser.add_argument("--idle-threshold", type=float, default=70.0)
    parser.add_argument("--tuned-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tuned_worker:
        tuned_worker()
        return
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    args.events = args.events or (1000 if args.quick else 10000)
    args.workers = [int(w) for w in args.workers.split(",")]
    args.rate = [float(r) for r in args.rate.split(",")]
    args.scenarios = set(args.scenarios.split(","))
    args.ref_poll_delays = [float(d) for d in args.ref_poll_delays.split(",")
                            if d and d != "none"]
    if args.quick:
        args.wait_idle = min(args.wait_idle, 3.0)
    run_dir = DATA_DIR / "runs" / f"automations-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    run_dir.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=False,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "app"], cwd=ROOT, check=False,
                           capture_output=True, text=True).stdout.strip()
    t = time.perf_counter()
    prepare_database(args)
    print(f"database {args.db}: created and migrated in {time.perf_counter() - t:.1f}s",
          flush=True)
    started = datetime.now(UTC)
    results = asyncio.run(main_async(args, run_dir))
    results["meta"] = {"started": started.isoformat(), "commit": commit,
                       "app_uncommitted": dirty.splitlines(), "args": {
                           k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(
                               v, Path) else v) for k, v in vars(args).items()},
                       "nproc": os.cpu_count()}
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(report(results, args))
    print(f"\nraw: {run_dir / 'results.json'}")


if __name__ == "__main__":
    main()
