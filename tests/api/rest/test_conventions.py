"""What every endpoint does the same way: ETags, idempotency, soft delete, history, events,
problem details, request ids and rate limits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.api.deps import RateLeases, count_hit
from app.config import Settings
from app.domain.shared.clock import clock
from app.main import create_app
from tests.api.rest.conftest import (
    PROBLEM,
    act_as,
    assert_problem,
    events_since,
    new_contact,
    new_user,
    token_for,
    with_client,
)
from tests.conftest import Workspace, make_workspace


async def api_key_id(ws: Workspace) -> str:
    keys = (await ws.get("/api/v1/api-keys")).json()["data"]
    return next(k["id"] for k in keys if ws.api_key.startswith(k["prefix"]))


# ETags and If-Match

async def test_get_create_and_patch_return_the_version_as_etag(shared_ws: Workspace) -> None:
    created = await shared_ws.post("/api/v1/contacts", json={"first_name": "Ivan"})
    assert created.headers["etag"] == '"1"'
    card = created.json()
    patched = await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"last_name": "Petrov"})
    assert patched.headers["etag"] == '"2"' and patched.json()["version"] == 2
    read = await shared_ws.get(f"/api/v1/contacts/{card['id']}")
    assert read.headers["etag"] == '"2"'


@pytest.mark.parametrize("if_match", ['"1"', 'W/"1"', "*"])
async def test_if_match_with_the_current_version_lets_the_patch_through(
        shared_ws: Workspace, if_match: str) -> None:
    card = await new_contact(shared_ws, first_name="Ivan")
    response = await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"},
                              headers={"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "hot"


@pytest.mark.parametrize("if_match", ['"1"', '"99"', "garbage", '""'])
async def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(
        shared_ws: Workspace, if_match: str) -> None:
    card = await new_contact(shared_ws, first_name="Ivan")
    await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "warm"})
    response = await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"},
                              headers={"If-Match": if_match})
    assert_problem(response, 412)
    current = (await shared_ws.get(f"/api/v1/contacts/{card['id']}")).json()
    assert (current["status"], current["version"]) == ("warm", 2)


async def test_the_412_names_the_current_version(shared_ws: Workspace) -> None:
    card = await new_contact(shared_ws, first_name="Ivan")
    await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "warm"})
    response = await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"},
                              headers={"If-Match": '"1"'})
    assert assert_problem(response, 412)["current_version"] == 2


async def test_two_concurrent_patches_with_one_etag_let_only_one_through(
        shared_ws: Workspace) -> None:
    card = await new_contact(shared_ws, first_name="Contested")
    url = f"/api/v1/contacts/{card['id']}"
    responses = await asyncio.gather(
        shared_ws.patch(url, json={"status": "hot"}, headers={"If-Match": '"1"'}),
        shared_ws.patch(url, json={"status": "cold"}, headers={"If-Match": '"1"'}))
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r.json() for r in responses if r.status_code == 200)
    current = (await shared_ws.get(url)).json()
    assert (current["status"], current["version"]) == (winner["status"], 2)


async def test_delete_with_a_stale_etag_is_412_and_keeps_the_card(shared_ws: Workspace) -> None:
    card = await new_contact(shared_ws, first_name="Ivan")
    await shared_ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "warm"})
    assert_problem(await shared_ws.delete(f"/api/v1/contacts/{card['id']}",
                                   headers={"If-Match": '"1"'}), 412)
    assert (await shared_ws.get(f"/api/v1/contacts/{card['id']}")).status_code == 200
    ok = await shared_ws.delete(f"/api/v1/contacts/{card['id']}", headers={"If-Match": '"2"'})
    assert ok.status_code == 204


# Idempotency keys

async def test_same_idempotency_key_and_body_replays_the_first_response(ws: Workspace) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"first_name": "Once", "phones": ["+7 495 1234567"]}
    first = await ws.post("/api/v1/contacts", json=body, headers=key)
    second = await ws.post("/api/v1/contacts", json=body, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    listed = (await ws.get("/api/v1/contacts", params={"q": "once"})).json()["data"]
    assert [c["id"] for c in listed] == [first.json()["id"]]


async def test_same_idempotency_key_with_another_body_is_422(ws: Workspace) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await ws.post("/api/v1/contacts", json={"first_name": "A"}, headers=key)
    assert first.status_code == 201
    response = await ws.post("/api/v1/contacts", json={"first_name": "B"}, headers=key)
    assert_problem(response, 422)
    other_path = await ws.post("/api/v1/companies", json={"first_name": "A"}, headers=key)
    assert_problem(other_path, 422)
    assert len((await ws.get("/api/v1/contacts")).json()["data"]) == 1


async def test_idempotency_keys_belong_to_one_credential(ws: Workspace) -> None:
    second_key = (await ws.post("/api/v1/api-keys", json={"name": "site"})).json()["key"]
    other = Workspace(id=ws.id, owner_id=ws.owner_id, api_key=second_key, client=ws.client)
    key = {"Idempotency-Key": "order-1"}
    a = await ws.post("/api/v1/contacts", json={"first_name": "Same"}, headers=key)
    b = await other.post("/api/v1/contacts", json={"first_name": "Same"}, headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_a_revoked_key_gets_no_replay(ws: Workspace,
                                            fresh_client: httpx.AsyncClient) -> None:
    created = (await ws.post("/api/v1/api-keys", json={"name": "old site"})).json()
    old = with_client(Workspace(ws.id, ws.owner_id, created["key"], ws.client), fresh_client)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"first_name": "Kept", "emails": ["kept@example.com"]}
    first = await old.post("/api/v1/contacts", json=body, headers=key)
    assert first.status_code == 201
    assert (await ws.post(f"/api/v1/api-keys/{created['id']}/revoke")).status_code == 200
    again = await old.post("/api/v1/contacts", json=body, headers=key)
    assert_problem(again, 401)
    assert "idempotent-replayed" not in again.headers
    assert first.json()["id"] not in again.text
    other_body = await old.post("/api/v1/contacts", json={"first_name": "B"}, headers=key)
    assert_problem(other_body, 401)


async def test_a_retry_after_refreshing_the_token_is_replayed(ws: Workspace) -> None:
    user = await new_user(ws, "manager", "Mobile")
    clock.freeze(datetime.now(UTC) - timedelta(minutes=1))  # the refreshed token differs
    try:
        tokens = await token_for(ws.client, user["email"])
    finally:
        clock.freeze(None)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"first_name": "Offline", "phones": ["+7 495 7654321"]}
    first = await Workspace(ws.id, ws.owner_id, tokens["access_token"], ws.client).post(
        "/api/v1/contacts", json=body, headers=key)
    assert first.status_code == 201
    refreshed = (await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})).json()
    assert refreshed["access_token"] != tokens["access_token"]
    again = await Workspace(ws.id, ws.owner_id, refreshed["access_token"], ws.client).post(
        "/api/v1/contacts", json=body, headers=key)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    listed = (await ws.get("/api/v1/contacts", params={"q": "offline"})).json()["data"]
    assert [c["id"] for c in listed] == [first.json()["id"]]


async def test_a_replay_counts_against_the_rate_limit(ws: Workspace,
                                                      limited_client: httpx.AsyncClient) -> None:
    limited = with_client(ws, limited_client)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = [await limited.post("/api/v1/contacts", json={"first_name": "Often"},
                                  headers=key) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    assert_problem(answers[3], 429)
    assert "retry-after" in answers[3].headers


async def test_idempotency_keys_do_not_cross_workspaces(ws: Workspace,
                                                        other_ws: Workspace) -> None:
    key = {"Idempotency-Key": "signup-form-1"}
    mine = await ws.post("/api/v1/contacts", json={"first_name": "X"}, headers=key)
    theirs = await other_ws.post("/api/v1/contacts", json={"first_name": "X"}, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert_problem(await ws.get(f"/api/v1/contacts/{theirs.json()['id']}"), 404)


async def test_idempotent_patch_replays_and_does_not_bump_the_version_twice(
        ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan", tags=["a"])
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"tags": ["a", "b"]}
    first = await ws.patch(f"/api/v1/contacts/{card['id']}", json=body, headers=key)
    await ws.patch(f"/api/v1/contacts/{card['id']}", json={"tags": ["c"]})
    again = await ws.patch(f"/api/v1/contacts/{card['id']}", json=body, headers=key)
    assert again.json() == first.json() and again.json()["version"] == 2
    assert (await ws.get(f"/api/v1/contacts/{card['id']}")).json()["tags"] == ["c"]


async def test_a_refused_request_is_replayed_as_refused(ws: Workspace) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await ws.post("/api/v1/contacts", json={"phones": ["12"]}, headers=key)
    again = await ws.post("/api/v1/contacts", json={"phones": ["12"]}, headers=key)
    assert first.status_code == again.status_code == 422
    assert again.json() == first.json()
    assert again.headers["content-type"].startswith(PROBLEM)


async def test_concurrent_requests_with_one_key_create_one_card(ws: Workspace) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"first_name": "Racer"}
    responses = await asyncio.gather(*(ws.post("/api/v1/contacts", json=body, headers=key)
                                       for _ in range(4)))
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for r in responses:
        assert r.status_code in (201, 409), r.text
        if r.status_code == 409:
            assert_problem(r, 409)
    listed = (await ws.get("/api/v1/contacts", params={"q": "racer"})).json()["data"]
    assert [c["id"] for c in listed] == list(created)


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_malformed_idempotency_key_is_400(shared_ws: Workspace, key: str) -> None:
    response = await shared_ws.post("/api/v1/contacts", json={"first_name": "Keyless"},
                             headers={"Idempotency-Key": key})
    assert_problem(response, 400)
    assert (await shared_ws.get("/api/v1/contacts", params={"q": "keyless"})).json()["data"] == []


# Soft delete and restore

async def test_soft_delete_hides_the_card_and_restore_brings_it_back(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan", phones=["+7 495 1234567"])
    deleted = await ws.delete(f"/api/v1/contacts/{card['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await ws.get(f"/api/v1/contacts/{card['id']}"), 404)
    assert (await ws.get("/api/v1/contacts")).json()["data"] == []
    assert_problem(await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"}), 404)
    assert_problem(await ws.delete(f"/api/v1/contacts/{card['id']}"), 404)

    restored = await ws.post(f"/api/v1/contacts/{card['id']}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["deleted_at"] is None and body["version"] == 3
    assert restored.headers["etag"] == '"3"'
    assert (await ws.get(f"/api/v1/contacts/{card['id']}")).status_code == 200
    assert [c["id"] for c in (await ws.get("/api/v1/contacts")).json()["data"]] == [card["id"]]
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "84951234567"})
    assert found.json()["id"] == card["id"]


async def test_a_card_deleted_over_thirty_days_ago_cannot_be_restored(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Old")
    recent = await new_contact(ws, first_name="Recent")
    clock.freeze(datetime.now(UTC) - timedelta(days=31))
    try:
        assert (await ws.delete(f"/api/v1/contacts/{card['id']}")).status_code == 204
    finally:
        clock.freeze(None)
    clock.freeze(datetime.now(UTC) - timedelta(days=29))
    try:
        assert (await ws.delete(f"/api/v1/contacts/{recent['id']}")).status_code == 204
    finally:
        clock.freeze(None)
    assert_problem(await ws.post(f"/api/v1/contacts/{card['id']}/restore"), 404)
    assert (await ws.post(f"/api/v1/contacts/{recent['id']}/restore")).status_code == 200
    history = (await ws.get(f"/api/v1/contacts/{card['id']}/history")).json()["data"]
    assert [e["type"] for e in history] == ["contact.created", "contact.deleted"]


async def test_restoring_a_live_card_changes_nothing(shared_ws: Workspace) -> None:
    card = await new_contact(shared_ws, first_name="Ivan")
    response = await shared_ws.post(f"/api/v1/contacts/{card['id']}/restore")
    assert response.status_code == 200 and response.json()["version"] == 1


async def test_history_survives_deletion(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan")
    await ws.delete(f"/api/v1/contacts/{card['id']}")
    history = await ws.get(f"/api/v1/contacts/{card['id']}/history")
    assert history.status_code == 200
    assert [e["type"] for e in history.json()["data"]] == ["contact.created", "contact.deleted"]


# History

async def test_history_lists_every_change_with_actor_and_before_after(ws: Workspace) -> None:
    key_id = await api_key_id(ws)
    card = await new_contact(ws, first_name="Ivan", status="new")
    await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot", "tags": ["vip"]})
    agent = await new_user(ws, "admin")
    as_admin = await act_as(ws, agent)
    await as_admin.patch(f"/api/v1/contacts/{card['id']}", json={"last_name": "Petrov"})
    await ws.delete(f"/api/v1/contacts/{card['id']}")
    await ws.post(f"/api/v1/contacts/{card['id']}/restore")

    history = (await ws.get(f"/api/v1/contacts/{card['id']}/history")).json()["data"]
    assert [e["type"] for e in history] == ["contact.created", "contact.updated",
                                            "contact.updated", "contact.deleted",
                                            "contact.restored"]
    assert [e["actor"] for e in history] == [f"api_key:{key_id}"] * 2 + [
        f"user:{agent['id']}"] + [f"api_key:{key_id}"] * 2
    created, status_change, rename = history[0], history[1], history[2]
    assert created["before"] is None and created["after"]["first_name"] == "Ivan"
    assert "search_text" not in created["after"] and "workspace_id" not in created["after"]
    assert status_change["changed"] == ["status", "tags", "updated_at", "version"]
    assert status_change["before"] == {"status": "new", "tags": [], "version": 1,
                                       "updated_at": card["updated_at"]}
    assert status_change["after"]["status"] == "hot" and status_change["after"]["tags"] == ["vip"]
    assert rename["before"]["full_name"] == "Ivan"
    assert rename["after"]["full_name"] == "Ivan Petrov"
    assert rename["after"]["updated_by"] == f"user:{agent['id']}"
    assert all(e["entity_id"] == card["id"] and e["occurred_at"] for e in history)


async def test_history_pages_with_a_cursor(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan")
    for status in ("cold", "warm", "hot", "vip"):
        await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": status})
    first = (await ws.get(f"/api/v1/contacts/{card['id']}/history", params={"limit": 3})).json()
    rest = (await ws.get(f"/api/v1/contacts/{card['id']}/history",
                         params={"cursor": first["next_cursor"]})).json()
    assert len(first["data"]) == 3 and len(rest["data"]) == 2 and rest["next_cursor"] is None
    statuses = [e["after"].get("status") for e in first["data"] + rest["data"]]
    assert statuses == ["new", "cold", "warm", "hot", "vip"]


# Event log

async def test_events_come_in_order_and_resume_from_next_cursor(ws: Workspace) -> None:
    start = await events_since(ws, None, expect=0)
    cursor = start["next_cursor"]
    a = await new_contact(ws, first_name="A")
    await ws.patch(f"/api/v1/contacts/{a['id']}", json={"status": "hot"})
    b = await new_contact(ws, first_name="B")
    page = await events_since(ws, cursor, expect=3)
    assert [(e["type"], e["entity_id"]) for e in page["data"]] == [
        ("contact.created", a["id"]), ("contact.updated", a["id"]), ("contact.created", b["id"])]
    cursor = page["next_cursor"]

    idle = await ws.get("/api/v1/events", params={"after": cursor})
    assert idle.json() == {"data": [], "next_cursor": cursor}

    await ws.delete(f"/api/v1/contacts/{b['id']}")
    newer = await events_since(ws, cursor, expect=1)
    assert [(e["type"], e["entity_id"]) for e in newer["data"]] == [
        ("contact.deleted", b["id"])]


async def test_events_page_by_limit_without_gaps(ws: Workspace) -> None:
    start = (await ws.get("/api/v1/events")).json()
    for i in range(5):
        await new_contact(ws, first_name=f"E{i}")
    seen: list[str] = []
    cursor = start["next_cursor"]
    for _ in range(50):
        page = (await ws.get("/api/v1/events", params={"after": cursor, "limit": 2,
                                                       "types": "contact.created"})).json()
        assert len(page["data"]) <= 2
        seen += [e["after"]["first_name"] for e in page["data"]]
        cursor = page["next_cursor"]
        if len(seen) >= 5:
            break
        if not page["data"]:  # events of transactions still committing show a moment later
            await asyncio.sleep(0.1)
    assert seen == [f"E{i}" for i in range(5)]


async def test_events_filter_by_type_and_stay_in_the_workspace(ws: Workspace,
                                                               other_ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Mine")
    await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"})
    await new_contact(other_ws, first_name="Theirs")
    updates = await events_since(ws, None, expect=1, types="contact.updated")
    assert [e["type"] for e in updates["data"]] == ["contact.updated"]
    everything = (await ws.get("/api/v1/events", params={"limit": 200})).json()["data"]
    assert {e["entity_id"] for e in everything if e["entity_type"] == "contact"} == {card["id"]}
    assert "workspace.created" in {e["type"] for e in everything}


async def test_a_bad_event_cursor_is_422(shared_ws: Workspace) -> None:
    assert_problem(await shared_ws.get("/api/v1/events", params={"after": "nonsense"}), 422)
    assert_problem(await shared_ws.get("/api/v1/events", params={"limit": 201}), 422)


# Problem details, request ids, rate limits

@pytest.mark.parametrize("method,url,status", [
    ("GET", "/api/v1/nothing-here", 404),
    ("DELETE", "/api/v1/contacts", 405),
    ("GET", "/api/v1/contacts/0190b6a2-0000-7000-8000-000000000000", 404),
])
async def test_errors_are_problem_json(shared_ws: Workspace, method: str, url: str,
                                       status: int) -> None:
    response = await shared_ws.client.request(method, url, headers=shared_ws.auth)
    assert_problem(response, status)


async def test_json_media_types_with_parameters_or_suffixes_are_accepted(shared_ws: Workspace) -> None:
    for content_type in ["application/json; charset=utf-8", "application/merge-patch+json"]:
        response = await shared_ws.post("/api/v1/contacts", content=b'{"first_name": "Typed"}',
                                 headers={"Content-Type": content_type})
        assert response.status_code == 201, (content_type, response.text)


async def test_malformed_json_is_400_problem(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts", content=b'{"first_name": ',
                             headers={"Content-Type": "application/json"})
    body = assert_problem(response, 400)
    assert body["title"] == "Malformed request"


async def test_a_body_that_is_not_json_is_415(shared_ws: Workspace) -> None:
    for content_type in ["application/x-www-form-urlencoded", "text/plain", None]:
        headers = {"Content-Type": content_type} if content_type else {}
        response = await shared_ws.post("/api/v1/contacts", content=b"first_name=Formy",
                                 headers=headers)
        assert_problem(response, 415)
    assert (await shared_ws.get("/api/v1/contacts", params={"q": "formy"})).json()["data"] == []


async def test_a_body_over_ten_megabytes_is_413(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts", content=b" " * (10 * 1024 * 1024 + 1),
                             headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


async def chunks_of(total: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.parametrize("idempotency_key", [None, "chunked-and-huge"])
async def test_a_chunked_body_over_ten_megabytes_is_413_too(
        shared_ws: Workspace, idempotency_key: str | None) -> None:
    """With no Content-Length the cap is counted as the body streams in; with an
    Idempotency-Key (whose middleware reads the body first) as well. Nothing is stored, and
    the key is not spent."""
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = await shared_ws.post("/api/v1/contacts", content=chunks_of(11 * 1024 * 1024),
                                    headers=headers)
    assert "content-length" not in response.request.headers
    body = assert_problem(response, 413)
    assert body["type"].endswith("/too-large")
    if idempotency_key:
        retried = await shared_ws.post("/api/v1/contacts", json={"first_name": "Chunky"},
                                       headers=headers)
        assert retried.status_code == 201, retried.text


async def test_validation_problem_lists_each_error_with_loc_msg_type(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts", json={"first_name": 1, "birthday": "soon"})
    body = assert_problem(response, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "first_name"),
                                                         ("body", "birthday")}
    assert all(set(e) == {"loc", "msg", "type"} and e["msg"] for e in body["errors"])


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer rlk_" + "0" * 60}, {"Authorization": "Bearer rlk_short"},
    {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"},
    {"Authorization": "Bearer " + "x" * 5000},
])
async def test_missing_or_bad_credentials_are_401(client: httpx.AsyncClient,
                                                  headers: dict[str, str]) -> None:
    response = await client.get("/api/v1/contacts", headers=headers)
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate", "").startswith("Bearer")


async def test_request_id_is_echoed_or_assigned(shared_ws: Workspace) -> None:
    echoed = await shared_ws.get("/api/v1/contacts", headers={"X-Request-ID": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    assigned = await shared_ws.get("/api/v1/contacts")
    assert len(assigned.headers["x-request-id"]) >= 16
    on_error = await shared_ws.get("/api/v1/nothing", headers={"X-Request-ID": "req-404"})
    assert on_error.headers["x-request-id"] == "req-404"
    too_long = await shared_ws.get("/api/v1/contacts", headers={"X-Request-ID": "r" * 500})
    assert too_long.headers["x-request-id"] != "r" * 500


async def test_rate_limit_headers_are_sent(shared_ws: Workspace) -> None:
    first = await shared_ws.get("/api/v1/contacts")
    second = await shared_ws.get("/api/v1/contacts")
    limit = int(first.headers["ratelimit-limit"])
    assert limit == 100_000
    assert int(second.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    assert 0 < int(first.headers["ratelimit-reset"]) <= 60


async def test_far_from_the_limit_hits_are_counted_a_few_at_a_time(shared_ws: Workspace,
                                                                 app: Any) -> None:
    """Far below its limit, a caller's requests are numbered from a lease of hits counted in
    Redis ahead (decision 0064): each still counts one, but Redis is asked once per eight."""
    redis = app.state.resources.redis

    async def incrbys() -> int:
        return int((await redis.info("commandstats")).get("cmdstat_incrby", {}).get("calls", 0))

    for _attempt in range(2):  # a minute's window may close in between: once more then
        before = await incrbys()
        answers = [await shared_ws.get("/api/v1/contacts", params={"limit": 1})
                   for _ in range(16)]
        calls = await incrbys() - before
        remaining = [int(a.headers["ratelimit-remaining"]) for a in answers]
        resets = [int(a.headers["ratelimit-reset"]) for a in answers]
        if resets == sorted(resets, reverse=True):
            assert remaining == [remaining[0] - i for i in range(16)], remaining
            assert calls <= 3, calls  # 16 hits: two leases of eight (three if one was open)
            return
    raise AssertionError("two windows closed during the test")


async def test_leases_never_let_two_processes_past_the_limit(app: Any) -> None:
    """Two processes taking turns past a limit of 300: each number is given once, exactly
    300 are within the limit, and every request after those is refused. Near the limit the
    leases are single hits, so a process that stops there leaves none unused."""
    res = app.state.resources
    for _attempt in range(2):  # a minute's window may close in between: once more then
        window = int(time.time() // 60)
        subject = f"test-lease-{uuid.uuid4()}"
        processes = [RateLeases(), RateLeases()]
        numbers = [await count_hit(res, subject, leases=processes[i % 2], limit=300)
                   for i in range(400)]
        if int(time.time() // 60) != window:
            continue
        assert all(n is not None for n in numbers)
        assert sorted(numbers) == list(range(1, 401))  # type: ignore[type-var]
        assert [n for n in numbers if n <= 300][-1] == 300  # type: ignore[operator]
        assert all(n > 300 for n in numbers[300:])  # type: ignore[operator]
        # One process stops near the limit (250 hits), the other goes on: the leases had
        # shrunk to one hit, so none of the 300 is lost to a lease left unused.
        subject = f"test-lease-{uuid.uuid4()}"
        first, second = RateLeases(), RateLeases()
        numbers = [await count_hit(res, subject, leases=first, limit=300) for _ in range(250)]
        numbers += [await count_hit(res, subject, leases=second, limit=300) for _ in range(60)]
        if int(time.time() // 60) != window:
            continue
        assert sum(n <= 300 for n in numbers) == 300  # type: ignore[operator]
        return
    raise AssertionError("two windows closed during the test")


async def test_over_the_rate_limit_is_429_with_retry_after(
        limited_client: httpx.AsyncClient) -> None:
    ws = await make_workspace(limited_client)
    for _ in range(3):
        assert (await ws.get("/api/v1/contacts")).status_code == 200
    response = await ws.get("/api/v1/contacts")
    assert_problem(response, 429)
    assert 0 < int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["ratelimit-limit"] == "3"
    # the limit is per credential: another key of the same workspace still gets through
    other = await make_workspace(limited_client)
    assert (await other.get("/api/v1/contacts")).status_code == 200


async def test_a_rate_limited_write_is_not_applied_and_its_key_can_be_retried(
        limited_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    ws = await make_workspace(limited_client)
    for _ in range(3):
        await ws.get("/api/v1/contacts")
    key = {"Idempotency-Key": "retry-me"}
    limited = await ws.post("/api/v1/contacts", json={"first_name": "Late"}, headers=key)
    assert_problem(limited, 429)
    unlimited = with_client(ws, client)
    assert (await unlimited.get("/api/v1/contacts")).json()["data"] == []
    retried = await unlimited.post("/api/v1/contacts", json={"first_name": "Late"}, headers=key)
    assert retried.status_code == 201, retried.text


async def test_sign_up_is_limited_per_address(settings: Settings) -> None:
    """The public sign-up opens RELATA_SIGNUPS_PER_MINUTE workspaces a minute per client
    address; beyond, a 429 with Retry-After, and nothing is created. Other addresses are
    not affected."""
    strict = create_app(settings.model_copy(update={"signups_per_minute": 2}))

    def client_at(ip: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=strict, client=(ip, 40000)),
                                 base_url="http://relata.test")

    async with LifespanManager(strict):
        for _ in range(2):  # a second try only if a minute's window closed in between
            window = int(time.time() // 60)
            async with client_at(f"203.0.113.{uuid.uuid4().int % 250}") as signer:
                made = [await make_workspace(signer) for _ in range(2)]
                email = f"late-{uuid.uuid4().hex[:8]}@example.com"
                limited = await signer.post("/api/v1/workspaces", json={
                    "name": "Too many", "owner_email": email,
                    "owner_password": "correct horse battery"})
            if int(time.time() // 60) == window:
                break
        assert len(made) == 2
        assert_problem(limited, 429)
        assert 0 < int(limited.headers["retry-after"]) <= 60
        async with client_at("198.51.100.7") as other:
            assert (await make_workspace(other)).api_key
            # nothing was created for the refused sign-up: its owner cannot log in
            token = await other.post("/api/v1/auth/token", data={
                "grant_type": "password", "username": email,
                "password": "correct horse battery"})
    assert_problem(token, 400)  # invalid_grant: no such login
