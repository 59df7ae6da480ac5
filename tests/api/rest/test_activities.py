"""Activities: calls, emails, SMS, messages, meetings and notes logged on customer records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db import unit_of_work
from app.domain.deals.rotting import flag_rotting_deals
from tests.api.rest.conftest import (
    act_as,
    all_pages,
    assert_problem,
    error_locs,
    events_since,
    new_company,
    new_contact,
    new_user,
)
from tests.conftest import Workspace

URL = "/api/v1/activities"
RECORDING = "https://pbx.example/recordings/2026/11/23/call-1.mp3"


async def log(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post(URL, json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed(ws: Workspace, **params: Any) -> list[str]:
    response = await ws.get(URL, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [a["subject"] or a["type"] for a in response.json()["data"]]


async def event_log_cursor(ws: Workspace) -> str | None:
    """Where the workspace's event log ends now, to read only what happens next."""
    return (await ws.get("/api/v1/events", params={"limit": 200})).json()["next_cursor"]


async def test_a_missed_incoming_call_with_a_recording_is_logged(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Anna", phones=["+7 495 123-45-67"])
    cursor = await event_log_cursor(ws)
    response = await ws.post(URL, json={
        "type": "call", "direction": "in", "contact_id": card["id"],
        "from_number": "8 (495) 123-45-67", "to_number": "101", "call_status": "missed",
        "duration_seconds": 0, "recording_url": RECORDING,
        "occurred_at": "2026-11-23T10:15:00+03:00", "external_id": "pbx-call-1"})
    assert response.status_code == 201, response.text
    call = response.json()
    assert response.headers["location"] == f"{URL}/{call['id']}"
    assert response.headers["etag"] == '"1"'
    assert (call["type"], call["direction"], call["channel"], call["call_status"]) == (
        "call", "in", "phone", "missed")
    assert (call["from_number"], call["to_number"]) == ("+74951234567", "101")
    assert call["recording_url"] == RECORDING and call["duration_seconds"] == 0
    assert call["occurred_at"] == "2026-11-23T07:15:00Z"
    assert call["contact_id"] == card["id"] and call["owner_id"] is None  # logged by a key
    assert (await ws.get(f"{URL}/{call['id']}")).json() == call

    body = await events_since(ws, cursor, expect=2, types="activity.created,call.missed,"
                                                          "call.logged")
    assert [(e["type"], e["entity_type"], e["entity_id"]) for e in body["data"]] == [
        ("activity.created", "activity", call["id"]), ("call.missed", "activity", call["id"])]
    assert body["data"][1]["after"]["recording_url"] == RECORDING


@pytest.mark.parametrize("direction,status", [("out", "answered"), ("in", "answered"),
                                              ("out", "missed"), ("in", "busy")])
async def test_any_other_call_is_call_logged(shared_ws: Workspace, direction: str,
                                             status: str) -> None:
    card = await new_contact(shared_ws, first_name="Boris")
    cursor = await event_log_cursor(shared_ws)
    call = await log(shared_ws, type="call", direction=direction, call_status=status,
                     duration_seconds=125, contact_id=card["id"])
    body = await events_since(shared_ws, cursor, expect=1, types="call.missed,call.logged")
    assert [(e["type"], e["entity_id"]) for e in body["data"]] == [("call.logged", call["id"])]


async def test_emails_sms_messages_and_meetings(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Vera")
    company = await new_company(ws, name="Okna Plus")
    email = await log(ws, type="email", direction="out", contact_id=card["id"],
                      subject="Your offer", body="Dear Vera, …",
                      participants=[{"name": "Vera", "email": " Vera@Example.COM "},
                                    {"user_id": ws.owner_id}])
    assert email["channel"] == "email"
    assert email["participants"] == [
        {"name": "Vera", "email": "vera@example.com", "phone": None, "user_id": None},
        {"name": None, "email": None, "phone": None, "user_id": ws.owner_id}]
    sms = await log(ws, type="sms", direction="in", contact_id=card["id"], body="Call me",
                    participants=[{"phone": "8 916 123-45-67"}])
    assert sms["channel"] == "sms" and sms["participants"][0]["phone"] == "+79161234567"
    message = await log(ws, type="message", direction="in", channel="whatsapp",
                        company_id=company["id"], body="Hello")
    assert message["channel"] == "whatsapp" and message["contact_id"] is None
    meeting = await log(ws, type="meeting", subject="Measurement visit", contact_id=card["id"],
                        company_id=company["id"], data={"address": "Tverskaya 1"})
    assert meeting["direction"] is None and meeting["data"] == {"address": "Tverskaya 1"}
    assert sorted(await listed(ws, contact_id=card["id"])) == sorted(
        ["Your offer", "sms", "Measurement visit"])
    assert sorted(await listed(ws, company_id=company["id"])) == sorted(
        ["message", "Measurement visit"])


async def test_a_note_mentioning_users_notifies_each_once(ws: Workspace) -> None:
    manager = await new_user(ws, "manager", "Marina Volkova")
    oleg = await new_user(ws, "agent", "Oleg")
    dina = await new_user(ws, "agent", "Dina")
    card = await new_contact(ws, first_name="Anna", owner_id=manager["id"])
    as_marina = await act_as(ws, manager)
    note = await log(as_marina, type="note", contact_id=card["id"],
                     body="@Oleg please call Anna back tomorrow",
                     mentions=[oleg["id"], oleg["id"], manager["id"]])
    assert note["owner_id"] == manager["id"] and note["mentions"] == [oleg["id"],
                                                                      manager["id"]]
    as_oleg, as_dina = await act_as(ws, oleg), await act_as(ws, dina)

    async def mentions_of(user_ws: Workspace) -> list[dict[str, Any]]:
        response = await user_ws.get("/api/v1/notifications", params={"type": "mention"})
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]

    told = await mentions_of(as_oleg)
    assert [(n["entity_type"], n["entity_id"]) for n in told] == [("activity", note["id"])]
    assert told[0]["title"] == "Marina Volkova mentioned you in a note"
    assert told[0]["body"] == "@Oleg please call Anna back tomorrow"
    assert await mentions_of(as_marina) == []  # mentioning yourself tells nobody
    # Oleg cannot see Anna's card, but he can open the note he was mentioned in.
    assert_problem(await as_oleg.get(f"/api/v1/contacts/{card['id']}"), 404)
    assert (await as_oleg.get(f"{URL}/{note['id']}")).json()["body"] == note["body"]
    assert_problem(await as_oleg.patch(f"{URL}/{note['id']}", json={"body": "x"}), 404)

    patched = await as_marina.patch(f"{URL}/{note['id']}", json={
        "mentions": [oleg["id"], dina["id"]], "body": "@Oleg @Dina call Anna"})
    assert patched.status_code == 200, patched.text
    assert len(await mentions_of(as_dina)) == 1
    assert len(await mentions_of(as_oleg)) == 1  # not told twice
    assert_problem(await ws.patch(f"{URL}/{note['id']}", json={
        "mentions": ["0190b6a2-0000-7000-8000-000000000000"]}), 422)


@pytest.mark.parametrize("fields,locs", [
    ({"type": "note", "body": "x", "from_number": "+74951234567"}, [["body", "from_number"]]),
    ({"type": "note", "body": "x", "call_status": "missed", "duration_seconds": 5},
     [["body", "call_status"], ["body", "duration_seconds"]]),
    ({"type": "email", "direction": "out", "recording_url": RECORDING},
     [["body", "recording_url"]]),
    ({"type": "call"}, [["body", "direction"]]),
    ({"type": "sms", "body": "hi"}, [["body", "direction"]]),
    ({"type": "meeting", "direction": "out"}, [["body", "direction"]]),
    ({"type": "email", "direction": "in", "mentions": ["{owner}"]}, [["body", "mentions"]]),
    ({"type": "fax", "direction": "in"}, [["body", "type"]]),
    ({"type": "call", "direction": "sideways"}, [["body", "direction"]]),
    ({"type": "call", "direction": "in", "call_status": "lost"}, [["body", "call_status"]]),
    ({"type": "call", "direction": "in", "duration_seconds": -1},
     [["body", "duration_seconds"]]),
    ({"type": "call", "direction": "in", "recording_url": "ftp://pbx.example/1.mp3"},
     [["body", "recording_url"]]),
    ({"type": "call", "direction": "in", "from_number": "12"}, None),  # an extension is fine
    ({"type": "call", "direction": "in", "from_number": "not a phone"},
     [["body", "from_number"]]),
    ({"type": "note", "occurred_at": "2026-11-23T10:00:00"}, [["body", "occurred_at"]]),
    ({"type": "note", "occurred_at": "0001-01-01T00:00:00+01:00"}, [["body", "occurred_at"]]),
    ({"type": "note", "body": "x" * 100_001}, [["body", "body"]]),
    ({"type": "note", "body": "nul \u0000"}, [["body", "body"]]),
    ({"type": "note", "data": {"k": "nul \u0000"}}, [["body", "data"]]),
    ({"type": "note", "participants": [{}]}, [["body", "participants", 0]]),
    ({"type": "note", "participants": [{"email": "nope"}]},
     [["body", "participants", 0, "email"]]),
    ({"type": "note", "owner_id": "0190b6a2-0000-7000-8000-000000000000"},
     [["body", "owner_id"]]),
    ({"type": "note", "id": "0190b6a2-0000-7000-8000-000000000000"}, [["body", "id"]]),
    ({"type": "note", "version": 2}, [["body", "version"]]),
])
async def test_invalid_activity_is_422_naming_the_field(
        shared_ws: Workspace, fields: dict[str, Any], locs: list[list[Any]] | None) -> None:
    card = await new_contact(shared_ws, first_name="Target")
    fields = {"contact_id": card["id"], **fields}
    if "mentions" in fields:
        fields["mentions"] = [shared_ws.owner_id]
    response = await shared_ws.post(URL, json=fields)
    if locs is None:
        assert response.status_code == 201, response.text
        return
    assert_problem(response, 422)
    assert error_locs(response) == locs
    assert await listed(shared_ws, contact_id=card["id"]) == []


async def test_an_activity_links_to_visible_live_records(ws: Workspace,
                                                         other_ws: Workspace) -> None:
    response = await ws.post(URL, json={"type": "note", "body": "about nobody"})
    assert_problem(response, 422)
    assert error_locs(response) == [["body"]]
    theirs = await new_contact(other_ws, first_name="Theirs")
    response = await ws.post(URL, json={"type": "note", "contact_id": theirs["id"]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "contact_id"]]
    gone = await new_contact(ws, first_name="Gone")
    await ws.delete(f"/api/v1/contacts/{gone['id']}")
    assert error_locs(await ws.post(URL, json={"type": "note", "contact_id": gone["id"]})) == [
        ["body", "contact_id"]]
    for field in ("company_id", "deal_id"):
        response = await ws.post(URL, json={"type": "note", field: theirs["id"]})
        assert error_locs(response) == [["body", field]]

    agent = await new_user(ws, "agent")
    other_agents = await new_contact(ws, first_name="Not yours",
                                     owner_id=(await new_user(ws, "agent"))["id"])
    response = await (await act_as(ws, agent)).post(URL, json={
        "type": "note", "contact_id": other_agents["id"]})
    assert error_locs(response) == [["body", "contact_id"]]


async def test_update_delete_restore_and_history(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Gleb")
    other = await new_contact(ws, first_name="Olga")
    call = await log(ws, type="call", direction="out", contact_id=card["id"],
                     call_status="answered", duration_seconds=60)
    url = f"{URL}/{call['id']}"
    patched = await ws.patch(url, json={"duration_seconds": 75, "body": "Agreed on Friday",
                                        "contact_id": other["id"]},
                             headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["duration_seconds"], patched.json()["contact_id"],
            patched.json()["version"]) == (75, other["id"], 2)
    assert patched.headers["etag"] == '"2"'
    assert_problem(await ws.patch(url, json={"body": "stale"}, headers={"If-Match": '"1"'}),
                   412)
    # Turning the call into a note needs its call fields and direction cleared too.
    response = await ws.patch(url, json={"type": "note"})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "direction"], ["body", "call_status"],
                                    ["body", "duration_seconds"]]
    assert error_locs(await ws.patch(url, json={"type": None})) == [["body", "type"]]
    assert error_locs(await ws.patch(url, json={"occurred_at": None})) == [
        ["body", "occurred_at"]]
    assert error_locs(await ws.patch(url, json={"contact_id": None})) == [["body"]]
    noted = await ws.patch(url, json={"type": "note", "direction": None, "call_status": None,
                                      "duration_seconds": None})
    assert noted.status_code == 200, noted.text
    assert noted.json()["type"] == "note" and noted.json()["channel"] == "phone"
    unchanged = await ws.patch(url, json={"body": "Agreed on Friday"})
    assert unchanged.json()["version"] == 3

    assert (await ws.delete(url, headers={"If-Match": '"3"'})).status_code == 204
    assert_problem(await ws.get(url), 404)
    assert await listed(ws, contact_id=other["id"]) == []
    assert await listed(ws, contact_id=other["id"], include_deleted="true") == ["note"]
    restored = await ws.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = (await ws.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in history] == ["activity.created", "call.logged",
                                            "activity.updated", "activity.updated",
                                            "activity.deleted", "activity.restored"]
    assert history[2]["before"]["contact_id"] == card["id"]
    assert history[2]["after"]["contact_id"] == other["id"]


