"""GraphQL context: built with the same FastAPI dependencies as REST (session, principal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from app.api.deps import Ctx
from app.api.graphql.loaders import Loaders, make_loaders
from app.domain.shared.principal import Principal
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass
class GraphQLContext(BaseContext):
    session: AsyncSession = field(default=None)  # type: ignore[assignment]
    principal: Principal = field(default=None)  # type: ignore[assignment]
    loaders: Loaders = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__init__()


async def get_context(ctx: Ctx) -> Any:
    return GraphQLContext(session=ctx.session, principal=ctx.principal,
                          loaders=make_loaders(ctx.session, ctx.principal))
