"""The `relata` command as an operator uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx


def relata(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "RELATA_DATABASE_URL": database_url})


async def test_workspace_create_json_gives_a_working_key(database_url: str,
                                                         client: httpx.AsyncClient) -> None:
    done = relata("workspace", "create", "--name", "Salon Lily", "--owner-email",
                  "lily@example.com", "--region", "AM", "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert set(created) >= {"id", "api_key"}
    response = await client.get("/api/v1/workspaces/current",
                                headers={"Authorization": f"Bearer {created['api_key']}"})
    assert response.status_code == 200
    assert response.json()["default_region"] == "AM"


async def test_api_key_create_list_and_revoke(database_url: str,
                                              client: httpx.AsyncClient) -> None:
    ws = json.loads(relata("workspace", "create", "--name", "Auto Service", "--owner-email",
                           "cars@example.com", "--json", database_url=database_url).stdout)
    made = relata("api-key", "create", "-w", ws["id"], "--name", "sync script", "--scope",
                  "read", database_url=database_url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rlk_")
    listed = relata("api-key", "list", "-w", ws["id"], "--json", database_url=database_url)
    assert key not in listed.stdout
    keys = {k["name"]: k for k in json.loads(listed.stdout)}
    assert keys["sync script"]["scope"] == "read"
    read_only = await client.post("/api/v1/contacts", json={"full_name": "X"},
                                  headers={"Authorization": f"Bearer {key}"})
    assert read_only.status_code == 403
    revoked = relata("api-key", "revoke", "-w", ws["id"], keys["sync script"]["id"],
                     database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr + revoked.stdout
    after = json.loads(relata("api-key", "list", "-w", ws["id"], "--json",
                              database_url=database_url).stdout)
    assert next(k for k in after if k["name"] == "sync script")["revoked_at"] is not None
