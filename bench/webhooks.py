"""Outbound webhooks benchmark (issue 5): fan-out deliveries per second through the real
worker, against a bare httpx loop posting the same bodies to the same receiver.

    python -m bench.webhooks                 # 300 events x 10 subscriptions = 3,000 deliveries
    python -m bench.webhooks --events 50 --subscriptions 4    # a smoke run

Target: >= 300 deliveries/s to a local receiver.

What is measured:
* Relata: `--subscriptions` subscriptions to `contact.created` point at one local receiver (a
  separate process: a minimal asyncio HTTP/1.1 server answering 204, keep-alive). A real
  `relata worker` process runs (relay, arq `handle_event` jobs, the webhook sender). The
  driver creates `--events` contacts in one transaction (as an import would) and polls
  PostgreSQL until every delivery is `delivered`. rate = deliveries / (last `delivered_at`
  - the commit), and the steady rate (deliveries - 1) / (last - first `delivered_at`).
  Every request is signed (Standard Webhooks) and DNS/SSRF-checked, each attempt is logged.
* Reference: the same number of requests with bodies of the same size, posted by one
  httpx.AsyncClient with the same concurrency (RELATA_WEBHOOK_CONCURRENCY, default 16) to the same
  receiver, no database: the ceiling of this machine's HTTP client + receiver.

Uses its own database (`--db`, dropped and re-created each run) on BENCH_PG_URL and Redis
db 7 with a queue of its own; never the test databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg

from app.config import Settings
from bench.common import DATA_DIR, DEFAULT_SERVER_URL, ROOT, db_url

DEFAULT_DB = os.environ.get("BENCH_WEBHOOKS_DB", "relata_bench_webhooks")
DEFAULT_REDIS = os.environ.get("BENCH_WEBHOOKS_REDIS_URL", "redis://127.0.0.1:6379/7")
TARGET = 300.0
# The reference posts with the worker's own concurrency (the setting, or its environment).
CONCURRENCY = int(os.environ.get("RELATA_WEBHOOK_CONCURRENCY")
                  or Settings.model_fields["webhook_concurrency"].default)


# A receiver in its own process: reads a request (headers + content-length body), answers 204.
RECEIVER = r'''
import asyncio, sys
count = 0
async def handle(reader, writer):
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            count += 1
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the receiver did not start")


async def relata_phase(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from app.config import get_settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.contacts.schemas import ContactCreate
    from app.domain.contacts.service import create_contact
    from app.domain.shared.principal import system_principal
    from app.domain.webhooks.schemas import WebhookCreate
    from app.domain.webhooks.service import create_webhook
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace

    settings = get_settings()
    engine = create_engine(settings)
    sessions = session_factory(engine)
    async with unit_of_work(sessions, None) as session:
        workspace, _, _ = await create_workspace(session, WorkspaceCreate(
            name="Bench webhooks", owner_email="owner@webhooks.example",
            default_region="US", timezone="UTC"))
    principal = system_principal(workspace.id)
    async with unit_of_work(sessions, workspace.id) as session:
        for i in range(args.subscriptions):
            await create_webhook(session, principal, WebhookCreate(
                url=f"{url}/sub/{i}", events=["contact.created"]))
    queue = f"relata-bench-webhooks:{uuid.uuid4().hex}"
    env = {**os.environ, "RELATA_REDIS_URL": args.redis, "RELATA_QUEUE_NAME": queue,
           "RELATA_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [sys.executable, "-m", "app.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = await asyncpg.connect(db_url(args.server, args.db))
    try:
        # Wait until the worker's relay listens (imports, pools, relay started), then a
        # second more for its first pass over the (empty) backlog.
        for _ in range(600):
            if await conn.fetchval(
                    "select count(*) from pg_stat_activity where datname = current_database()"
                    " and query ilike 'LISTEN%relata_events%'"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        async with unit_of_work(sessions, workspace.id) as session:
            for i in range(args.events):
                await create_contact(session, principal, ContactCreate(full_name=f"Bench {i}"))
        committed = time.time()
        total = args.events * args.subscriptions
        deadline = time.monotonic() + args.timeout
        delivered = 0
        while time.monotonic() < deadline:
            delivered = await conn.fetchval(
                "select count(*) from webhook_deliveries where status = 'delivered'")
            if delivered >= total:
                break
            await asyncio.sleep(0.1)
        row = await conn.fetchrow(
            "select min(delivered_at) as first, max(delivered_at) as last, "
            "max(attempts) as max_attempts from webhook_deliveries where status = 'delivered'")
        attempts = await conn.fetchval("select count(*) from webhook_attempts")
    finally:
        await conn.close()
        worker.terminate()
        worker.wait(20)
        await engine.dispose()
    first, last = row["first"].timestamp(), row["last"].timestamp()
    return {"deliveries": total, "delivered": delivered, "attempts_logged": attempts,
            "max_attempts": row["max_attempts"],
            "seconds_from_commit": round(last - committed, 3),
            "rate_from_commit": round(delivered / max(1e-6, last - committed), 1),
            "steady_rate": round((delivered - 1) / max(1e-6, last - first), 1),
            "first_delivery_after_commit_ms": round((first - committed) * 1000, 1)}


async def reference_phase(url: str, count: int, body_size: int) -> dict[str, Any]:
    import httpx

    body = json.dumps({"type": "contact.created", "data": {"pad": "x" * body_size}}).encode()
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        async def one(i: int) -> None:
            async with limit:
                response = await client.post(f"{url}/sub/{i % 10}", content=body,
                                             headers={"content-type": "application/json"})
                assert response.status_code == 204
        await one(0)  # connect once
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
    return {"requests": count, "seconds": round(elapsed, 3), "rate": round(count / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=DEFAULT_SERVER_URL)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    os.environ["RELATA_WEBHOOK_ALLOWED_PRIVATE_NETWORKS"] = "127.0.0.0/8"
    os.environ["RELATA_REDIS_URL"] = args.redis
    prepare_database(args)
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_port(port))
        relata = asyncio.run(relata_phase(args, url))
        # A contact.created payload is about 1.3 KB; the reference posts bodies that size.
        reference = asyncio.run(reference_phase(url, relata["deliveries"], 1200))
    finally:
        receiver.terminate()
        receiver.wait(10)
    result = {"events": args.events, "subscriptions": args.subscriptions, "relata": relata,
              "reference_httpx": reference,
              "ratio_relata_to_reference": round(relata["rate_from_commit"]
                                                 / reference["rate"], 3),
              "target_deliveries_per_s": TARGET,
              "target_met": relata["rate_from_commit"] >= TARGET}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    (DATA_DIR / "webhooks.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
