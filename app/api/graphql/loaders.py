"""Per-request DataLoaders: a list with nested relations costs a constant number of queries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.domain.companies.models import Company
from app.domain.companies.service import companies_by_ids
from app.domain.shared.principal import Principal


@dataclass
class Loaders:
    company: DataLoader[uuid.UUID, Company | None]

    def clear_all(self) -> None:
        """Forget what was loaded: after a mutation it may be changed, deleted, or expired by
        a rolled-back savepoint (reading an expired record would need I/O it cannot do)."""
        self.company.clear_all()


def make_loaders(session: AsyncSession, principal: Principal, lock: asyncio.Lock) -> Loaders:
    """`lock` is the request's session lock: a batch may run while a root field resolves."""

    async def load_companies(ids: list[uuid.UUID]) -> list[Company | None]:
        async with lock:
            found = await companies_by_ids(session, principal, list(ids))
        return [found.get(i) for i in ids]

    return Loaders(company=DataLoader(load_fn=load_companies))
