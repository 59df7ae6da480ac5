"""A started process keeps what it built out of the collector's sight (decision 0058)."""

from __future__ import annotations

import gc
from typing import Any

from app.heap import YOUNG_GENERATION_THRESHOLD


async def test_api_startup_freezes_its_heap_and_raises_the_young_threshold(app: Any) -> None:
    # The session's app ran its lifespan: what startup built is in the permanent generation.
    assert gc.get_freeze_count() > 50_000
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD

