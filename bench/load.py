"""Load driver: Relata vs the bare reference, side by side, on 127.0.0.1 only.

    python -m bench.load --db relata_bench                 # every scenario, both servers
    python -m bench.load --scenarios get,lookup --duration 10
    python -m bench.load --profile bench/data/profiles     # + py-spy of Relata per scenario
    python -m bench.load --client wrk --rate 0             # closed loop driven by wrk
    python -m bench.load --report bench/data/runs/<time>/results.json   # Markdown tables
    python -m bench.load --db relata_bench_sales        # agenda, board, move (sales dataset)

Starts `uvicorn app.main:app` (1 worker) and `uvicorn bench.reference:app` (1 worker) with the
same uvicorn options against the same database, then for every scenario warms both up and
measures them one after the other (never at the same time: they would share the 2 CPUs):

* closed loop: `--concurrency` keep-alive connections, each sending its next request as soon
  as the previous answer arrives, for `--duration` seconds or `--max-requests`;
* fixed rate (`get`, `lookup`): an open-loop schedule of `--rate` requests/s; latency counts
  from the scheduled start, so a stall is not hidden (no coordinated omission);
* batch: POST /api/v1/contacts/batch of `--batch-size` new contacts per request;
* health (not in the default set): GET /healthz, no auth, no database: the framework floor;
* on a sales dataset (`bench.generate_sales`): agenda, board (closed loop, ratio targets) and
  move (closed loop, `--move-concurrency` in flight, moves/s target): see bench/load_sales.py.

Reported per scenario and server: requests/s (contacts/s for batch), p50/p90/p99/max latency,
non-2xx count, server CPU time per request (from /proc, less sensitive to a noisy machine),
and the Relata/reference ratio with the targets. The HTTP client is a small asyncio HTTP/1.1
client (uvloop) so that the load generator takes as little of the 2 CPUs as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import secrets as pysecrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.common import (
    DATA_DIR,
    DEFAULT_DB,
    DEFAULT_REDIS_URL,
    DEFAULT_SERVER_URL,
    ROOT,
    db_url,
    load_state,
)
from bench.load_sales import SALES_SCENARIOS, SALES_TARGETS, sales_workload

HOST = "127.0.0.1"
CONTACT_SCENARIOS = ("get", "list", "lookup", "batch", "health")
SCENARIOS = CONTACT_SCENARIOS + SALES_SCENARIOS
DEFAULT_SCENARIOS = ("get", "list", "lookup", "batch")  # a contacts dataset (bench.generate)
# Per scenario: minimum Relata/reference throughput ratio, p99 ceiling at the first --rate,
# minimum contacts/s.
TARGETS: dict[str, dict[str, float]] = {
    "get": {"ratio": 0.5, "p99_ms_at_rate": 20.0},
    "list": {"ratio": 0.35},
    "lookup": {"p99_ms_at_rate": 10.0},
    "batch": {"contacts_per_s": 5000.0},
    **SALES_TARGETS,  # agenda, board: ratio; move: moves/s (bench/load_sales.py)
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client.

class HttpError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        chunked = False
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if length is not None:
            body = await self.reader.readexactly(length) if length else b""
        elif chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            raise HttpError("response without length")
        if close:
            self.close()
        return status, body


def build_request(method: str, path: str, token: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Authorization: Bearer {token}",
             "Accept: application/json"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


# ------------------------------------------------------------------------------------------
# Measurements.

@dataclass
class Result:
    server: str
    scenario: str
    mode: str  # closed | rate
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    items: int = 0  # contacts created (batch)
    item_statuses: Counter[str] = field(default_factory=Counter)  # batch items by outcome
    server_cpu_s: float = 0.0
    machine_idle_pct: float = 0.0
    loadavg: float = 0.0
    target_rate: float | None = None
    client: str = "asyncio"
    wrk: dict[str, float] | None = None  # wrk's own counts and percentiles, when it drove

    @property
    def requests(self) -> int:
        return int(self.wrk["requests"]) if self.wrk else len(self.latencies_ms)

    def pct(self, p: float) -> float:
        if self.wrk:
            return self.wrk.get(f"p{p:g}", float("nan"))
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))]

    def summary(self) -> dict[str, Any]:
        ok = sum(v for k, v in self.statuses.items() if 200 <= k < 300)
        if self.wrk:
            ok = self.requests - int(self.wrk.get("non_2xx", 0))
        return {
            "server": self.server, "scenario": self.scenario, "mode": self.mode,
            "client": self.client,
            "target_rate": self.target_rate, "seconds": round(self.seconds, 2),
            "requests": self.requests, "ok": ok, "non_2xx": self.requests - ok,
            "errors": self.errors, "statuses": dict(self.statuses),
            "batch_items": dict(self.item_statuses) or None,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "ok_rps": round(ok / self.seconds, 1) if self.seconds else 0,
            "contacts_per_s": round(self.items / self.seconds, 1) if self.items else None,
            "p50_ms": round(self.pct(50), 2), "p90_ms": round(self.pct(90), 2),
            "p99_ms": round(self.pct(99), 2), "max_ms": round(self.pct(100), 2),
            "server_cpu_ms_per_req": round(1000 * self.server_cpu_s / self.requests, 3)
            if self.requests else None,
            "server_cpu_pct": round(100 * self.server_cpu_s / self.seconds, 1)
            if self.seconds else None,
            "machine_idle_pct": round(self.machine_idle_pct, 1), "loadavg1": self.loadavg,
        }


def proc_cpu_seconds(pid: int) -> float:
    """CPU of the process and its live children (uvicorn --workers N: the workers)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(proc_cpu_seconds(int(c)) for c in children)


