"""Imports and exports at scale: a 10-column contacts CSV through the real import job, the
write stage against a raw asyncpg COPY of the same normalized rows, peak memory, and export.

    python -m bench.imports --rows 100000,1000000          # both sizes, one process each
    python -m bench.imports --rows 100000 --events          # with contact.created events

Each size runs in a fresh process (so its peak RSS is its own) against a fresh database
(`--db`, default relata_bench_imports): generate the file, import it with `run_import` (the
worker's job function: detection, mapping, preparation in worker processes, COPY-staged
batches), then, in the same run, COPY the same normalized rows with bare asyncpg into the same
indexed `contacts` / `contact_identities` tables of a second workspace (the reference), then
export every contact as CSV through the export service. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import DATA_DIR, DEFAULT_SERVER_URL, ROOT, db_url
from bench.generate import (
    _armenian,
    _azerbaijani,
    _russian,
    _spanish,
    _vietnamese,
    latin,
    prepare_database,
)

CULTURES = [_russian, _russian, _armenian, _vietnamese, _spanish, _azerbaijani]
HEADERS = ["ФИО", "Телефон", "Email", "Компания", "Статус", "Источник", "Теги", "Код",
           "Город", "Дата рождения"]
MAPPING = {"ФИО": "full_name", "Телефон": "phone", "Email": "email", "Компания": "company",
           "Статус": "status", "Источник": "source", "Теги": "tags", "Код": "external_id",
           "Город": "address.city", "Дата рождения": "birthday"}
DOMAINS = ["mail.ru", "gmail.com", "yandex.ru", "bk.ru", "inbox.am", "yahoo.com", "outlook.com"]


def _phone(rng: random.Random, i: int) -> str:
    digits = f"9{(i * 7919) % 10**9:09d}"  # unique per row: a Russian mobile
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return rng.choice([f"+7 {a} {b}-{c}-{d}", f"8 ({a}) {b}-{c}-{d}", f"+7{digits}",
                       f"8{digits}", f"+7-{a}-{b}-{c}-{d}", f"7 {a} {b} {c} {d}"])


def write_file(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """A messy but realistic file: 2 % duplicates of earlier rows, 0.5 % broken rows."""
    rng = random.Random(seed)
    duplicates = broken = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(HEADERS)
        for i in range(rows):
            roll = rng.random()
            n = rng.randrange(max(i, 1)) if roll < 0.02 and i else i
            duplicates += n != i
            first, middle, last = rng.choice(CULTURES)(rng)
            name = " ".join(p for p in (last, first, middle) if p)
            phone = _phone(rng, n)
            email = f"{latin(first)}.{latin(last)}.{n}@{DOMAINS[n % len(DOMAINS)]}"
            if 0.02 <= roll < 0.025:
                broken += 1
                phone = "12-34"  # not a phone anywhere
            writer.writerow([name, phone, email, f"Компания {n % 1000}",
                             rng.choice(["new", "hot", "cold"]), rng.choice(["web", "call",
                                                                              "fair"]),
                             "vip,2026" if n % 10 == 0 else "", f"ext-{n}",
                             rng.choice(["Москва", "Ереван", "Hà Nội", "Bakı", "Madrid"]),
                             f"{1 + n % 28:02d}.{1 + n % 12:02d}.{1950 + n % 50}"])
    return {"duplicates": duplicates, "broken": broken}


def _rss_mb() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_peak_rss_mb": round(me, 1), "preparer_peak_rss_mb": round(children, 1)}


class StageTimer:
    """Wall time spent in named coroutines of the import (wrapped for this run only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(module, name, timed)


async def run_size(server: str, db: str, rows: int, events: bool) -> dict[str, Any]:
    url = db_url(server, db)
    os.environ["RELATA_DATABASE_URL"] = url
    from app.config import Settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.contacts import service as contacts
    from app.domain.exports import service as exports
    from app.domain.imports import runner
    from app.domain.imports import service as imports
    from app.domain.imports.schemas import ImportOptions
    from app.domain.shared.principal import system_principal
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace
    from app.heap import settle_after_startup

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"imports-{rows}.csv"
    started = time.perf_counter()
    dirt = write_file(path, rows)
    generated = time.perf_counter() - started

    await prepare_database(server, db, reset=True)
    engine = create_engine(Settings(database_url=url, db_pool_size=4))
    sessions = session_factory(engine)
    result: dict[str, Any] = {"rows": rows, "events": events, "file_mb": round(
        path.stat().st_size / 2**20, 1), "generate_s": round(generated, 1), **dirt}
    try:
        spaces = []
        for name in ("Import target", "Reference"):
            async with unit_of_work(sessions, None) as session:
                workspace, _, _ = await create_workspace(session, WorkspaceCreate(
                    name=name, owner_email=f"{uuid.uuid4().hex[:8]}@bench.example",
                    default_region="RU", timezone="Europe/Moscow"))
            spaces.append(workspace.id)
        target, reference = spaces
        principal = system_principal(target)
        async with unit_of_work(sessions, target) as session:
            job = await imports.create_import(
                session, principal, path=path, filename=path.name, size=path.stat().st_size,
                options=ImportOptions(mapping=MAPPING, silent=not events,
                                      transforms={"full_name": {"split": "last_first"}}))
        settle_after_startup()  # as the worker's on_startup does before it runs an import
        timer = StageTimer()
        timer.wrap(runner, "_insert_contacts", "write_contacts_copy_insert")
        timer.wrap(runner, "_companies_by_name", "companies_lookup_create")
        timer.wrap(contacts, "find_by_identities", "dedupe_lookup")
        timer.wrap(runner, "_record", "progress_and_rejections")
        started = time.perf_counter()
        state = await runner.run_import(sessions, target, job.id)
        import_s = time.perf_counter() - started
        async with unit_of_work(sessions, target) as session:
            done = await imports.get_import(session, principal, job.id)
        result.update({
            "state": state, "import_s": round(import_s, 1),
            "rows_per_s": round(rows / import_s), "created": done.created,
            "skipped": done.skipped, "failed": done.failed,
            "stages_s": {k: round(v, 1) for k, v in timer.seconds.items()}, **_rss_mb()})
        write_s = timer.seconds["write_contacts_copy_insert"]

        result["reference_copy_s"] = round(await reference_copy(
            url, path, job, target, reference, sessions), 1)
        result["write_stage_s"] = round(write_s, 1)
        result["write_vs_copy"] = round(result["reference_copy_s"] / write_s, 2)

        spec = exports.spec_for("contacts")
        query = exports.export_query(spec, principal, conditions=[], q=None)
        started = time.perf_counter()
        size = lines = 0
        async with sessions() as session, session.begin():
            from app.db import set_workspace

            await set_workspace(session, target)
            async for chunk in exports.stream_export(session, query, "csv"):
                size += len(chunk)
                lines += chunk.count(b"\r\n")
        export_s = time.perf_counter() - started
        result.update({"export_rows": lines - 1, "export_s": round(export_s, 1),
                       "export_rows_per_s": round((lines - 1) / export_s),
                       "export_mb": round(size / 2**20, 1), "after_export": _rss_mb()})
    finally:
        await engine.dispose()
    return result


async def reference_copy(url: str, path: Path, job: Any, target: uuid.UUID,
                         reference: uuid.UUID, sessions: Any) -> float:
    """The same normalized rows, COPYed by bare asyncpg (as the superuser, no RLS) into the
    reference workspace: the same tables and indexes. Only the COPY calls are timed; rows
    are prepared in 50,000-row slices beforehand so memory stays bounded."""
    from app.db import unit_of_work
    from app.domain.imports.files import iter_rows
    from app.domain.imports.rows import prepare_contacts
    from app.domain.imports.runner import (
        _JSON_COLUMNS,
        _STAGE_COLUMNS,
        _json,
        build_plan,
        layout_of,
    )
    from app.domain.shared.ids import new_id
    from app.domain.shared.principal import system_principal

    async with unit_of_work(sessions, target) as session:
        plan = await build_plan(session, system_principal(target), job)
    conn = await asyncpg.connect(url)
    seconds = 0.0
    seen: set[tuple[str, str]] = set()
    try:
        rows = iter_rows(path, layout_of(job))
        while True:
            batch = list(islice(rows, 50_000))
            if not batch:
                break
            contacts, identities = [], []
            for _, _, record, _ in prepare_contacts(plan, batch):
                if record is None:
                    continue
                keys = {("phone", p["e164"]) for p in record["phones"]} | {
                    ("email", e["email"]) for e in record["emails"]}
                if keys & seen:
                    continue  # the import resolved duplicates too
                seen |= keys
                cid = new_id()
                values = {**record, "workspace_id": reference, "id": cid, "version": 1,
                          "created_at": job.created_at, "updated_at": job.created_at,
                          "created_by": "bench", "updated_by": "bench", "owner_id": None,
                          "company_id": None}
                contacts.append(tuple(_json(values[c]) if c in _JSON_COLUMNS else values[c]
                                      for c in _STAGE_COLUMNS))
                identities += [(reference, k, v, cid) for k, v in keys]
            started = time.perf_counter()
            await conn.copy_records_to_table("contacts", records=contacts,
                                             columns=list(_STAGE_COLUMNS))
            await conn.copy_records_to_table("contact_identities", records=identities,
                                             columns=["workspace_id", "kind", "value",
                                                      "contact_id"])
            seconds += time.perf_counter() - started
    finally:
        await conn.close()
    return seconds


def _backend_cpu_s(pid: int) -> float:
    """A PostgreSQL backend's CPU seconds (user + system), from /proc (same machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def export_only(server: str, db: str, rounds: int) -> None:
    """Export the largest workspace of an existing database (e.g. one made by
    `bench.generate --workspaces 1`) as CSV and JSON Lines through the export service, and a
    plain `COPY contacts TO STDOUT (FORMAT csv)` of the same rows as the reference. Per row:
    wall rate, this process's CPU and the PostgreSQL backend's CPU (from /proc)."""
    url = db_url(server, db)
    os.environ["RELATA_DATABASE_URL"] = url
    from sqlalchemy import text

    from app.config import Settings
    from app.db import create_engine, session_factory, set_workspace
    from app.domain.exports import service as exports
    from app.domain.shared.principal import system_principal

    conn = await asyncpg.connect(url)
    try:
        ws, count = await conn.fetchrow("SELECT workspace_id, count(*) FROM contacts "
                                        "GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
        for _ in range(rounds):
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            size, cpu0, started = 0, _backend_cpu_s(pid), time.perf_counter()
            out = await conn.copy_from_query(
                "SELECT * FROM contacts WHERE workspace_id = $1 ORDER BY id", ws,
                output=lambda data: asyncio.sleep(0), format="csv")
            wall = time.perf_counter() - started
            print(json.dumps({"format": "reference COPY csv", "rows": count,
                              "rows_per_s": round(count / wall), "status": out,
                              "server_cpu_us_per_row": round(
                                  (_backend_cpu_s(pid) - cpu0) / count * 1e6, 2)}), flush=True)
    finally:
        await conn.close()
    engine = create_engine(Settings(database_url=url, db_pool_size=2))
    sessions = session_factory(engine)
    principal = system_principal(ws)
    spec = exports.spec_for("contacts")
    try:
        for _ in range(rounds):
            for fmt in ("csv", "jsonl"):
                query = exports.export_query(spec, principal, conditions=[], q=None, fmt=fmt)
                async with sessions() as session, session.begin():
                    await set_workspace(session, ws)
                    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    size = lines = 0
                    cpu0, own0 = _backend_cpu_s(pid), time.process_time()
                    started = time.perf_counter()
                    async for chunk in exports.stream_export(session, query, fmt):
                        size += len(chunk)
                        lines += chunk.count(b"\n")
                    wall = time.perf_counter() - started
                    rows = lines - (fmt == "csv")
                    print(json.dumps({
                        "format": fmt, "rows": rows, "mb": round(size / 2**20, 1),
                        "seconds": round(wall, 1), "rows_per_s": round(rows / wall),
                        "client_cpu_us_per_row": round(
                            (time.process_time() - own0) / rows * 1e6, 2),
                        "server_cpu_us_per_row": round(
                            (_backend_cpu_s(pid) - cpu0) / rows * 1e6, 2),
                        "peak_rss_mb": _rss_mb()}), flush=True)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--db", default="relata_bench_imports")
    parser.add_argument("--server", default=DEFAULT_SERVER_URL)
    parser.add_argument("--events", action="store_true", help="not silent: write events")
    parser.add_argument("--export-only", action="store_true",
                        help="only export the largest workspace of --db (no import)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_only:
        asyncio.run(export_only(args.server, args.db, args.rounds))
        return
    sizes = [int(s) for s in args.rows.split(",")]
    if args.one:
        print(json.dumps(asyncio.run(run_size(args.server, args.db, sizes[0], args.events)),
                         ensure_ascii=False), flush=True)
        return
    for rows in sizes:  # a process per size: each peak RSS is that size's own
        subprocess.run([sys.executable, "-m", "bench.imports", "--one", "--rows", str(rows),
                        "--db", args.db, "--server", args.server,
                        *(["--events"] if args.events else [])], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
