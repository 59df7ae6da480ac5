"""Route matching that skips, by a string prefix, the routers a path cannot belong to.

FastAPI (0.165) matches a request against every included router in turn, and each router
tries every one of its routes (twice for the router that matches: once to pick it, once to
dispatch). With some thirty routers and 176 routes, a path served by a late router, such as
the telephony webhook or `/healthz`, cost 0.4–0.6 ms of CPU before its endpoint ran
(docs/decisions/0060-route-matching-by-prefix.md).

A route's path can only match a request path that starts with its literal part: what comes
before its first `{parameter}`. `gate_routers` gives each included router the literal
prefixes of all its routes; a router none of whose prefixes starts the request path is
answered "no match" at once. That is the answer its own routes would give one by one, so
which route serves a request — and every 404, 405 and trailing-slash redirect — is
unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import _IncludedRouter  # the type include_router() adds (FastAPI 0.165)
from starlette.routing import BaseRoute, Match, get_route_path
from starlette.types import Scope


@dataclass
class _GatedRouter(_IncludedRouter):
    literal_prefixes: tuple[str, ...] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] in ("http", "websocket") \
                and not get_route_path(scope).startswith(self.literal_prefixes):
            return Match.NONE, {}
        return super().matches(scope)


def _literal_prefixes(routes: list[BaseRoute], prefix: str) -> tuple[str, ...] | None:
    """The literal prefix of every route below `prefix`, or None when one of them has no
    plain path (a host route, say): such a router is never skipped."""
    found: list[str] = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            inner = _literal_prefixes(route.original_router.routes,
                                      prefix + route.include_context.prefix)
            if inner is None:
                return None
            found.extend(inner)
            continue
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        found.append((prefix + path).split("{", 1)[0])
    return tuple(sorted(set(found)))


def gate_routers(app: FastAPI) -> None:
    """Give each router included in `app` its prefixes (call after the last include)."""
    routes = app.router.routes
    for index, route in enumerate(routes):
        if type(route) is not _IncludedRouter:
            continue
        prefixes = _literal_prefixes(route.original_router.routes,
                                     route.include_context.prefix)
        if prefixes is None or "" in prefixes:
            continue
        routes[index] = _GatedRouter(original_router=route.original_router,
                                     include_context=route.include_context,
                                     literal_prefixes=prefixes)
