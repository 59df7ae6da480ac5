"""create_app(): lifespan (engine, Redis), REST + GraphQL, middleware, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text

from app.api.deps import PrincipalCache, RateLeases, Resources
from app.api.errors import PROBLEM_RESPONSES, install_error_handlers, problem_response
from app.api.graphql.schema import graphql_router
from app.api.hot import HotRoutes
from app.api.middleware import IdempotencyMiddleware, RequestContextMiddleware
from app.api.rest import (
    activities,
    api_keys,
    auth,
    companies,
    contacts,
    custom_fields,
    deals,
    documents,
    events,
    exports,
    form_public,
    forms,
    imports,
    inbox,
    integrations,
    messages,
    notifications,
    pipelines,
    rules,
    scoring,
    tasks,
    templates,
    timeline,
    users,
    webhooks,
    workspaces,
)
from app.api.routing import gate_routers
from app.config import Settings, get_settings
from app.db import create_engine, session_factory
from app.heap import settle_after_startup
from app.logging import configure_logging

DESCRIPTION = """Relata is a headless CRM: contacts, companies, deals, tasks, the timeline and
pipeline rules over REST and GraphQL. Authenticate with `Authorization: Bearer rlk_…` (an API
key) or a user access token from `POST /api/v1/auth/token`. Errors are RFC 9457
`application/problem+json`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = Redis.from_url(settings.redis_url)
        app.state.resources = Resources(settings=settings, sessions=session_factory(engine),
                                        redis=redis, engine=engine)
        app.state.principal_cache = PrincipalCache(settings.principal_cache_seconds)
        app.state.rate_leases = RateLeases()
        settle_after_startup()
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(title="Relata API", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan,
                  responses=PROBLEM_RESPONSES)
    install_error_handlers(app)
    for router in (workspaces.router, auth.router, users.users, users.teams, api_keys.router,
                   custom_fields.router, contacts.router, companies.router, pipelines.router,
                   deals.router, scoring.router, tasks.router, activities.router,
                   timeline.router, notifications.router, events.router, exports.router,
                   imports.router,
                   forms.router, forms.submissions, form_public.router,
                   rules.router, templates.router, documents.router,
                   messages.router, webhooks.router,
                   inbox.router, integrations.router, integrations.inbound):
        app.include_router(router)
    app.include_router(graphql_router(), prefix="/graphql", include_in_schema=False)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Response:
        """PostgreSQL and Redis are reachable."""
        res: Resources = request.app.state.resources
        checks = {}
        try:
            async with res.sessions() as session:
                await session.execute(text("select 1"))
            checks["postgres"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["postgres"] = f"error: {type(exc).__name__}"
        try:
            await res.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ok", "checks": checks})
        return problem_response(503, "Not ready", "a dependency is unreachable",
                                slug="not-ready", checks=checks)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    gate_routers(app)
    app.add_middleware(HotRoutes)  # innermost: below the access log, above the routing
    app.add_middleware(IdempotencyMiddleware, ttl_seconds=settings.idempotency_ttl_hours * 3600)
    app.add_middleware(RequestContextMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` builds the app on first access, so importing this module (tests, the
    # OpenAPI exporter) does not need settings from the environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
