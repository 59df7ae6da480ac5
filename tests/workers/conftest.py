from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from tests.api.rest.conftest import light_password_hashing
from tests.conftest import REDIS_URL
from tests.workers.harness import Automation, automation

__all__ = ["light_password_hashing"]


@pytest.fixture
async def auto(settings: Settings) -> AsyncIterator[Automation]:
    async with automation(settings, REDIS_URL) as harness:
        yield harness
