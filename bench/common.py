"""Shared by the generator, the reference app and the load driver: URLs and the state file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"  # git-ignored (see /.gitignore): state, API keys, raw results

DEFAULT_SERVER_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DEFAULT_DB = os.environ.get("BENCH_DB", "relata_bench")
DEFAULT_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def db_url(server_url: str, db: str) -> str:
    return f"{server_url.rstrip('/')}/{db}"


def state_path(db: str) -> Path:
    return DATA_DIR / f"{db}.json"


def load_state(db: str) -> dict[str, Any]:
    path = state_path(db)
    if not path.exists():
        raise SystemExit(f"{path} not found: run `python -m bench.generate --db {db}` first")
    return json.loads(path.read_text())


def save_state(db: str, state: dict[str, Any]) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = state_path(db)
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)  # holds API keys
