"""GraphQL subscriptions over WebSocket (graphql-transport-ws): the event log live."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.api.graphql import live
from app.config import Settings

SUBSCRIBE = """subscription ($after: String, $types: [String!]) {
  events(after: $after, types: $types) { cursor type entityType entityId actor after }
}"""


@pytest.fixture
def sync_client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Starlette's client speaks WebSocket; it runs the app on its own event loop."""
    from app.main import create_app

    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    with TestClient(create_app(settings)) as client:
        yield client


def signup(client: TestClient) -> dict[str, str]:
    created = client.post("/api/v1/workspaces", json={
        "name": "Live", "owner_email": "live@example.com", "default_region": "RU"})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['api_key']}"}


def open_socket(client: TestClient, payload: dict[str, Any]) -> Any:
    ws = client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    socket = ws.__enter__()
    socket.send_json({"type": "connection_init", "payload": payload})
    return ws, socket


def test_subscription_streams_events_in_commit_order(sync_client: TestClient) -> None:
    auth = signup(sync_client)
    start = sync_client.get("/api/v1/events?limit=200", headers=auth).json()["next_cursor"]
    first = sync_client.post("/api/v1/contacts", headers=auth, json={"full_name": "Ada Live"})
    second = sync_client.post("/api/v1/contacts", headers=auth, json={"full_name": "Bob Live"})
    assert first.status_code == second.status_code == 201

    ws, socket = open_socket(sync_client, auth)
    try:
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": SUBSCRIBE, "variables": {"after": start, "types": ["contact.created"]}}})
        received = [socket.receive_json(), socket.receive_json()]
        socket.send_json({"id": "1", "type": "complete"})
    finally:
        ws.__exit__(None, None, None)
    events = [m["payload"]["data"]["events"] for m in received]
    assert [m["type"] for m in received] == ["next", "next"]
    assert [e["entityId"] for e in events] == [first.json()["id"], second.json()["id"]]
    assert events[0]["after"]["full_name"] == "Ada Live"
    assert events[0]["actor"].startswith("api_key:")
    assert events[0]["cursor"] != events[1]["cursor"]


def test_a_bad_token_is_refused_at_connection(sync_client: TestClient) -> None:
    ws, socket = open_socket(sync_client, {"Authorization": "Bearer rlk_not-a-key"})
    try:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 4403
    finally:
        ws.__exit__(None, None, None)
