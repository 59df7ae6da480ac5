"""The garbage collector of a long-running Relata process (decision 0058)."""

from __future__ import annotations

import gc

# Allocations (minus deallocations) before a young-generation collection; CPython's default
# is 700. A request allocates thousands of short-lived objects, nearly all freed by reference
# counting, so the default ran a young collection several times per request.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Once a process has built what it keeps for its lifetime (modules, routes, schemas,
    the engine), collect, then freeze the survivors into the permanent generation, which
    the collector never scans again, and collect the young generation less often.
    Without the freeze, each full collection walked the ~270,000 objects startup leaves and
    took ~150 ms of CPU in the middle of some request."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
