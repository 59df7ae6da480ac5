"""`relata import`, `relata export`, `relata backup` and `relata restore` as a script runs
them: against a real server over HTTP, with a real worker job and real pg_dump."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import create_engine, session_factory
from app.workers.imports import run_queued_imports
from tests.conftest import REDIS_URL, make_workspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "RELATA_DATABASE_URL": database_url, "RELATA_REDIS_URL": REDIS_URL,
           "RELATA_ENV": "test", "RELATA_RATE_LIMIT_PER_MINUTE": "100000",
           "RELATA_SIGNUPS_PER_MINUTE": "100000",
           "RELATA_IMPORT_DIR": str(tmp_path_factory.mktemp("imports"))}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port",
                             str(port), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
async def api_key(client: httpx.AsyncClient) -> str:
    return (await make_workspace(client)).api_key


async def relata(*args: str, env: dict[str, str], settings: Settings | None = None
                 ) -> tuple[int, str, str]:
    """Run the CLI; with `settings`, run the worker's import job meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    worker = None
    if settings is not None:
        async def work() -> None:
            engine = create_engine(settings)
            try:
                while True:
                    await run_queued_imports({"sessions": session_factory(engine)})
                    await asyncio.sleep(0.2)
            finally:
                await engine.dispose()
        worker = asyncio.create_task(work())
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if worker is not None:
            worker.cancel()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_import_then_export_over_http(server: str, api_key: str, settings: Settings,
                                            tmp_path: Path) -> None:
    source = tmp_path / "клиенты.csv"
    source.write_bytes(("ФИО;Телефон;Почта\n"
                        "Иванов Иван;8 912 345-67-01;ivan@example.ru\n"
                        "Armen Petrosyan;+374 91 123456;armen@example.am\n"
                        "Broken;12;\n").encode("utf-8-sig"))
    env = {"RELATA_API_URL": server, "RELATA_API_KEY": api_key}
    code, _, err = await relata("import", str(source), "--object", "contacts",
                                  "--map", "Телефон=phone", "--map", "ФИО=full_name",
                                  "--map", "Почта=email", "--split-name", "last_first",
                                  env=env, settings=settings)
    assert code == 2, err  # done, with a rejected row
    assert "created" in err and "phone '12'" in err
    rejected = tmp_path / "клиенты.rejected.csv"
    rows = list(csv.DictReader(io.StringIO(rejected.read_text("utf-8-sig"), newline="")))
    assert [(r["ФИО"], r["row"]) for r in rows] == [("Broken", "4")]

    exported = tmp_path / "contacts.csv"
    code, _, err = await relata("export", "--object", "contacts", "--format", "csv",
                                "--filter", "last_name=Иванов", "-o", str(exported), env=env)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(exported.read_text("utf-8"), newline="")))
    assert [(r["first_name"], r["phones"]) for r in rows] == [("Иван", "'+79123456701")]

    code, _, err = await relata("export", "--object", "deals", "--filter", "nonsense=1",
                                env=env)
    assert code == 1 and "unknown filter field" in err


async def test_a_bad_key_or_mapping_exits_non_zero(server: str, api_key: str,
                                                   tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_text("name\nA\n")
    code, _, err = await relata("import", str(source), env={"RELATA_API_URL": server,
                                                            "RELATA_API_KEY": "rlk_nope"})
    assert code == 1 and "401" in err
    code, _, err = await relata("import", str(source), "--map", "name=shoe_size",
                                env={"RELATA_API_URL": server, "RELATA_API_KEY": api_key})
    assert code == 1 and "shoe_size" in err


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    url = make_url(database_url)
    name = f"relata_restore_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=url.query.get("host") or url.host, port=url.port,
                                  user=url.username,
                                  database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_backup_and_restore_round_trip(database_url: str, empty_database: str,
                                             tmp_path: Path, client: httpx.AsyncClient
                                             ) -> None:
    ws = await make_workspace(client)
    made = await ws.post("/api/v1/contacts", json={"full_name": "Backed up"})
    assert made.status_code == 201
    dump = tmp_path / "relata.dump"
    code, _, err = await relata("backup", str(dump), env={"RELATA_DATABASE_URL": database_url})
    assert code == 0, err
    assert dump.stat().st_size > 0 and "entries" in err
    code, _, err = await relata("restore", str(dump),
                                env={"RELATA_DATABASE_URL": empty_database})
    assert code == 0, err
    url = make_url(empty_database)
    conn = await asyncpg.connect(host=url.query.get("host") or url.host, port=url.port,
                                 user=url.username,
                                 database=url.database)
    try:
        names = await conn.fetch("SELECT full_name FROM contacts WHERE id = $1",
                                 uuid.UUID(made.json()["id"]))
        forced = await conn.fetchval("SELECT relforcerowsecurity FROM pg_class "
                                     "WHERE relname = 'contacts'")
    finally:
        await conn.close()
    assert [r["full_name"] for r in names] == ["Backed up"]
    assert forced  # tenancy survives the round trip
