"""Annotated dependencies shared by REST and GraphQL: settings, principal, unit of work."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, TypeVar

import asyncpg
import structlog
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import set_workspace
from app.domain.shared.errors import RateLimitedError, UnauthenticatedError
from app.domain.shared.listing import Page, check_limit
from app.domain.shared.principal import Principal
from app.domain.workspaces import auth, secrets
from app.domain.workspaces.service import mark_api_key_used

log = structlog.get_logger("relata")
T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="An API key (rlk_…) or a user access token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass
class Resources:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    engine: AsyncEngine


def resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


class PrincipalCache:
    """Resolved principals by token digest, briefly: revocation takes effect within `ttl`.

    Each entry lives a random 50–100 % of `ttl` (and a key's last use is written every 60–75
    s): tokens first seen together would otherwise all expire in the same instant, and a
    burst of re-resolutions would stall every request behind it (the p99 at a steady rate)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._key_used: dict[str, float] = {}

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, key: str, principal: Principal) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl * random.uniform(0.5, 1.0), principal)

    def key_use_due(self, key: str) -> bool:
        """API keys record last use at most once a minute per process."""
        if not self.key_use_pending(key):
            return False
        self._key_used[key] = time.monotonic() + random.uniform(60, 75)
        return True

    def key_use_pending(self, key: str) -> bool:
        """Whether `key_use_due` would say yes (and take the turn)."""
        return self._key_used.get(key, 0) <= time.monotonic()

    def ready(self, token: str) -> Principal | None:
        """The caller's principal when it is cached and nothing else is due for it (an API
        key's last use is written through the ORM path): what a request below the ORM may
        serve on (`driver_context`, the hot routes)."""
        key = secrets.digest(token)
        principal = self.get(key)
        if principal is None or principal.kind == "api_key" and principal.id \
                and self.key_use_pending(key):
            return None
        return principal


async def resolve_principal(session: AsyncSession, res: Resources, cache: PrincipalCache,
                            token: str) -> Principal:
    key = secrets.digest(token)
    principal = cache.get(key)
    if principal is None:
        if token.startswith(secrets.API_KEY_PREFIX):
            principal = await auth.principal_for_api_key(session, token)
        else:
            principal = await auth.principal_for_access_token(session, token,
                                                             res.settings.secret_key)
        cache.put(key, principal)
    await set_workspace(session, principal.workspace_id)
    if principal.kind == "api_key" and principal.id and cache.key_use_due(key):
        await mark_api_key_used(session, principal.id)
    return principal


class RateLeases:
    """Numbers of a subject's hits in this minute's window that this process has counted in
    Redis ahead (decision 0064). Far below the limit a process counts up to `SIZE` hits at
    once and numbers its next requests from them without a round trip; within 64 × `SIZE`
    of the limit the lease shrinks, down to one hit (each request counted in Redis, exactly)
    in the last 128. A lease a process does not use up (the window closes, or the subject
    stops) counts hits that never came: at most `SIZE` - 1 per process and window, and only
    where the subject was far enough below its limit for them not to matter."""

    SIZE = 8

    def __init__(self) -> None:
        self._leases: dict[str, tuple[int, int, int]] = {}  # subject -> window, next, last

    def take(self, subject: str, window: int) -> int | None:
        lease = self._leases.get(subject)
        if lease is None or lease[0] != window or lease[1] > lease[2]:
            return None
        self._leases[subject] = (window, lease[1] + 1, lease[2])
        return lease[1]

    def size(self, subject: str, window: int, limit: int) -> int:
        lease = self._leases.get(subject)
        known = lease[2] if lease is not None and lease[0] == window else 0
        return max(1, min(self.SIZE, (limit - known) // 64))

    def grant(self, subject: str, window: int, total: int, size: int) -> int:
        """Redis counted `size` hits up to `total`: the first is this request's number."""
        if len(self._leases) > 10_000:
            self._leases.clear()
        self._leases[subject] = (window, total - size + 2, total)
        return total - size + 1


async def count_hit(res: Resources, subject: str, *, leases: RateLeases | None = None,
                    limit: int = 0) -> int | None:
    """Counts one hit of `subject` in this minute's window; the count, or None when Redis
    is away (which must not take the API down). With `leases`, hits are counted in Redis a
    few at a time while the count is far below `limit`."""
    window = int(time.time() // 60)
    if leases is not None:
        number = leases.take(subject, window)
        if number is not None:
            return number
    size = leases.size(subject, window, limit) if leases is not None else 1
    bucket = f"rl:{subject}:{window}"
    try:
        pipe = res.redis.pipeline(transaction=False)
        pipe.incrby(bucket, size)
        pipe.expire(bucket, 61)
        count, _ = await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - Redis down must not take the API down
        log.warning("rate limit unavailable", error=repr(exc))
        return None
    if leases is not None:
        return leases.grant(subject, window, int(count), size)
    return int(count)


async def enforce_rate_limit(request: Request, res: Resources, subject: str, limit: int) -> None:
    """A fixed one-minute window per subject (an actor, or a login attempt's IP + username)."""
    count = await count_hit(res, subject, limit=limit,
                            leases=getattr(request.app.state, "rate_leases", None))
    if count is None:
        return
    reset = 60 - int(time.time()) % 60
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - count)),
               "RateLimit-Reset": str(reset)}
    request.state.ratelimit_headers = headers
    if count > limit:
        raise RateLimitedError(f"more than {limit} requests a minute; retry in {reset} s",
                               extra={"headers": {**headers, "Retry-After": str(reset)}})


