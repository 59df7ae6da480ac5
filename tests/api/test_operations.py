"""Operations endpoints and the behaviour every response shares."""

from __future__ import annotations

from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    metrics = await client.get("/metrics")
    assert "relata_http_requests_total" in metrics.text


async def test_request_id_is_echoed_or_assigned(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert given.headers["x-request-id"] == "trace-123"
    assigned = await client.get("/healthz")
    assert len(assigned.headers["x-request-id"]) == 32


async def test_readiness_fails_when_redis_is_unreachable(settings: Settings) -> None:
    broken = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with LifespanManager(broken), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=broken), base_url="http://relata.test") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["checks"]["postgres"] == "ok"
    assert response.json()["checks"]["redis"].startswith("error")


async def test_an_unexpected_error_is_a_problem_with_the_request_id(settings: Settings) -> None:
    app: Any = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://relata.test") as c:
            response = await c.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    assert response.json()["title"] == "Internal error"
    assert "secret internal detail" not in response.text
