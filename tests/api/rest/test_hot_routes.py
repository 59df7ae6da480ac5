"""The contact card's GET below FastAPI's routing (app/api/hot.py, decision 0068): it must
answer exactly as the route does, and only when the caller is cached."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from app.api.hot import HotRoutes
from app.api.rest import contacts
from tests.api.rest.conftest import act_as, assert_problem, new_contact, new_user
from tests.conftest import Workspace, make_workspace

# Headers that differ between any two requests: a fresh id, and the count left this minute.
VOLATILE = {"x-request-id", "ratelimit-remaining", "ratelimit-reset", "retry-after"}


def answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    body = response.json()
    if isinstance(body, dict):
        body.pop("local_time", None)  # the clock, not stored data
    return response.status_code, headers, body


class RouteCalls:
    """Counts the requests that reached FastAPI's route for the card."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = contacts.below_the_orm

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(contacts, "below_the_orm", counted)


def hot_route_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(self: HotRoutes, scope: Any) -> None:
        return None

    monkeypatch.setattr(HotRoutes, "_card", never)


async def answers(callers: list[Workspace], paths: list[str]) -> list[Any]:
    return [answer(await caller.get(path)) for caller, path in zip(callers, paths, strict=True)]


def served_count(metrics: str, status: int) -> float:
    line = ('relata_http_requests_total{method="GET",route="/api/v1/contacts/{contact_id}",'
            f'status="{status}"}} ')
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


async def test_a_cached_caller_gets_the_routes_answer_without_the_route(
        ws: Workspace, other_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    card = await new_contact(ws, full_name="Anna Petrova", phones=["+7 912 345-67-89"])
    agent = await new_user(ws, role="agent")
    as_agent = await act_as(ws, agent)
    for caller in (ws, other_ws, as_agent):  # resolved and cached, the key's last use written
        assert (await caller.get("/api/v1/contacts", params={"limit": 1})).status_code == 200
    callers = [ws, ws, other_ws, ws, as_agent]
    paths = [f"/api/v1/contacts/{card['id']}", f"/api/v1/contacts/{card['id'].upper()}",
             f"/api/v1/contacts/{card['id']}",  # another workspace's card
             f"/api/v1/contacts/{uuid.uuid4()}",  # nobody's
             f"/api/v1/contacts/{card['id']}"]  # an agent who does not own it
    before = (await ws.client.get("/metrics")).text
    route = RouteCalls(monkeypatch)
    hot = await answers(callers, paths)
    assert route.count == 0
    after = (await ws.client.get("/metrics")).text
    # the access log and the metrics still name the route
    assert served_count(after, 200) - served_count(before, 200) == 2
    assert served_count(after, 404) - served_count(before, 404) == 3

    hot_route_off(monkeypatch)
    by_route = await answers(callers, paths)
    assert route.count == len(paths)
    assert hot == by_route
    assert [status for status, _, _ in hot] == [200, 200, 404, 404, 404]
    assert hot[0][1]["etag"] == f'"{card["version"]}"'
    assert hot[0][2] == {k: v for k, v in card.items() if k != "local_time"}


async def test_what_the_hot_route_cannot_answer_goes_to_the_app(
        ws: Workspace, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    card = await new_contact(ws, full_name="Boris")
    route = RouteCalls(monkeypatch)
    fresh = await make_workspace(client)  # its key was never resolved in this process
    assert_problem(await fresh.get(f"/api/v1/contacts/{card['id']}"), 404)
    assert route.count == 1
    unauthenticated = await client.get(f"/api/v1/contacts/{card['id']}")
    assert_problem(unauthenticated, 401)
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert route.count == 2
    for path in (f"/api/v1/contacts/{card['id'].replace('-', '')}",  # FastAPI parses these
                 f"/api/v1/contacts/{{{card['id']}}}"):
        assert (await ws.get(path)).status_code == 200
    assert route.count == 4
    bad = await ws.get("/api/v1/contacts/" + "-" * 4 + "0" * 32)
    # 36 characters that uuid.UUID would take and FastAPI's validation refuses (before the
    # endpoint: the hot route would have answered 200 or 404)
    assert_problem(bad, 422)
    # other routes below the prefix never meet the hot route
    assert (await ws.get(f"/api/v1/contacts/{card['id']}/timeline")).status_code == 200
    assert (await ws.get("/api/v1/contacts/lookup", params={"email": "x@example.com"})
            ).status_code == 404


async def test_the_hot_routes_429_is_the_routes(limited_client: httpx.AsyncClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = await make_workspace(limited_client)
    card = await new_contact(ws, full_name="Vera")  # 1 of 3 this minute
    path = f"/api/v1/contacts/{card['id']}"
    assert (await ws.get(path)).status_code == 200  # 2
    assert (await ws.get(path)).status_code == 200  # 3
    route = RouteCalls(monkeypatch)
    limited = await ws.get(path)
    assert route.count == 0
    assert_problem(limited, 429)
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert limited.headers["ratelimit-remaining"] == "0"
    hot_route_off(monkeypatch)
    by_route = await ws.get(path)
    assert route.count == 1
    assert answer(limited) == answer(by_route)


async def test_behind_a_path_prefix_the_hot_route_still_answers(
        ws: Workspace, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mounted under a root path (`uvicorn --root-path /crm` behind a proxy), the card's path
    is matched below it, as FastAPI's routing matches it."""
    card = await new_contact(ws, full_name="Galina")
    assert (await ws.get(f"/api/v1/contacts/{card['id']}")).status_code == 200
    transport = httpx.ASGITransport(app=app, root_path="/crm")
    async with httpx.AsyncClient(transport=transport, base_url="http://relata.test") as client:
        route = RouteCalls(monkeypatch)
        read = await client.get(f"/crm/api/v1/contacts/{card['id']}",
                                headers={"Authorization": f"Bearer {ws.api_key}"})
    assert read.status_code == 200, read.text
    assert read.json()["full_name"] == "Galina"
    assert route.count == 0
