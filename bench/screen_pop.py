"""Issue 5: the screen pop — a signed `ringing` call event answered with the caller's card,
open deals, tasks and last interactions — at a fixed rate against the 1M-contact dataset,
with the reference's identity lookup (bare asyncpg + Starlette, bench/reference.py) at the
same rate in the same run as the baseline.

    .venv/bin/python -m bench.generate --db relata_bench --contacts 1000000 --workspaces 100 --reset
    .venv/bin/python -m bench.screen_pop --db relata_bench --rate 100 --duration 30

Each Relata request is a real call event: verified signature (Standard Webhooks), the card
found by the typed number (any format), one call activity written (with its events), and the
screen pop read. The baseline does the read-only half (API key, RLS transaction, identity
lookup joined to the card). Target: screen-pop p99 ≤ 15 ms at 100 calls/s."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets as pysecrets
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.integrations.signing import sign_headers
from bench.common import DATA_DIR, DEFAULT_REDIS_URL, DEFAULT_SERVER_URL, db_url, load_state
from bench.load import (
    HOST,
    Result,
    app_fingerprint,
    build_request,
    fixed_rate,
    free_port,
    proc_cpu_seconds,
    py_spy,
    sample_workload,
    start_server,
    stop_server,
    wait_for_quiet,
    wait_ready,
)

TARGET_P99_MS = 15.0


async def _integrations(port: int, tokens: dict[str, str]) -> dict[str, tuple[str, str]]:
    """One telephony integration per workspace: id and secret."""
    found: dict[str, tuple[str, str]] = {}
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as client:
        for ws, token in tokens.items():
            r = await client.post("/api/v1/integrations", json={
                "kind": "telephony", "name": f"bench {pysecrets.token_hex(3)}"},
                headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            found[ws] = (r.json()["id"], r.json()["secret"])
    return found


def _call_factory(phones: list[tuple[str, str]], integrations: dict[str, tuple[str, str]]
                  ) -> Any:
    run = pysecrets.token_hex(4)
    counter = 0

    def make(rng: random.Random) -> tuple[bytes, int]:
        nonlocal counter
        counter += 1
        ws, typed = rng.choice(phones)
        integration_id, secret = integrations[ws]
        body = orjson.dumps({"call_id": f"bench-{run}-{counter}", "direction": "in",
                             "from": typed, "to": "100", "status": "ringing",
                             "extension": "100"})
        headers = sign_headers([secret], f"msg_{run}_{counter}", int(time.time()), body)
        lines = ["POST /api/v1/integrations/telephony/calls HTTP/1.1", f"Host: {HOST}",
                 "Accept: application/json", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", f"relata-integration: {integration_id}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, 0
    return make


def _lookup_factory(phones: list[tuple[str, str]], tokens: dict[str, str]) -> Any:
    def make(rng: random.Random) -> tuple[bytes, int]:
        ws, typed = rng.choice(phones)
        query = urllib.parse.urlencode({"phone": typed})
        return build_request("GET", f"/api/v1/contacts/lookup?{query}", tokens[ws]), 0
    return make


def _summary(result: Result) -> dict[str, Any]:
    return {"server": result.server, "scenario": result.scenario, "rate": result.target_rate,
            "requests": result.requests, "errors": result.errors,
            "statuses": dict(result.statuses),
            "p50_ms": round(result.pct(50), 2), "p95_ms": round(result.pct(95), 2),
            "p99_ms": round(result.pct(99), 2), "max_ms": round(max(result.latencies_ms,
                                                                    default=float("nan")), 2)}


async def run(args: argparse.Namespace) -> int:
    state = load_state(args.db)
    workload = await sample_workload(args.server, args.db, state, args.sample, "", 1)
    phones = workload.phones
    print(f"dataset {args.db}: {state['contacts']:,} contacts in {len(state['workspaces'])} "
          f"workspaces; sampled {len(phones):,} typed phones")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATA_")}
    env.update({"RELATA_DATABASE_URL": db_url(args.server, args.db),
                "RELATA_REDIS_URL": args.redis_url,
                "RELATA_RATE_LIMIT_PER_MINUTE": str(10 ** 9),
                "RELATA_LOG_LEVEL": "WARNING", "RELATA_ENV": "production",
                "RELATA_SECRET_KEY": pysecrets.token_urlsafe(32), "PYTHONUNBUFFERED": "1"})
    run_dir = DATA_DIR / "runs" / ("screen_pop-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    run_dir.mkdir(parents=True, exist_ok=True)
    relata = start_server("relata", "app.main:app", free_port(), env, run_dir / "relata.log",
                          args.workers)
    reference = start_server("reference", "bench.reference:app", free_port(), env,
                             run_dir / "reference.log", args.workers)
    summaries: list[dict[str, Any]] = []
    try:
        await wait_ready(relata, "/readyz")
        await wait_ready(reference, "/healthz")
        integrations = await _integrations(relata.port, workload.tokens)
        pop = _call_factory(phones, integrations)
        lookup = _lookup_factory(phones, workload.tokens)
        # Warm both (caches, plans, connections), then alternate the measured phases.
        for server, make in ((relata, pop), (reference, lookup)):
            warm = Result(server.name, "warmup", "rate", target_rate=args.rate)
            await fixed_rate(server.port, make, rate=args.rate, duration=args.warmup,
                             result=warm, seed=1)
        for round_no in range(args.rounds):
            order = [(reference, lookup, "lookup (baseline)"), (relata, pop, "screen pop")]
            if round_no % 2:
                order.reverse()
            for server, make, scenario in order:
                if args.wait_idle:
                    await wait_for_quiet(args.wait_idle, 85)
                result = Result(server.name, scenario, "rate", target_rate=args.rate)
                profiler = py_spy(server, args.duration, Path(args.profile)) \
                    if args.profile and server is relata and round_no == 0 else None
                cpu0 = proc_cpu_seconds(server.proc.pid)
                await fixed_rate(server.port, make, rate=args.rate, duration=args.duration,
                                 result=result, seed=10 + round_no)
                cpu = proc_cpu_seconds(server.proc.pid) - cpu0
                if profiler:
                    profiler.wait(timeout=60)
                answered = sum(result.statuses.values())
                summary = {**_summary(result), "round": round_no,
                           "server_cpu_ms_per_request":
                               round(1000 * cpu / answered, 2) if answered else None}
                summaries.append(summary)
                print(json.dumps(summary))
    finally:
        stop_server(relata)
        stop_server(reference)
    pops = [s for s in summaries if s["server"] == "relata"]
    base = [s for s in summaries if s["server"] == "reference"]
    best_pop = min(s["p99_ms"] for s in pops)
    best_base = min(s["p99_ms"] for s in base)
    report = {"db": args.db, "contacts": state["contacts"], "rate": args.rate,
              "workers": args.workers,
              "duration_s": args.duration, "code": app_fingerprint(), "phases": summaries,
              "screen_pop_p99_ms": best_pop, "baseline_p99_ms": best_base,
              "ratio_p99": round(best_pop / best_base, 2) if best_base else None,
              "target_p99_ms": TARGET_P99_MS, "met": best_pop <= TARGET_P99_MS}
    (run_dir / "results.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "phases"}, indent=1))
    return 0 if report["met"] else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default=DEFAULT_SERVER_URL)
    p.add_argument("--db", default="relata_bench")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--rate", type=float, default=100.0, help="calls per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per measured phase")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes of each server (the same for both)")
    p.add_argument("--sample", type=int, default=5000, help="typed phones to draw from")
    p.add_argument("--profile", metavar="FILE",
                   help="record py-spy (raw collapsed stacks) of Relata in the first round")
    p.add_argument("--wait-idle", type=float, default=20.0,
                   help="wait up to this long for a quiet machine before each phase")
    raise SystemExit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