def client_address(request: Request) -> str:
    """The caller's IP, for the limits that count per address (uvicorn applies the proxy
    headers it trusts); "unknown" when the server gives none."""
    return request.client.host if request.client else "unknown"


async def limit_reached(res: Resources, subject: str, limit: int) -> int | None:
    """Seconds until the window resets when `subject` has already used up `limit` this
    minute (counted by `enforce_rate_limit`), else None; Redis down counts as room."""
    window = int(time.time() // 60)
    try:
        count = int(await res.redis.get(f"rl:{subject}:{window}") or 0)
    except Exception as exc:  # noqa: BLE001 - Redis down must not take the API down
        log.warning("rate limit unavailable", error=repr(exc))
        return None
    return 60 - int(time.time()) % 60 if count >= limit else None


def _require_bearer(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthenticatedError("send Authorization: Bearer <API key or access token>",
                                   extra={"headers": {"WWW-Authenticate": "Bearer"}})
    return credentials.credentials


async def authenticate(request: Request,
                       credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """Resolve and rate-limit the caller in a short transaction of its own, for endpoints
    that outlive one transaction (the event stream)."""
    principal = await resolve_caller(request, _require_bearer(credentials))
    res = resources(request)
    await enforce_rate_limit(request, res, principal.actor, res.settings.rate_limit_per_minute)
    return principal


async def resolve_caller(request: Request, token: str) -> Principal:
    """The token's principal, in a short transaction of its own."""
    res = resources(request)
    async with res.sessions() as session, session.begin():
        return await resolve_principal(session, res, request.app.state.principal_cache, token)


@dataclass
class Context:
    session: AsyncSession
    principal: Principal


def bind_caller(request: Request, principal: Principal) -> None:
    """The caller, for the error handlers and the access log line."""
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(workspace_id=str(principal.workspace_id),
                                           actor=principal.actor)


@asynccontextmanager
async def open_context(request: Request, token: str, *,
                       counted: Principal | None = None) -> AsyncIterator[Context]:
    """Authenticate, then one transaction in the caller's workspace. `counted`: the
    principal a `driver_context` already resolved and rate-limited for this request."""
    res = resources(request)
    async with res.sessions() as session, session.begin():
        if counted is not None:
            await set_workspace(session, counted.workspace_id)
            yield Context(session=session, principal=counted)
            return
        principal = await resolve_principal(session, res, request.app.state.principal_cache,
                                            token)
        bind_caller(request, principal)
        await enforce_rate_limit(request, res, principal.actor,
                                 res.settings.rate_limit_per_minute)
        yield Context(session=session, principal=principal)


async def workspace_context(request: Request, credentials: Bearer) -> AsyncIterator[Context]:
    """Authenticate, then one transaction in the caller's workspace for the whole request."""
    async with open_context(request, _require_bearer(credentials)) as ctx:
        yield ctx


@dataclass
class DriverContext:
    """A transaction on a pooled asyncpg connection, with no ORM session: for the few
    endpoints that read and write below the ORM (decision 0063)."""

    conn: asyncpg.Connection
    principal: Principal


@asynccontextmanager
async def driver_context(request: Request, token: str, *, one_statement: bool = False
                         ) -> AsyncIterator[DriverContext | None]:
    """The caller's transaction on the driver connection, when its principal is cached and
    nothing else is due (an API key's last use is written through the ORM path); None
    otherwise, and the caller takes `open_context` (with `counted=` once this one has
    counted the request). The transaction starts with the workspace set, in one round trip,
    commits when the block ends and rolls back when it raises. With `one_statement`, the
    connection is in no transaction and no workspace: for one statement that sets its own
    (a `relata_*` function such as `relata_contact_card`, decision 0067); any other
    statement on it sees no tenant row."""
    res = resources(request)
    principal = request.app.state.principal_cache.ready(token)
    if principal is None:
        yield None
        return
    bind_caller(request, principal)
    await enforce_rate_limit(request, res, principal.actor, res.settings.rate_limit_per_minute)
    if one_statement:
        async with pooled_driver(res) as conn:
            yield DriverContext(conn=conn, principal=principal)
        return
    async with driver_transaction(res, principal.workspace_id) as conn:
        yield DriverContext(conn=conn, principal=principal)


@asynccontextmanager
async def pooled_driver(res: Resources) -> AsyncIterator[asyncpg.Connection]:
    """A pooled driver connection, in no transaction. One that is lost or still in a
    transaction when the block ends (a failed ROLLBACK, a statement left open) is
    invalidated, never pooled so."""
    raw = await res.engine.raw_connection()
    conn: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    try:
        yield conn
    finally:
        if conn.is_closed() or conn.is_in_transaction():
            raw.invalidate()
        raw.close()


@asynccontextmanager
async def driver_transaction(res: Resources, workspace_id: uuid.UUID
                             ) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a pooled driver connection with the workspace set, in one round
    trip: it commits when the block ends and rolls back when it raises. For the endpoints
    that read and write below the ORM (decision 0063): `driver_context` for a signed-in
    caller, the public form endpoint for a form's workspace."""
    # A UUID's text, so it can be part of the statement: BEGIN and the workspace in one
    # simple query (two statements), where a parameter would need a round trip each.
    if not isinstance(workspace_id, uuid.UUID):
        raise TypeError(f"a workspace id is a UUID, not {type(workspace_id).__name__}")
    async with pooled_driver(res) as conn:
        await conn.execute(f"BEGIN; SELECT set_config('app.workspace_id', '{workspace_id}', "
                           "true)")
        try:
            yield conn
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


async def below_the_orm(
    request: Request, credentials: HTTPAuthorizationCredentials | None,
    driver: Callable[[asyncpg.Connection, Principal], Awaitable[T | None]],
    orm: Callable[[AsyncSession, Principal, bool], Awaitable[T]], *,
    one_statement: bool = False,
) -> T:
    """An endpoint's work on the driver connection (`driver_context`, `one_statement` passed
    on), or through the ORM when there is no driver context or `driver` returns None (it
    wrote nothing then). `orm`'s third argument says whether `driver` was tried; the
    request counts once."""
    token = _require_bearer(credentials)
    async with driver_context(request, token, one_statement=one_statement) as hot:
        result = await driver(hot.conn, hot.principal) if hot is not None else None
    if result is not None:
        return result
    async with open_context(request, token,
                            counted=hot.principal if hot is not None else None) as ctx:
        return await orm(ctx.session, ctx.principal, hot is not None)


# The transaction ends when the endpoint returns, before the response is sent: a client that
# sees a 2xx can read its write back at once, and a failed commit is reported as an error.
Ctx = Annotated[Context, Depends(workspace_context, scope="function")]


async def public_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A transaction with no workspace, for the bootstrap and token endpoints."""
    async with resources(request).sessions() as session, session.begin():
        yield session


PublicSession = Annotated[AsyncSession, Depends(public_session, scope="function")]


async def page_params(  # async: FastAPI would run a plain def in its thread pool
    limit: Annotated[int, Query(description="Page size, 1–200")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    sort: Annotated[str | None, Query(description="Field to sort by, - for descending")] = None,
) -> Page:
    return Page(limit=check_limit(limit, ["query", "limit"]), cursor=cursor, sort=sort)


PageDep = Annotated[Page, Depends(page_params)]
