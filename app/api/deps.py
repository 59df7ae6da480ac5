"""Annotated dependencies shared by REST and GraphQL: settings, principal, unit of work."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import set_workspace
from app.domain.shared.errors import RateLimitedError, UnauthenticatedError
from app.domain.shared.listing import Page, check_limit
from app.domain.shared.principal import Principal
from app.domain.workspaces import auth, secrets
from app.domain.workspaces.service import mark_api_key_used

log = structlog.get_logger("relata")
bearer = HTTPBearer(auto_error=False, description="An API key (rlk_…) or a user access token")


@dataclass
class Resources:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis


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
        now = time.monotonic()
        if self._key_used.get(key, 0) > now:
            return False
        self._key_used[key] = now + random.uniform(60, 75)
        return True


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


async def count_hit(res: Resources, subject: str) -> int | None:
    """Counts one hit of `subject` in this minute's window; the count, or None when Redis
    is away (which must not take the API down)."""
    bucket = f"rl:{subject}:{int(time.time() // 60)}"
    try:
        pipe = res.redis.pipeline(transaction=False)
        pipe.incr(bucket)
        pipe.expire(bucket, 61)
        count, _ = await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - Redis down must not take the API down
        log.warning("rate limit unavailable", error=repr(exc))
        return None
    return int(count)


async def enforce_rate_limit(request: Request, res: Resources, subject: str, limit: int) -> None:
    """A fixed one-minute window per subject (an actor, or a login attempt's IP + username)."""
    count = await count_hit(res, subject)
    if count is None:
        return
    reset = 60 - int(time.time()) % 60
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - count)),
               "RateLimit-Reset": str(reset)}
    request.state.ratelimit_headers = headers
    if count > limit:
        raise RateLimitedError(f"more than {limit} requests a minute; retry in {reset} s",
                               extra={"headers": {**headers, "Retry-After": str(reset)}})


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
    token = _require_bearer(credentials)
    res = resources(request)
    async with res.sessions() as session, session.begin():
        principal = await resolve_principal(session, res, request.app.state.principal_cache,
                                            token)
    await enforce_rate_limit(request, res, principal.actor, res.settings.rate_limit_per_minute)
    return principal


@dataclass
class Context:
    session: AsyncSession
    principal: Principal


async def workspace_context(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> AsyncIterator[Context]:
    """Authenticate, then one transaction in the caller's workspace for the whole request."""
    token = _require_bearer(credentials)
    res = resources(request)
    async with res.sessions() as session, session.begin():
        principal = await resolve_principal(session, res, request.app.state.principal_cache,
                                            token)
        request.state.principal = principal
        structlog.contextvars.bind_contextvars(workspace_id=str(principal.workspace_id),
                                               actor=principal.actor)
        await enforce_rate_limit(request, res, principal.actor,
                                 res.settings.rate_limit_per_minute)
        yield Context(session=session, principal=principal)


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
