"""Moving one company to another installation: `relata workspace export` / `import`.

The company is built through the public API, exported with the CLI, loaded into a second,
freshly migrated database (another installation) and as a copy beside itself, and checked
the way its people would check it: log in with the same password, find the same cards,
deals, tasks, timeline and rules."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.api.rest.conftest import PASSWORD, new_contact, new_user
from tests.api.rest.test_pipelines import new_deal
from tests.conftest import Workspace, _admin_execute


def relata(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "RELATA_DATABASE_URL": database_url})


async def _fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    url = make_url(database_url)
    conn = await asyncpg.connect(user=url.username, password=url.password,
                                 database=url.database, host=url.query.get("host") or url.host,
                                 port=url.port)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def second_installation(database_url: str) -> Iterator[str]:
    """Another, freshly migrated database on the same server."""
    name = f"relata_move_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    migrated = relata("migrate", database_url=url)
    assert migrated.returncode == 0, migrated.stderr
    yield url
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _company(ws: Workspace) -> dict[str, Any]:
    manager = await new_user(ws, "manager", "Ashot Manager")
    card = await new_contact(ws, full_name="Арам Петросян", phones=["+374 91 123456"],
                             emails=["aram@example.am"], owner_id=manager["id"])
    deal = await new_deal(ws, title="Окна для дачи", contact_ids=[card["id"]],
                          line_items=[{"name": "Window", "quantity": "3", "unit_price": "250.50"}])
    task = await ws.post("/api/v1/tasks", json={
        "title": "Call Aram", "type": "call", "contact_id": card["id"], "deal_id": deal["id"],
        "due_at": "2026-12-10T09:00:00+00:00", "assignee_id": manager["id"]})
    assert task.status_code == 201, task.text
    note = await ws.post("/api/v1/activities", json={
        "type": "note", "contact_id": card["id"], "body": "Wants white frames"})
    assert note.status_code == 201, note.text
    return {"manager": manager, "card": card, "deal": deal}


async def _check_moved(client: httpx.AsyncClient, workspace_id: str, built: dict[str, Any],
                       api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    card = await client.get(f"/api/v1/contacts/{built['card']['id']}", headers=auth)
    assert card.status_code == 200, card.text
    assert (card.json()["full_name"], card.json()["owner_id"]) == (
        "Арам Петросян", built["manager"]["id"])
    found = await client.get("/api/v1/contacts/lookup", params={"phone": "+374 (91) 12-34-56"},
                             headers=auth)
    assert found.status_code == 200 and found.json()["id"] == built["card"]["id"]
    deal = (await client.get(f"/api/v1/deals/{built['deal']['id']}", headers=auth)).json()
    assert deal["amount"] == built["deal"]["amount"] == "751.50"
    timeline = (await client.get(f"/api/v1/contacts/{built['card']['id']}/timeline",
                                 headers=auth)).json()
    kinds = {entry["kind"] for entry in timeline["data"]}
    assert {"activity", "task"} <= kinds, kinds
    tokens = await client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": built["manager"]["email"],
        "password": PASSWORD, "workspace_id": workspace_id})
    assert tokens.status_code == 200, tokens.text


def _new_key(workspace_id: str, database_url: str) -> str:
    made = relata("api-key", "create", "-w", workspace_id, "--name", "after the move",
                  database_url=database_url)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


async def test_a_workspace_moves_to_another_installation(
        ws: Workspace, database_url: str, second_installation: str, tmp_path: Path) -> None:
    built = await _company(ws)
    dump = tmp_path / "okna.jsonl.gz"
    exported = relata("workspace", "export", "-w", ws.id, str(dump), database_url=database_url)
    assert exported.returncode == 0, exported.stderr + exported.stdout
    with gzip.open(dump, "rt") as text:
        lines = [json.loads(line) for line in text]
    header, footer = lines[0], lines[-1]
    assert header["format"] == "relata-workspace" and header["workspace_id"] == ws.id
    assert "api_keys" not in header["tables"]  # credentials are issued again, not copied
    assert not any(ws.api_key in json.dumps(line) for line in lines)
    assert footer["counts"]["contacts"] == 1 and footer["counts"]["deals"] == 1

    loaded = relata("workspace", "import", str(dump), database_url=second_installation)
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    there = await _fetch(second_installation,
                         "select id, full_name, owner_id from contacts where workspace_id = $1",
                         uuid.UUID(ws.id))
    assert [(str(r["id"]), r["full_name"], str(r["owner_id"])) for r in there] == [
        (built["card"]["id"], "Арам Петросян", built["manager"]["id"])]
    events_there = await _fetch(second_installation,
                                "select count(*) from events where workspace_id = $1",
                                uuid.UUID(ws.id))
    assert events_there[0]["count"] == footer["counts"]["events"] > 0

    again = relata("workspace", "import", str(dump), database_url=second_installation)
    assert again.returncode == 1 and "already exists" in again.stdout


async def test_a_copy_beside_the_original_works_through_the_api(
        ws: Workspace, database_url: str, tmp_path: Path) -> None:
    built = await _company(ws)
    dump = tmp_path / "okna.jsonl"
    assert relata("workspace", "export", "-w", ws.id, str(dump),
                  database_url=database_url).returncode == 0
    loaded = relata("workspace", "import", str(dump), "--new-id", database_url=database_url)
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    copy_id = json.loads(loaded.stdout.strip().splitlines()[-1])["workspace_id"]
    assert copy_id != ws.id
    await _check_moved(ws.client, copy_id, built, _new_key(copy_id, database_url))
    # The original is untouched, and the copy is a separate tenant.
    original = await ws.get(f"/api/v1/contacts/{built['card']['id']}")
    assert original.status_code == 200
    await ws.patch(f"/api/v1/contacts/{built['card']['id']}", json={"first_name": "Aram"},
                   headers={"If-Match": original.headers["ETag"]})
    copy_key = _new_key(copy_id, database_url)
    copied = await ws.client.get(f"/api/v1/contacts/{built['card']['id']}",
                                 headers={"Authorization": f"Bearer {copy_key}"})
    assert copied.json()["full_name"] == "Арам Петросян"


@pytest.mark.parametrize("damage", ["truncated", "not-a-dump", "old-schema"])
async def test_a_damaged_dump_is_refused_and_nothing_is_written(
        ws: Workspace, database_url: str, second_installation: str, tmp_path: Path,
        damage: str) -> None:
    await _company(ws)
    dump = tmp_path / "okna.jsonl"
    assert relata("workspace", "export", "-w", ws.id, str(dump),
                  database_url=database_url).returncode == 0
    lines = dump.read_text().splitlines()
    if damage == "truncated":
        lines = lines[: len(lines) // 2]
    elif damage == "not-a-dump":
        lines = ['{"hello": "world"}']
    else:
        header = json.loads(lines[0])
        header["schema_revision"] = "0001"
        lines[0] = json.dumps(header)
    dump.write_text("\n".join(lines) + "\n")
    before = await _fetch(second_installation, "select count(*) from contacts")
    done = relata("workspace", "import", str(dump), database_url=second_installation)
    assert done.returncode == 1, done.stdout
    assert "refused" in done.stdout
    after = await _fetch(second_installation, "select count(*) from contacts")
    assert after[0]["count"] == before[0]["count"]
    rows = await _fetch(second_installation, "select id from workspaces where id = $1",
                        uuid.UUID(ws.id))
    assert rows == []


def test_exporting_an_unknown_workspace_fails(database_url: str, tmp_path: Path) -> None:
    done = relata("workspace", "export", "-w", str(uuid.uuid4()), str(tmp_path / "x.jsonl"),
                  database_url=database_url)
    assert done.returncode == 1 and "no workspace" in done.stdout
    assert not (tmp_path / "x.jsonl").exists()
