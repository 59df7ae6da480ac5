"""GraphQL context: built with the same FastAPI dependencies as REST (session, principal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from app.api.deps import workspace_context
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
    # WebSocket (subscriptions): the `connection_init` payload; the principal is resolved from
    # it when the connection opens, and each subscription opens its own short transactions.
    connection_params: dict[str, object] | None = None

    def __post_init__(self) -> None:
        super().__init__()


def bearer_of(connection: HTTPConnection) -> HTTPAuthorizationCredentials | None:
    """The Authorization header, as HTTPBearer reads it, on a request or a WebSocket."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if not scheme or not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())


def is_ide_page_request(request: Request) -> bool:
    """The browser asking for the GraphiQL page (strawberry's own test for it)."""
    accept = request.headers.get("accept", "")
    return (request.method == "GET" and request.query_params.get("query") is None
            and ("text/html" in accept or "*/*" in accept))


_workspace = asynccontextmanager(workspace_context)


async def graphql_context(connection: HTTPConnection) -> AsyncIterator[GraphQLContext]:
    """REST's unit of work: authenticate, one transaction in the caller's workspace for the
    whole request. The GraphiQL page itself reads nothing and is served without a token (a
    browser cannot send one to load it); every query it sends is authenticated.

    A WebSocket holds no transaction: it may stay open for hours. It authenticates in
    `connection_init` (see schema.RelataGraphQLRouter.on_ws_connect)."""
    if isinstance(connection, WebSocket):
        yield GraphQLContext()
        return
    request = cast(Request, connection)
    credentials = bearer_of(request)
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
