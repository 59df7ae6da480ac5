"""GraphQL context: built with the same FastAPI dependencies as REST (session, principal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.api.deps import bearer, workspace_context
from app.api.graphql.loaders import Loaders, make_loaders
from app.domain.shared.principal import Principal


@dataclass
class GraphQLContext(BaseContext):
    session: AsyncSession = field(default=None)  # type: ignore[assignment]
    principal: Principal = field(default=None)  # type: ignore[assignment]
    loaders: Loaders = field(default=None)  # type: ignore[assignment]
    # GraphQL resolves sibling fields concurrently, but an AsyncSession must not be used by
    # two tasks at once: root resolvers and DataLoader batches take turns on it.
    db_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        super().__init__()


def is_ide_page_request(request: Request) -> bool:
    """The browser asking for the GraphiQL page (strawberry's own test for it)."""
    accept = request.headers.get("accept", "")
    return (request.method == "GET" and request.query_params.get("query") is None
            and ("text/html" in accept or "*/*" in accept))


_workspace = asynccontextmanager(workspace_context)


async def graphql_context(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> AsyncIterator[GraphQLContext]:
    """REST's unit of work: authenticate, one transaction in the caller's workspace for the
    whole request. The GraphiQL page itself reads nothing and is served without a token (a
    browser cannot send one to load it); every query it sends is authenticated."""
    if is_ide_page_request(request):
        yield GraphQLContext()
        return
    async with _workspace(request, credentials) as ctx:
        lock = asyncio.Lock()
        yield GraphQLContext(session=ctx.session, principal=ctx.principal,
                             loaders=make_loaders(ctx.session, ctx.principal, lock),
                             db_lock=lock)


async def get_context(
    # scope="function", as REST's Ctx: the transaction ends before the response is sent.
    context: Annotated[GraphQLContext, Depends(graphql_context, scope="function")],
) -> GraphQLContext:
    return context
