"""Real PostgreSQL and Redis for every test: a fresh, migrated database per test run.

The server comes from RELATA_DATABASE_URL / RELATA_REDIS_URL (`make test` starts embedded
ones when they are not set). Tests isolate from each other by workspace, as tenants do."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from app.config import Settings, get_settings, to_asyncpg_url

SERVER_URL = os.environ.get("RELATA_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RELATA_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin_execute(sql: str) -> None:
    url = make_url(to_asyncpg_url(SERVER_URL))
    conn = await asyncpg.connect(
        user=url.username, password=url.password, database=url.database or "postgres",
        host=url.query.get("host") or url.host, port=url.port)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Any:
    name = f"relata_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    url = make_url(to_asyncpg_url(SERVER_URL)).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    os.environ["RELATA_DATABASE_URL"] = rendered
    os.environ["RELATA_REDIS_URL"] = REDIS_URL
    os.environ.setdefault("RELATA_ENV", "test")
    os.environ.setdefault("RELATA_LOG_LEVEL", "WARNING")
    # Outbound webhooks and rules' call_webhook go to receivers the tests start on loopback.
    os.environ.setdefault("RELATA_WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8")
    get_settings.cache_clear()
    from app.cli import migrate_database

    migrate_database()
    yield rendered
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=REDIS_URL, env="test",
                    log_level="WARNING", rate_limit_per_minute=100_000,
                    inbound_refusals_per_ip_per_minute=100_000,
                    signups_per_minute=100_000)  # every test signs up from one address


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    from app.main import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relata.test") as c:
        yield c


@dataclass
class Workspace:
    id: str
    owner_id: str
    api_key: str
    client: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.post(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    async def gql(self, query: str, variables: dict[str, Any] | None = None,
                  token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else self.auth
        response = await self.client.post("/graphql", json={"query": query,
                                                            "variables": variables or {}},
                                          headers=headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


async def make_workspace(client: httpx.AsyncClient, region: str = "RU",
                         name: str = "Okna Plus") -> Workspace:
    response = await client.post("/api/v1/workspaces", json={
        "name": name, "owner_email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
        "owner_password": "correct horse battery", "default_region": region,
        "timezone": "Europe/Moscow"})
    assert response.status_code == 201, response.text
    body = response.json()
    return Workspace(id=body["workspace"]["id"], owner_id=body["owner_id"],
                     api_key=body["api_key"], client=client)


@pytest.fixture
async def ws(client: httpx.AsyncClient) -> Workspace:
    return await make_workspace(client)


@pytest.fixture
async def other_ws(client: httpx.AsyncClient) -> Workspace:
    return await make_workspace(client, name="Competitor LLC")


@pytest.fixture
async def auto(settings: Settings) -> AsyncIterator[Any]:
    """The real worker, driven step by step (tests/workers/harness.py)."""
    from tests.workers.harness import automation

    async with automation(settings, REDIS_URL) as harness:
        yield harness
