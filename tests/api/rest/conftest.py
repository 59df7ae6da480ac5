"""Helpers for the REST suite: arrange through the public API, as a client would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.domain.workspaces import secrets
from tests.conftest import Workspace, make_workspace

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="session", autouse=True)
def light_password_hashing() -> Iterator[None]:
    """Every workspace hashes its owner's password, and argon2 at production cost (64 MiB,
    three passes) takes a quarter second a hash on a busy two-core box. The suite hashes with
    light parameters; hashing and verifying work exactly as in production otherwise."""
    original = secrets._hasher
    secrets._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    secrets._hasher = original


async def new_contact(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/contacts", json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_company(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/companies", json={"name": "Acme", **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_custom_field(ws: Workspace, key: str, type_: str, *, object_type: str = "contact",
                           **extra: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/custom-fields", json={
        "object_type": object_type, "key": key, "label": key.replace("_", " ").title(),
        "type": type_, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_user(ws: Workspace, role: str = "agent", name: str = "") -> dict[str, Any]:
    response = await ws.post("/api/v1/users", json={
        "email": f"{role}-{uuid.uuid4().hex[:8]}@example.com", "full_name": name or role,
        "role": role, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def token_for(client: httpx.AsyncClient, email: str,
                    password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def act_as(ws: Workspace, user: dict[str, Any],
                 client: httpx.AsyncClient | None = None) -> Workspace:
    """The same workspace, driven with the user's access token instead of the API key."""
    client = client or ws.client
    tokens = await token_for(client, user["email"])
    return Workspace(id=ws.id, owner_id=ws.owner_id, api_key=tokens["access_token"],
                     client=client)


def with_client(ws: Workspace, client: httpx.AsyncClient) -> Workspace:
    return Workspace(id=ws.id, owner_id=ws.owner_id, api_key=ws.api_key, client=client)


def stored(card: dict[str, Any]) -> dict[str, Any]:
    """A card without `local_time`, which is the clock, not stored data."""
    return {k: v for k, v in card.items() if k != "local_time"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return body


def error_locs(response: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in response.json().get("errors", [])]


async def all_pages(ws: Workspace, url: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; returns every row in order."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        response = await ws.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
async def shared_ws(client: httpx.AsyncClient) -> Workspace:
    """One workspace for a module's tests that are refused or only read: a fresh workspace per
    test costs an owner password hash. Tests using it must not depend on it being empty."""
    return await make_workspace(client, name="Shared")


async def events_since(ws: Workspace, cursor: str | None, *, expect: int,
                       **params: str) -> dict[str, Any]:
    """Poll like a client: the log serves an event once every older transaction on the server
    has finished, so under load it can show up a moment after the write returned."""
    body: dict[str, Any] = {}
    for _ in range(100):
        response = await ws.get("/api/v1/events", params={
            **params, **({"after": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        if len(body["data"]) >= expect:
            return body
        await asyncio.sleep(0.05)
    return body


async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from app.main import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://relata.test") as c:
            yield c


@pytest.fixture(scope="session")
async def fresh_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app that resolves every token afresh (no principal cache): revocations and role or
    setting changes show on the very next request."""
    async for c in _client_for(settings.model_copy(update={"principal_cache_seconds": 0})):
        yield c


@pytest.fixture
async def limited_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app that allows three requests a minute per credential."""
    async for c in _client_for(settings.model_copy(update={"rate_limit_per_minute": 3})):
        yield c