async def test_list_filters_sort_and_search(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Lena")
    agent = await new_user(ws, "agent")
    await log(ws, type="call", direction="in", call_status="missed", contact_id=card["id"],
              subject="missed-1", occurred_at="2026-11-20T09:00:00Z")
    await log(ws, type="call", direction="out", call_status="answered", contact_id=card["id"],
              subject="answered-2", occurred_at="2026-11-21T09:00:00Z", owner_id=agent["id"])
    await log(ws, type="email", direction="out", contact_id=card["id"], subject="email-3",
              body="The price is 120 000 ₽", occurred_at="2026-11-22T09:00:00+03:00")
    assert await listed(ws) == ["email-3", "answered-2", "missed-1"]  # newest first
    assert await listed(ws, sort="occurred_at") == ["missed-1", "answered-2", "email-3"]
    assert await listed(ws, type="call") == ["answered-2", "missed-1"]
    assert await listed(ws, call_status="missed", direction="in") == ["missed-1"]
    assert await listed(ws, owner_id=agent["id"]) == ["answered-2"]
    assert await listed(ws, occurred_at__gte="2026-11-21T00:00:00Z",
                        occurred_at__lt="2026-11-22T07:00:00+01:00") == ["answered-2"]
    assert await listed(ws, q="120 000") == ["email-3"]
    assert_problem(await ws.get(URL, params={"q": "nul \x00"}), 422)
    assert_problem(await ws.get(URL, params={"duration_seconds__gte": 10**30}), 422)
    assert_problem(await ws.get(URL, params={"occurred_at__gte": "2026-11-21T00:00:00"}), 422)
    assert_problem(await ws.get(URL, params={"nope": "1"}), 422)
    assert_problem(await ws.get(URL, params={"limit": 201}), 422)
    search = await ws.post(f"{URL}/search", json={"filter": {"or": [
        {"field": "call_status", "op": "eq", "value": "missed"},
        {"field": "type", "op": "eq", "value": "email"}]}, "sort": "occurred_at"})
    assert search.status_code == 200, search.text
    assert [a["subject"] for a in search.json()["data"]] == ["missed-1", "email-3"]
    paged = await all_pages(ws, URL, limit=1)
    assert [a["subject"] for a in paged] == ["email-3", "answered-2", "missed-1"]


async def test_batch_upserts_on_external_id(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Pavel")
    items = [{"type": "call", "direction": "in", "call_status": "answered",
              "contact_id": card["id"], "external_id": f"pbx-{i}", "duration_seconds": i}
             for i in range(3)]
    items.append({"type": "note", "contact_id": card["id"], "call_status": "missed"})
    response = await ws.post(f"{URL}/batch", json={"items": items, "upsert_on": "external_id"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "created", "error"]
    assert results[3]["error"]["status"] == 422
    again = await ws.post(f"{URL}/batch", json={"upsert_on": "external_id", "items": [
        {**items[0], "duration_seconds": 99}, items[1]]})
    assert [r["status"] for r in again.json()["results"]] == ["updated", "unchanged"]
    assert again.json()["results"][0]["id"] == results[0]["id"]
    assert (await ws.get(f"{URL}/{results[0]['id']}")).json()["duration_seconds"] == 99
    duplicate = await ws.post(URL, json=items[0])
    assert assert_problem(duplicate, 409)["existing_id"] == results[0]["id"]
    bad = await ws.post(f"{URL}/batch", json={"items": items[:1], "upsert_on": "email"})
    assert_problem(bad, 422)


async def test_agents_see_activities_of_their_records_and_their_own(ws: Workspace) -> None:
    """An activity is visible with its owner or any record it is linked to: when Anna's card
    moves to a new agent, the new agent sees every call on it."""
    anna_agent, boris_agent = await new_user(ws, "agent"), await new_user(ws, "agent")
    as_a, as_b = await act_as(ws, anna_agent), await act_as(ws, boris_agent)
    a_card = await new_contact(as_a, first_name="A's customer")
    b_card = await new_contact(as_b, first_name="B's customer")
    a_call = await log(as_a, type="call", direction="out", contact_id=a_card["id"],
                       subject="a-call")
    b_call = await log(as_b, type="call", direction="out", contact_id=b_card["id"],
                       subject="b-call")
    assert await listed(as_a) == ["a-call"]
    assert await listed(as_b) == ["b-call"]
    assert_problem(await as_a.get(f"{URL}/{b_call['id']}"), 404)
    assert_problem(await as_a.patch(f"{URL}/{b_call['id']}", json={"body": "x"}), 404)
    assert_problem(await as_a.delete(f"{URL}/{b_call['id']}"), 404)
    assert_problem(await as_a.get(f"{URL}/{b_call['id']}/history"), 404)
    assert sorted(await listed(ws)) == ["a-call", "b-call"]  # the API key sees all

    # B leaves; A takes over B's customer and sees the whole history of the card.
    moved = await ws.patch(f"/api/v1/contacts/{b_card['id']}",
                           json={"owner_id": anna_agent["id"]})
    assert moved.status_code == 200, moved.text
    assert sorted(await listed(as_a)) == ["a-call", "b-call"]
    assert (await as_a.get(f"{URL}/{b_call['id']}")).status_code == 200
    # B still sees the call B handled, though not the card any more.
    assert sorted(await listed(as_b)) == ["b-call"]
    assert a_call["owner_id"] == anna_agent["id"]


async def test_read_only_keys_and_other_workspaces(ws: Workspace, other_ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Mine")
    note = await log(ws, type="note", contact_id=card["id"], body="private")
    url = f"{URL}/{note['id']}"
    for response in (await other_ws.get(url), await other_ws.patch(url, json={"body": "x"}),
                     await other_ws.delete(url), await other_ws.post(f"{url}/restore"),
                     await other_ws.get(f"{url}/history")):
        assert_problem(response, 404)
    assert await listed(other_ws) == []
    key = await ws.post("/api/v1/api-keys", json={"name": "reports", "scope": "read"})
    assert key.status_code == 201, key.text
    reader = Workspace(id=ws.id, owner_id=ws.owner_id, api_key=key.json()["key"],
                       client=ws.client)
    assert (await reader.get(url)).status_code == 200
    assert_problem(await reader.post(URL, json={"type": "note", "contact_id": card["id"]}), 403)
    assert_problem(await reader.patch(url, json={"body": "x"}), 403)
    assert_problem(await reader.delete(url), 403)


async def test_an_activity_on_a_deal_ends_its_idle_period(app: Any, ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Slow buyer")
    created = await ws.post("/api/v1/deals", json={"title": "Balcony", "contact_ids": [
        card["id"]]})
    assert created.status_code == 201, created.text
    deal = created.json()
    # "New request" rots after a day: two days later the sweep flags the deal.
    async with unit_of_work(app.state.resources.sessions, uuid.UUID(ws.id)) as session:
        flagged = await flag_rotting_deals(session, uuid.UUID(ws.id),
                                           datetime.now(UTC) + timedelta(days=2))
    assert flagged == 1
    rotting = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert rotting["rotting"] is True and rotting["last_activity_at"] is None

    before = datetime.now(UTC)
    # A meeting planned for next week counts as activity now, not next week.
    await log(ws, type="meeting", deal_id=deal["id"], subject="Visit",
              occurred_at=(before + timedelta(days=7)).isoformat())
    fresh = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert fresh["rotting"] is False and fresh["rotting_since"] is None
    assert before <= datetime.fromisoformat(fresh["last_activity_at"]) <= datetime.now(UTC)

    # An activity on another deal leaves this one alone.
    async with unit_of_work(app.state.resources.sessions, uuid.UUID(ws.id)) as session:
        await flag_rotting_deals(session, uuid.UUID(ws.id),
                                 datetime.now(UTC) + timedelta(days=2))
    other = (await ws.post("/api/v1/deals", json={"title": "Other"})).json()
    await log(ws, type="note", deal_id=other["id"], body="hello")
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["rotting"] is True
