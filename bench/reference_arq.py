"""The baseline of bench/automations.py: a bare arq worker executing no-op jobs.

    python -m bench.reference_arq --queue Q --redis redis://127.0.0.1:6379/7 [--poll-delay 0.5]

One function, `noop`, that returns the wall-clock time at which it ran (arq stores it as the
job's result, which is how the driver reads when each job executed). No database, no
Relata import: this is what an enqueue/execute round trip through arq and Redis costs on
this machine. `--poll-delay` and `--max-jobs` default to what Relata's `WorkerSettings`
uses (arq's defaults: 0.5 s and Relata's 20), so the ratio isolates Relata's own work."""

from __future__ import annotations

import argparse
import time
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func


async def noop(ctx: dict[str, Any], *args: Any) -> float:
    return time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--poll-delay", type=float, default=0.5)
    parser.add_argument("--max-jobs", type=int, default=20)
    args = parser.parse_args()
    worker = Worker(functions=[func(noop, name="noop")],
                    redis_settings=RedisSettings.from_dsn(args.redis), queue_name=args.queue,
                    poll_delay=args.poll_delay, max_jobs=args.max_jobs, handle_signals=True)
    worker.run()


if __name__ == "__main__":
    main()
