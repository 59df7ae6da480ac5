"""Summarize py-spy raw (collapsed) stacks of the Relata server: where the CPU goes.

    python -m bench.profile_summary bench/data/profiles/get-closed.txt [--top 25]

Self time is bucketed by the package of the innermost frame (fastapi/starlette, sqlalchemy,
asyncpg, pydantic, app, ...); inclusive time is listed for the application's own functions
(app/...) so a slow path shows with its file and function. Stacks that run inside
SQLAlchemy's greenlets are sampled by py-spy as separate roots; they are counted the same way.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")
BUCKETS = [
    ("app/", "app (Relata code)"),
    ("bench/", "bench (reference)"),
    ("sqlalchemy/", "sqlalchemy"), ("sqlmodel/", "sqlalchemy"),
    ("asyncpg/", "asyncpg"),
    ("fastapi/", "fastapi/starlette"), ("starlette/", "fastapi/starlette"),
    ("pydantic/", "pydantic"), ("pydantic_core/", "pydantic"),
    ("uvicorn/", "uvicorn/http"), ("httptools/", "uvicorn/http"),
    ("redis/", "redis client"),
    ("structlog/", "logging"), ("logging/", "logging"),
    ("prometheus_client/", "prometheus"),
    ("phonenumbers/", "phonenumbers"), ("email_validator/", "email-validator"),
    ("asyncio/", "asyncio/event loop"), ("uvloop/", "asyncio/event loop"),
    ("greenlet", "sqlalchemy"),
    ("zoneinfo", "zoneinfo"), ("json/", "json"), ("orjson", "json"),
    # inspect.signature() of builtin default factories, parsed from text on every model
    # construction by pydantic's FieldInfo.get_default (see RESULTS.md)
    ("inspect.py", "inspect/tokenize/ast"), ("tokenize.py", "inspect/tokenize/ast"),
    ("ast.py", "inspect/tokenize/ast"),
]


def bucket(frame: str) -> str:
    m = FRAME.match(frame)
    path = m.group("file") if m else frame
    for needle, name in BUCKETS:
        if needle in path:
            return name
    return "other/python" if path else "native (uvloop, C extensions)"


def summarize(path: Path, top: int) -> str:
    self_by_bucket: Counter[str] = Counter()
    app_inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        self_by_bucket[bucket(frames[-1]) if frames else "native (uvloop, C extensions)"] += n
        seen = set()
        for f in frames:
            m = FRAME.match(f)
            if m and m.group("file").startswith("app/") and f.split(" (")[0] not in seen:
                key = f"{m.group('file')}:{m.group('func')}"
                if key not in seen:
                    seen.add(key)
                    app_inclusive[key] += n
    out = [f"{path}: {total} samples"]
    out.append("self time by package (innermost frame):")
    for name, n in self_by_bucket.most_common():
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    out.append(f"inclusive time of Relata functions (top {top}):")
    for name, n in app_inclusive.most_common(top):
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()
    for f in args.files:
        print(summarize(f, args.top))
        print()


if __name__ == "__main__":
    main()
