"""Lookups a batch would otherwise repeat for every item, kept for one batch only.

Inside `batch_lookups(session)`, custom field definitions and the user and company ids that
exist are read once and remembered; outside it nothing is cached, so a single write always
sees the current definitions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "batch_lookups"


@dataclass
class BatchLookups:
    definitions: dict[str, list[Any]] = field(default_factory=dict)
    user_ids: set[uuid.UUID] = field(default_factory=set)
    company_ids: set[uuid.UUID] = field(default_factory=set)


def lookups(session: AsyncSession) -> BatchLookups | None:
    return session.info.get(_KEY)


@asynccontextmanager
async def batch_lookups(session: AsyncSession) -> AsyncIterator[BatchLookups]:
    cache = BatchLookups()
    session.info[_KEY] = cache
    try:
        yield cache
    finally:
        session.info.pop(_KEY, None)