def machine_jiffies() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts), parts[3] + parts[4]  # total, idle + iowait


class Meter:
    """CPU of the server process and idleness of the machine during one phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> Meter:
        self.cpu0, self.j0 = proc_cpu_seconds(self.pid), machine_jiffies()
        return self

    def __exit__(self, *_: Any) -> None:
        self.cpu = proc_cpu_seconds(self.pid) - self.cpu0
        j1 = machine_jiffies()
        total, idle = j1[0] - self.j0[0], j1[1] - self.j0[1]
        self.idle_pct = 100 * idle / total if total else 0.0


RequestFactory = Callable[[random.Random], tuple[bytes, int]]  # (raw request, items)


async def closed_loop(port: int, make: RequestFactory, *, concurrency: int, duration: float,
                      max_requests: int, result: Result, seed: int,
                      stagger_ms: float = 0.0) -> None:
    """`stagger_ms`: connection n opens n × that late. With `--workers` > 1 the server's
    processes share one listening socket, and the first to wake accepts every connection
    that arrived at once: opened together, most would be served by one process."""
    deadline = time.perf_counter() + duration
    sent = 0

    async def worker(n: int) -> None:
        nonlocal sent
        rng = random.Random(seed * 1000 + n)
        conn = Connection(HOST, port)
        if stagger_ms:
            await asyncio.sleep(n * stagger_ms / 1000)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                raw, items = make(rng)
                t0 = time.perf_counter()
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, HttpError):
                    result.errors += 1
                    conn.close()
                    continue
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.statuses[status] += 1
                if items and status == 200:
                    for r in orjson.loads(body)["results"]:
                        outcome = r["status"] if r["status"] != "error" else \
                            f"error {(r.get('error') or {}).get('status')}"
                        result.item_statuses[outcome] += 1
                        result.items += r["status"] == "created"
        finally:
            conn.close()

    t = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    result.seconds = time.perf_counter() - t


WRK_LUA = """
local reqs = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do
    local path, token = line:match("^(%S+) (%S*)$")
    local headers = {["Accept"] = "application/json"}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    reqs[#reqs + 1] = wrk.format("GET", path, headers)
  end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(value: str) -> float:
    for unit in ("us", "ms", "s", "m"):
        if value.endswith(unit) and value[: -len(unit)].replace(".", "").isdigit():
            return float(value[: -len(unit)]) * _UNITS[unit]
    raise ValueError(value)


async def closed_loop_wrk(port: int, make: RequestFactory, *, concurrency: int,
                          duration: float, result: Result, seed: int, workdir: Path) -> None:
    """The same closed loop with wrk (C, 1 thread): GET scenarios only. wrk reports
    percentiles itself (50/75/90/99 and max); they replace the asyncio client's."""
    import re
    import shutil

    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk not found (apt-get install -y wrk), or use --client asyncio")
    rng = random.Random(seed)
    lines = []
    for _ in range(5000):
        raw, _ = make(rng)
        head = raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        path = head[0].split(" ")[1]
        token = next((h.split(" ", 2)[2] for h in head if h.startswith("Authorization: ")), "")
        lines.append(f"{path} {token}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "wrk.lua").write_text(WRK_LUA)
    (workdir / "wrk-requests.txt").write_text("\n".join(lines) + "\n")
    proc = await asyncio.create_subprocess_exec(
        exe, "-t1", f"-c{concurrency}", f"-d{max(1, int(duration))}s", "--latency",
        "--timeout", "30s", "-s", str(workdir / "wrk.lua"), f"http://{HOST}:{port}",
        "--", str(workdir / "wrk-requests.txt"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    stats: dict[str, float] = {}
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M):
        stats[f"p{pct}"] = _wrk_ms(value)
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    if m:
        stats["p100"] = _wrk_ms(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if not m:
        raise SystemExit(f"cannot parse wrk output:\n{out}")
    stats["requests"] = float(m.group(1))
    result.seconds = _wrk_ms(m.group(2) + m.group(3)) / 1000
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    stats["non_2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result.errors = sum(int(x) for x in m.groups()) if m else 0
    result.client, result.wrk = "wrk", stats


async def fixed_rate(port: int, make: RequestFactory, *, rate: float, duration: float,
                     result: Result, seed: int, max_connections: int = 512) -> None:
    rng = random.Random(seed)
    idle: list[Connection] = []
    opened = 0
    total = int(rate * duration)
    tasks: set[asyncio.Task[None]] = set()

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal opened
        conn = idle.pop() if idle else None
        reused = conn is not None
        if conn is None:
            if opened >= max_connections:
                result.errors += 1  # dropped: every allowed connection is busy
                return
            opened += 1
            conn = Connection(HOST, port)
        try:
            try:
                status, _ = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError) as exc:
                if not reused or isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                # The server closed an idle keep-alive connection (uvicorn: 5 s): reconnect
                # once, as any HTTP client does; the latency still counts from `scheduled`.
                conn.close()
                status, _ = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, HttpError):
            result.errors += 1
            conn.close()
            opened -= 1
            return
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        result.statuses[status] += 1
        idle.append(conn)

    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        raw, _ = make(rng)
        task = asyncio.create_task(one(raw, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    result.seconds = time.perf_counter() - start
    for conn in idle:
        conn.close()


# ------------------------------------------------------------------------------------------
# Workload: ids, typed phones and new contacts drawn from the loaded data.

@dataclass
class Workload:
    tokens: dict[str, str]  # workspace id -> API key
    regions: dict[str, str]
    ids: list[tuple[str, str]]
    phones: list[tuple[str, str]]
    list_filter: str
    batch_size: int
    run_id: str = field(default_factory=lambda: pysecrets.token_hex(4))
    batch_counter: int = 0

    def health(self, rng: random.Random) -> tuple[bytes, int]:
        """No database: the framework + middleware floor (Relata /healthz, reference /healthz)."""
        return build_request("GET", "/healthz", ""), 0

    def get(self, rng: random.Random) -> tuple[bytes, int]:
        ws, cid = rng.choice(self.ids)
        return build_request("GET", f"/api/v1/contacts/{cid}", self.tokens[ws]), 0

    def list(self, rng: random.Random) -> tuple[bytes, int]:
        ws = rng.choice(self.ids)[0]  # workspaces weighted by their size
        return build_request("GET", f"/api/v1/contacts?{self.list_filter}&limit=50",
                             self.tokens[ws]), 0

    def lookup(self, rng: random.Random) -> tuple[bytes, int]:
        ws, typed = rng.choice(self.phones)
        query = urllib.parse.urlencode({"phone": typed})
        return build_request("GET", f"/api/v1/contacts/lookup?{query}", self.tokens[ws]), 0

    def batch(self, rng: random.Random) -> tuple[bytes, int]:
        from bench.generate import CULTURES, REGIONS, latin

        ws = rng.choice(list(self.tokens))
        region = self.regions[ws]
        self.batch_counter += 1
        items = []
        for i in range(self.batch_size):
            culture = region if rng.random() < 0.8 else rng.choice(REGIONS)
            first, middle, last = CULTURES[culture](rng)
            n = f"{self.run_id}{self.batch_counter:04d}{i:04d}"
            items.append({
                "first_name": first, "middle_name": middle, "last_name": last,
                "phones": [new_phone(rng, region)],
                "emails": [f"{latin(first)}.{latin(last)}.{n}@bench.example"],
                "tags": rng.sample(["vip", "lead", "b2b", "newsletter"], rng.randint(0, 2)),
                "source": rng.choice(["website", "instagram", "whatsapp"]),
            })
        body = orjson.dumps({"items": items})
        return build_request("POST", "/api/v1/contacts/batch", self.tokens[ws], body), 1


NEW_PHONE = {"RU": ("7", "9", 9), "AM": ("374", "9", 7), "VN": ("84", "9", 8),
             "ES": ("34", "6", 8), "AZ": ("994", "5", 8)}


def new_phone(rng: random.Random, region: str) -> str:
    """A random valid number as typed in the region (it may rarely belong to an existing card:
    that item comes back as a 409 and is not counted as created)."""
    import phonenumbers

    from bench.generate import typed_phone

    cc, lead, digits = NEW_PHONE[region]
    while True:
        if region == "AZ":
            national = rng.choice(["50", "51", "55", "70", "77", "99"]) + \
                str(rng.randrange(10 ** 7)).zfill(7)
        elif region == "AM":
            national = rng.choice(["91", "93", "94", "95", "96", "98", "99"]) + \
                str(rng.randrange(10 ** 6)).zfill(6)
        elif region == "VN":
            national = rng.choice(["90", "91", "93", "94", "96", "97", "98"]) + \
                str(rng.randrange(10 ** 7)).zfill(7)
        else:
            national = lead + str(rng.randrange(10 ** digits)).zfill(digits)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+{cc}{national}", None)):
            return typed_phone(rng, cc, national, region, region)


async def sample_workload(server: str, db: str, state: dict[str, Any], n: int,
                          list_filter: str, batch_size: int) -> Workload:
    conn = await asyncpg.connect(db_url(server, db))
    try:
        total = await conn.fetchval("select count(*) from contacts")
        fraction = min(100.0, 100.0 * n * 1.3 / max(total, 1))
        ids = await conn.fetch(
            f"select workspace_id::text ws, id::text id from contacts "
            f"tablesample bernoulli ({fraction}) repeatable (7) where deleted_at is null "
            f"limit {n}")
        phones = await conn.fetch(
            f"select workspace_id::text ws, phones->0->>'original' typed from contacts "
            f"tablesample bernoulli ({fraction}) repeatable (8) "
            f"where deleted_at is null and jsonb_array_length(phones) > 0 limit {n}")
    finally:
        await conn.close()
    tokens = {w["id"]: w["api_key"] for w in state["workspaces"]}
    regions = {w["id"]: w["region"] for w in state["workspaces"]}
    return Workload(tokens=tokens, regions=regions,
                    ids=[(r["ws"], r["id"]) for r in ids if r["ws"] in tokens],
                    phones=[(r["ws"], r["typed"]) for r in phones if r["ws"] in tokens],
                    list_filter=list_filter, batch_size=batch_size)


# ------------------------------------------------------------------------------------------
# Servers.

@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_server(name: str, target: str, port: int, env: dict[str, str], log: Path,
                 workers: int = 1) -> Server:
    missing = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is None]
    if missing:  # uvicorn would exit at start with only a traceback in the server's log
        raise SystemExit(f"the bench servers need {' and '.join(missing)}: "
                         f"{sys.executable} -m pip install {' '.join(missing)}")
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--no-access-log",
           "--loop", "uvloop", "--http", "httptools"]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return Server(name, port, proc)


async def wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.proc.returncode}")
        try:
            conn = Connection(HOST, server.port)
            status, body = await conn.request(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise SystemExit(f"{server.name} not ready after {timeout}s")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def app_fingerprint() -> dict[str, str]:
    """Which Relata was measured: the commit plus a digest of uncommitted changes in app/."""
    import hashlib

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    diff = git("diff", "HEAD", "--", "app", "alembic")
    return {"commit": git("rev-parse", "HEAD").strip(),
            "uncommitted_app_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12]
            if diff else "clean"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------
# The run.

async def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to `max_wait` s) until the machine was >= `threshold` % idle for a second:
    other work on a shared 2-CPU box otherwise decides the figures. Returns that idle %."""
    deadline = time.monotonic() + max_wait
    while True:
        j0 = machine_jiffies()
        await asyncio.sleep(1.0)
        j1 = machine_jiffies()
        idle = 100 * (j1[1] - j0[1]) / max(1, j1[0] - j0[0])
        if idle >= threshold or time.monotonic() >= deadline:
            return idle


async def measure(server: Server, scenario: str, mode: str, make: RequestFactory,
                  args: argparse.Namespace, seed: int, rate: float | None = None) -> Result:
    if args.wait_idle > 0:
        await wait_for_quiet(args.wait_idle, args.idle_threshold)
    result = Result(server.name, scenario, mode, target_rate=rate)
    result.loadavg = round(os.getloadavg()[0], 2)
    if scenario == "batch" and mode != "rate":
        make = prepared(make, args.max_batches, seed)
    with Meter(server.pid) as meter:
        if mode == "rate":
            assert rate is not None
            await fixed_rate(server.port, make, rate=rate, duration=args.rate_duration,
                             result=result, seed=seed)
        elif args.client == "wrk" and scenario != "batch":
            await closed_loop_wrk(server.port, make, concurrency=args.concurrency,
                                  duration=args.duration, result=result, seed=seed,
                                  workdir=DATA_DIR / "wrk")
        else:
            concurrency = {"batch": args.batch_concurrency, "move": args.move_concurrency
                           }.get(scenario, args.concurrency)
            await closed_loop(server.port, make, concurrency=concurrency,
                              duration=args.duration, max_requests=args.max_requests
                              if scenario != "batch" else args.max_batches,
                              result=result, seed=seed, stagger_ms=args.connect_stagger_ms)
    result.server_cpu_s, result.machine_idle_pct = meter.cpu, meter.idle_pct
    return result


def prepared(make: RequestFactory, count: int, seed: int) -> RequestFactory:
    """`count` requests built before the phase starts: a batch of 1,000 realistic contacts
    costs the driver ~0.1 s of CPU to build, which would otherwise be taken from the two
    cores the servers are measured on while they run."""
    # New phones each run: the same seed would draw the numbers an earlier run stored (409).
    rng = random.Random(f"{seed}:{time.time_ns()}")
    ready = [make(rng) for _ in range(count)]
    ready.reverse()

    def next_one(rng: random.Random) -> tuple[bytes, int]:
        return ready.pop() if ready else make(rng)

    return next_one


def py_spy(server: Server, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        print("  (py-spy not installed in the venv: pip install py-spy)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(exe), "record", "-p", str(server.pid), "-d",
                             str(max(1, int(seconds))), "-r", "250", "--gil", "--subprocesses",
                             "-f", "raw", "-o",
                             str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fmt_row(s: dict[str, Any]) -> str:
    extra = f"{s['contacts_per_s'] or 0:>9,.0f} c/s" if s["batch_items"] else " " * 13
    rate = f"@{s['target_rate']:.0f}/s" if s["target_rate"] else "closed"
    return (f"  {s['scenario']:<7} {s['server']:<9} {rate:<8} {s['rps']:>8,.1f} req/s {extra} "
            f"p50 {s['p50_ms']:>7.2f}  p90 {s['p90_ms']:>7.2f}  p99 {s['p99_ms']:>7.2f}  "
            f"max {s['max_ms']:>8.2f} ms  non2xx {s['non_2xx']:>4} err {s['errors']:>3}  "
            f"cpu {s['server_cpu_ms_per_req'] or 0:>7.3f} ms/req  "
            f"idle {s['machine_idle_pct']:>4.1f}%"
            + (f"  items {s['batch_items']}" if s["batch_items"] else ""))


def verdicts(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def pick(scenario: str, server: str, mode: str) -> dict[str, Any] | None:
        rows = [s for s in summaries if (s["scenario"], s["server"], s["mode"]) ==
                (scenario, server, mode)]
        if mode == "rate" and rows:
            rows = [s for s in rows if s["target_rate"] == rows[0]["target_rate"]]
        if not rows:
            return None
        key = "contacts_per_s" if scenario == "batch" else "rps"
        return {**rows[0], key: statistics.median(r[key] or 0 for r in rows),
                "p99_ms": statistics.median(r["p99_ms"] for r in rows)}

    out = []
    for scenario, target in TARGETS.items():
        rel, ref = pick(scenario, "relata", "closed"), pick(scenario, "reference", "closed")
        if "ratio" in target and rel and ref:
            ratio = rel["rps"] / ref["rps"] if ref["rps"] else 0
            out.append({"scenario": scenario, "check": f"throughput ratio >= {target['ratio']}",
                        "value": round(ratio, 3), "met": ratio >= target["ratio"],
                        "relata_rps": rel["rps"], "reference_rps": ref["rps"]})
        if rel and ref and scenario not in ("batch", "move"):
            rel_cpu = statistics.median(s["server_cpu_ms_per_req"] or 0 for s in summaries if (
                s["scenario"], s["server"], s["mode"]) == (scenario, "relata", "closed"))
            ref_cpu = statistics.median(s["server_cpu_ms_per_req"] or 0 for s in summaries if (
                s["scenario"], s["server"], s["mode"]) == (scenario, "reference", "closed"))
            if rel_cpu:
                out.append({"scenario": scenario,
                            "check": "CPU/request ratio ref/Relata (info)",
                            "value": round(ref_cpu / rel_cpu, 3), "met": None,
                            "relata_cpu_ms": rel_cpu, "reference_cpu_ms": ref_cpu})
        if "p99_ms_at_rate" in target:
            r = pick(scenario, "relata", "rate")
            if r:
                out.append({"scenario": scenario,
                            "check": f"p99 <= {target['p99_ms_at_rate']} ms at "
                                     f"{r['target_rate']:.0f} req/s",
                            "value": r["p99_ms"], "met": r["p99_ms"] <= target["p99_ms_at_rate"]
                            and r["non_2xx"] == 0 and r["errors"] == 0})
        if "moves_per_s" in target and rel:
            moves = statistics.median(s.get("ok_rps", s["rps"]) for s in summaries if (
                s["scenario"], s["server"], s["mode"]) == (scenario, "relata", "closed"))
            out.append({"scenario": scenario,
                        "check": f"moves/s >= {target['moves_per_s']:.0f}",
                        "value": moves, "met": moves >= target["moves_per_s"],
                        "reference_moves_per_s": ref["rps"] if ref else None})
            if ref and ref["rps"]:
                out.append({"scenario": scenario, "check": "moves/s ratio (info)",
                            "value": round(moves / ref["rps"], 3), "met": None})
        if "contacts_per_s" in target and rel:
            out.append({"scenario": scenario,
                        "check": f"contacts/s >= {target['contacts_per_s']:.0f}",
                        "value": rel["contacts_per_s"],
                        "met": (rel["contacts_per_s"] or 0) >= target["contacts_per_s"],
                        "reference_contacts_per_s": ref["contacts_per_s"] if ref else None})
        if scenario == "batch" and rel and ref and ref["contacts_per_s"]:
            out.append({"scenario": scenario, "check": "contacts/s ratio (info)",
                        "value": round((rel["contacts_per_s"] or 0) / ref["contacts_per_s"], 3),
                        "met": None})
    return out


async def run(args: argparse.Namespace) -> int:
    state = load_state(args.db)
    sales_data = state.get("kind") == "sales"
    scenarios = [s for s in (args.scenarios or ",".join(
        SALES_SCENARIOS if sales_data else DEFAULT_SCENARIOS)).split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    if sales_data:
        print(f"dataset {args.db}: {state['deals']:,} deals, {state['tasks']:,} tasks, "
              f"{len(state['users'])} users in one workspace ({state.get('database_size', '?')})")
    else:
        print(f"dataset {args.db}: {state['contacts']:,} contacts in "
              f"{len(state['workspaces'])} workspaces ({state.get('database_size', '?')})")
    workload: Any = None
    if any(s in CONTACT_SCENARIOS for s in scenarios):
        workload = await sample_workload(args.server, args.db, state, args.sample,
                                         args.list_filter, args.batch_size)
        print(f"sampled {len(workload.ids):,} ids and {len(workload.phones):,} typed phones")
    secret_key = pysecrets.token_urlsafe(32)
    sales: Any = None
    if any(s in SALES_SCENARIOS for s in scenarios):
        sales = await sales_workload(args.server, args.db, state, secret_key,
                                     agenda_query=args.agenda_query,
                                     board_query=args.board_query, board_as=args.board_as,
                                     move_as=args.move_as)
        print(f"{len(sales.agent_tokens)} agents' tokens, {len(sales.deals):,} open deals to "
              f"move over {len(sales.open_stages)} open stages")
    run_dir = DATA_DIR / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATA_")}
    env.update({
        "RELATA_DATABASE_URL": db_url(args.server, args.db),
        "RELATA_REDIS_URL": args.redis_url,
        "RELATA_RATE_LIMIT_PER_MINUTE": str(10 ** 9),  # the bench must not be rate limited
        "RELATA_LOG_LEVEL": args.relata_log_level,
        "RELATA_ENV": "production",
        "RELATA_SECRET_KEY": secret_key,  # the reference reads it too (user tokens)
        "PYTHONUNBUFFERED": "1",
    })
    servers = {
        "relata": start_server("relata", "app.main:app", args.relata_port or free_port(), env,
                               run_dir / "relata.log", args.workers),
        "reference": start_server("reference", "bench.reference:app",
                                  args.reference_port or free_port(), env,
                                  run_dir / "reference.log", args.workers),
    }
    summaries: list[dict[str, Any]] = []
    fingerprint = app_fingerprint()
    try:
        await wait_ready(servers["relata"], "/readyz")
        await wait_ready(servers["reference"], "/healthz")
        print(f"relata code: {fingerprint}")
        print(f"relata pid {servers['relata'].pid} port {servers['relata'].port}, reference pid "
              f"{servers['reference'].pid} port {servers['reference'].port}; "
              f"concurrency {args.concurrency}, {args.duration}s per phase, "
              f"{args.rounds} round(s)")
        seed = 1
        for scenario in scenarios:
            make: RequestFactory = getattr(sales if scenario in SALES_SCENARIOS else workload,
                                           scenario)
            if not args.no_warmup:
                for server in servers.values():
                    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup,
                                                 "max_batches": 2, "wait_idle": 0})
                    await measure(server, scenario, "closed", make, warm, seed)
            modes: list[tuple[str, float | None]] = [("closed", None)]
            if scenario in ("get", "lookup"):
                modes += [("rate", float(r)) for r in args.rate.split(",") if float(r) > 0]
            for mode, rate in modes:
                for round_no in range(args.rounds):
                    order = ["reference", "relata"] if round_no % 2 == 0 else \
                        ["relata", "reference"]
                    for name in order:
                        seed += 1
                        profiler = None
                        phase_args = args
                        if args.profile and name == "relata" and round_no == 0:
                            # Wait for a quiet machine first, so that py-spy records the
                            # phase and not the wait.
                            if args.wait_idle > 0:
                                await wait_for_quiet(args.wait_idle, args.idle_threshold)
                                phase_args = argparse.Namespace(**{**vars(args),
                                                                   "wait_idle": 0})
                            tag = mode if rate is None else f"{mode}{rate:.0f}"
                            profiler = py_spy(servers[name], args.duration if mode == "closed"
                                              else args.rate_duration,
                                              Path(args.profile) / f"{scenario}-{tag}.txt")
                        result = await measure(servers[name], scenario, mode, make, phase_args,
                                               seed, rate)
                        if profiler:
                            profiler.wait(timeout=60)
                        summary = result.summary()
                        summaries.append(summary)
                        print(fmt_row(summary), flush=True)
    finally:
        for server in servers.values():
            stop_server(server)
    checks = verdicts(summaries)
    print("\ntargets:")
    for c in checks:
        mark = {True: "MET   ", False: "MISSED", None: "info  "}[c["met"]]
        print(f"  {mark} {c['scenario']:<7} {c['check']:<34} {c['value']}")
    report = {"dataset": {k: state[k] for k in ("db", "contacts", "identities",
                                                  "database_size") if k in state},
              "workspaces": len(state["workspaces"]),
              "args": {k: v for k, v in vars(args).items()},
              "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()},
              "relata_code": fingerprint,
              "results": summaries, "targets": checks,
              "finished_at": datetime.now(UTC).isoformat()}
    (run_dir / "results.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"\nraw results: {run_dir / 'results.json'}")
    return 0


def markdown(report: dict[str, Any]) -> str:
    """The results of a run as Markdown tables (for RESULTS.md)."""
    lines = ["| scenario | server | mode | req/s | contacts/s | p50 ms | p90 ms | p99 ms | max ms "
             "| non-2xx/err | server CPU ms/req | machine idle % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["results"]:
        mode = f"{s['target_rate']:.0f}/s" if s["target_rate"] else "closed"
        lines.append(
            f"| {s['scenario']} | {s['server']} | {mode} | {s['rps']:,.1f} | "
            f"{s['contacts_per_s'] or '':} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | "
            f"{s['p99_ms']:.2f} | {s['max_ms']:.2f} | {s['non_2xx']}/{s['errors']} | "
            f"{s['server_cpu_ms_per_req']} | {s['machine_idle_pct']} |")
    lines += ["", "| scenario | target | measured | met |", "|---|---|---:|---|"]
    for c in report["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[c["met"]]
        lines.append(f"| {c['scenario']} | {c['check']} | {c['value']} | {met} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=DEFAULT_SERVER_URL,
                   help="PostgreSQL server URL without a database (env BENCH_PG_URL)")
    p.add_argument("--db", default=DEFAULT_DB, help="bench database (env BENCH_DB)")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                   help="Redis for Relata's rate limiter (env BENCH_REDIS_URL)")
    p.add_argument("--scenarios", default=None,
                   help="comma-separated, from " + ", ".join(SCENARIOS) + "; default: "
                        + ",".join(DEFAULT_SCENARIOS) + " on a contacts dataset, "
                        + ",".join(SALES_SCENARIOS) + " on a sales one (health = "
                        "GET /healthz, no database: the framework floor; not in the default)")
    p.add_argument("--duration", type=float, default=15.0,
                   help="seconds per closed-loop phase")
    p.add_argument("--max-requests", type=int, default=200_000,
                   help="cap on requests per closed-loop phase")
    p.add_argument("--concurrency", type=int, default=16, help="connections (closed loop)")
    p.add_argument("--client", choices=("asyncio", "wrk"), default="asyncio",
                   help="closed-loop GET phases: the built-in asyncio client, or wrk (C, "
                        "apt-get install -y wrk) as a cross-check; fixed-rate and batch "
                        "phases always use the built-in client")
    p.add_argument("--rate", default="300",
                   help="fixed request rate(s) for get/lookup latency, comma-separated; the "
                        "first is the one the targets use (0 to skip)")
    p.add_argument("--rate-duration", type=float, default=20.0,
                   help="seconds per fixed-rate phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure each phase this many times per server (alternating order)")
    p.add_argument("--list-filter", default="status=hot",
                   help="query string of the filtered list scenario (limit=50 is added)")
    p.add_argument("--batch-size", type=int, default=1000, help="contacts per batch request")
    p.add_argument("--batch-concurrency", type=int, default=2)
    p.add_argument("--max-batches", type=int, default=40,
                   help="cap on batch requests per phase (each adds --batch-size contacts)")
    p.add_argument("--sample", type=int, default=20_000, help="ids and phones to sample")
    p.add_argument("--agenda-query", default="bucket=today&limit=50",
                   help="query string of the agenda scenario (sent with a random agent's token)")
    p.add_argument("--board-as", choices=("key", "manager", "agent"), default="key",
                   help="who looks at the board: the owner's API key (every deal), a manager "
                        "(their team's deals) or an agent (own deals)")
    p.add_argument("--board-query", default="", help="query string of the board scenario")
    p.add_argument("--move-as", choices=("owner", "key"), default="owner",
                   help="who moves a deal: its owner (user token) or the API key")
    p.add_argument("--move-concurrency", type=int, default=16,
                   help="moves in flight (closed loop)")
    p.add_argument("--relata-log-level", default="INFO",
                   help="RELATA_LOG_LEVEL (INFO logs one JSON line per request, as deployed)")
    p.add_argument("--connect-stagger-ms", type=float, default=0.0,
                   help="closed loops: open connection n n × this late, so that every worker "
                        "of a --workers N server gets its share (see closed_loop)")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes of each server (the ratios are measured with "
                        "1; more shows what a deployment's absolute throughput could be)")
    p.add_argument("--relata-port", type=int, default=0)
    p.add_argument("--reference-port", type=int, default=0)
    p.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                   help="before each phase wait up to this long for the machine to be idle "
                        "(0: don't wait)")
    p.add_argument("--idle-threshold", type=float, default=85.0, metavar="PCT",
                   help="machine idle %% that counts as quiet for --wait-idle")
    p.add_argument("--profile", metavar="DIR",
                   help="record py-spy (raw collapsed stacks) of Relata in each first round")
    p.add_argument("--report", metavar="RESULTS_JSON",
                   help="only print the Markdown tables of an earlier run's results.json")
    args = p.parse_args()
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt  # so the servers are stopped in run()'s finally

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background
    try:
        import uvloop
    except ImportError:
        raise SystemExit(asyncio.run(run(args))) from None
    raise SystemExit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
