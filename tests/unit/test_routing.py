"""Prefix-gated route matching (app/api/routing.py) picks exactly the route, and gives
exactly the 404/405 answers, that FastAPI's plain matching does, for every route."""

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, _IncludedRouter
from starlette.routing import BaseRoute, Match

from app.api.routing import _GatedRouter
from app.config import Settings
from app.main import create_app

SAMPLE_ID = "01a24255-306f-7660-9105-8c1bcdd3ef0b"


@pytest.fixture(scope="module")
def gated() -> FastAPI:
    return create_app(Settings(database_url="postgresql://unused/unused"))


def _ungated(app: FastAPI) -> list[BaseRoute]:
    return [_IncludedRouter(original_router=r.original_router, include_context=r.include_context)
            if isinstance(r, _GatedRouter) else r for r in app.router.routes]


def _resolve(routes: list[BaseRoute], method: str, path: str) -> tuple[str, object]:
    """(FULL/PARTIAL/NONE, the endpoint chosen) as the app's router would decide."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "",
             "headers": [], "query_string": b""}
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL or (match == Match.PARTIAL and partial is None):
            chosen: object = route
            if isinstance(route, _IncludedRouter):
                chosen = route._match(dict(scope))[2]
            chosen = getattr(chosen, "endpoint", chosen)
            if match == Match.FULL:
                return "FULL", chosen
            partial = ("PARTIAL", chosen)
    return partial or ("NONE", None)


def _api_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, APIRoute]]:
    found = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            found += _api_routes(route.original_router.routes,
                                 prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            found.append((prefix + route.path, route))
    return found


def test_every_route_is_gated_except_the_apps_own(gated: FastAPI) -> None:
    included = [r for r in gated.router.routes if isinstance(r, _IncludedRouter)]
    assert included and all(isinstance(r, _GatedRouter) for r in included)


def test_every_route_resolves_as_without_the_gates(gated: FastAPI) -> None:
    plain = _ungated(gated)
    routes = _api_routes(gated.router.routes)
    assert len(routes) > 150
    for path, route in routes:
        concrete = re.sub(r"\{[^}]+\}", SAMPLE_ID, path) or "/"
        for method in sorted(route.methods) + ["PUT", "OPTIONS"]:
            for candidate in (concrete, concrete + "/", concrete + "/x", concrete.upper()):
                expected = _resolve(plain, method, candidate)
                assert _resolve(gated.router.routes, method, candidate) == expected, \
                    (method, candidate)
        # The route itself wins for its own path and method, gated or not.
        method = min(route.methods)
        status, _ = _resolve(gated.router.routes, method, concrete)
        assert status == "FULL"


@pytest.mark.parametrize("path", ["/", "/healthz", "/api", "/api/v1", "/api/v1/nope",
                                  "/api/v1/contactsx", "/graphql", "/graphql/",
                                  "/api/v1/integrations/telephony/calls"])
def test_odd_paths_resolve_as_without_the_gates(gated: FastAPI, path: str) -> None:
    plain = _ungated(gated)
    for method in ("GET", "POST", "DELETE"):
        assert _resolve(gated.router.routes, method, path) == _resolve(plain, method, path)
