"""Per-request DataLoaders: a list with nested relations costs a constant number of queries.

Each area registers a batch function by name (`register_loader("deal", deals_by_ids)`); a
request gets one DataLoader per name, created on first use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.shared.principal import Principal
from app.domain.shared.records import visible_by_ids

# (session, principal, ids) -> {id: visible record}
BatchLoad = Callable[[AsyncSession, Principal, list[uuid.UUID]], Awaitable[dict[uuid.UUID, Any]]]
_REGISTRY: dict[str, BatchLoad] = {}


def register_loader(name: str, load: BatchLoad) -> None:
    _REGISTRY[name] = load


def loader_for(model: Any) -> BatchLoad:
    """The batch load of a model's visible, live records by id."""
    async def load(session: AsyncSession, principal: Principal,
                   ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        return await visible_by_ids(session, model, principal, ids)
    return load


register_loader("company", loader_for(Company))
register_loader("contact", loader_for(Contact))


@dataclass
class Loaders:
    session: AsyncSession
    principal: Principal
    lock: asyncio.Lock
    _loaders: dict[str, DataLoader[uuid.UUID, Any]] = field(default_factory=dict)

    def get(self, name: str) -> DataLoader[uuid.UUID, Any]:
        loader = self._loaders.get(name)
        if loader is None:
            load = _REGISTRY[name]

            async def load_many(ids: list[uuid.UUID]) -> list[Any]:
                async with self.lock:
                    found = await load(self.session, self.principal, list(ids))
                return [found.get(i) for i in ids]

            loader = self._loaders[name] = DataLoader(load_fn=load_many)
        return loader

    @property
    def company(self) -> DataLoader[uuid.UUID, Any]:
        return self.get("company")

    def clear_all(self) -> None:
        """Forget what was loaded: after a mutation it may be changed, deleted, or expired by
        a rolled-back savepoint (reading an expired record would need I/O it cannot do)."""
        for loader in self._loaders.values():
            loader.clear_all()


def make_loaders(session: AsyncSession, principal: Principal, lock: asyncio.Lock) -> Loaders:
    """`lock` is the request's session lock: a batch may run while a root field resolves."""
    return Loaders(session=session, principal=principal, lock=lock)
