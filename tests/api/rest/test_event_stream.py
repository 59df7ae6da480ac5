"""GET /api/v1/events/stream: the event log live as server-sent events."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.api.rest import events as events_api
from tests.api.rest.conftest import PROBLEM, act_as, new_contact, new_user
from tests.conftest import Workspace


def parse_sse(body: str) -> list[dict[str, Any]]:
    messages = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if fields:
            messages.append({"id": fields.get("id"), "event": fields.get("event"),
                             "data": orjson.loads(fields["data"])})
    return messages


async def cursor_now(ws: Workspace) -> str | None:
    return (await ws.get("/api/v1/events?limit=200")).json()["next_cursor"]


async def test_stream_delivers_events_in_commit_order_with_resumable_ids(
        ws: Workspace, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_api, "POLL_SECONDS", 0.05)
    start = await cursor_now(ws)
    first = await new_contact(ws, full_name="Ada First")
    second = await new_contact(ws, full_name="Bob Second")
    response = await ws.get("/api/v1/events/stream", params={"after": start, "max_seconds": 1})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = parse_sse(response.text)
    created = [m for m in messages if m["event"] == "contact.created"]
    assert [m["data"]["entity_id"] for m in created] == [first["id"], second["id"]]
    assert created[0]["data"]["after"]["full_name"] == "Ada First"

    # A reconnecting EventSource sends Last-Event-ID: only what came after it.
    resumed = await ws.get("/api/v1/events/stream",
                           params={"after": start, "max_seconds": 1},
                           headers={"Last-Event-ID": created[0]["id"]})
    again = [m for m in parse_sse(resumed.text) if m["event"] == "contact.created"]
    assert [m["data"]["entity_id"] for m in again] == [second["id"]]


async def test_stream_without_cursor_delivers_what_happens_next(
        ws: Workspace, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_api, "POLL_SECONDS", 0.05)

    async def create_while_streaming() -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return await new_contact(ws, full_name="Arrives Live")

    response, live = await asyncio.gather(
        ws.get("/api/v1/events/stream", params={"max_seconds": 2}), create_while_streaming())
    created = [m["data"]["entity_id"] for m in parse_sse(response.text)
               if m["event"] == "contact.created"]
    assert live["id"] in created


async def test_stream_filters_types(ws: Workspace, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_api, "POLL_SECONDS", 0.05)
    start = await cursor_now(ws)
    contact = await new_contact(ws, full_name="Carol")
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"status": "hot"})
    only_updates = await ws.get("/api/v1/events/stream", params={
        "after": start, "types": "contact.updated", "max_seconds": 1})
    assert [m["event"] for m in parse_sse(only_updates.text)] == ["contact.updated"]


async def test_stream_follows_visibility(ws: Workspace, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_api, "POLL_SECONDS", 0.05)
    anna, boris = await new_user(ws, "agent"), await new_user(ws, "agent")
    as_anna = await act_as(ws, anna)
    start = await cursor_now(ws)
    await new_contact(ws, full_name="Boris's client", owner_id=boris["id"])
    mine = await new_contact(ws, full_name="Anna's client", owner_id=anna["id"])
    response = await as_anna.get("/api/v1/events/stream",
                                 params={"after": start, "max_seconds": 1})
    seen = {m["data"]["entity_id"] for m in parse_sse(response.text)}
    assert seen == {mine["id"]}


async def test_stream_refuses_bad_input_before_streaming(ws: Workspace) -> None:
    bad_cursor = await ws.get("/api/v1/events/stream", params={"after": "not-a-cursor"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"] == PROBLEM
    anonymous = await ws.client.get("/api/v1/events/stream")
    assert anonymous.status_code == 401
    too_long = await ws.get("/api/v1/events/stream", params={"max_seconds": 0})
    assert too_long.status_code == 422
