"""Telephony through the public API: signed call events, the screen pop, idempotent and
out-of-order events, missed calls → call-back tasks and `call.missed`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.api.rest.conftest import assert_problem, events_since, new_contact, new_user
from tests.api.rest.signed import call, new_integration, post_signed, signed
from tests.conftest import Workspace

CALLS = "/api/v1/integrations/telephony/calls"


def call_id() -> str:
    return f"{time.time():.6f}-{uuid.uuid4().hex[:6]}"


async def test_signature_is_required_and_checked(client: httpx.AsyncClient, ws: Workspace,
                                                 other_ws: Workspace) -> None:
    pbx = await new_integration(ws)
    mail = await new_integration(ws, "email")
    theirs = await new_integration(other_ws)
    event = {"call_id": call_id(), "direction": "in", "from": "+74951112233",
             "to": "+74950000000", "status": "ringing"}
    # No headers at all, a wrong secret, a stale timestamp, an integration of another kind,
    # and another workspace's integration id with our secret: 401, nothing written.
    assert_problem(await client.post(CALLS, json=event), 401)
    assert_problem(await post_signed(client, CALLS, pbx, event, secret=theirs["secret"]), 401)
    stale = await post_signed(client, CALLS, pbx, event, timestamp=int(time.time()) - 600)
    assert "webhook-timestamp" in assert_problem(stale, 401)["detail"]
    assert_problem(await post_signed(client, CALLS, mail, event), 401)
    assert_problem(await post_signed(client, CALLS, pbx, event,
                                     integration_id=theirs["id"]), 401)
    assert_problem(await post_signed(client, CALLS, pbx, event,
                                     integration_id="not-a-uuid"), 401)
    lookup = await ws.get("/api/v1/contacts/lookup", params={"phone": "+74951112233"})
    assert lookup.status_code == 404
    # Tampered body: signed for one payload, another sent.
    body, headers = signed(pbx, event)
    assert_problem(await client.post(CALLS, content=body.replace(b"ringing", b"missed"),
                                     headers=headers), 401)
    # The secret is never shown again.
    read = await ws.get(f"/api/v1/integrations/{pbx['id']}")
    assert read.status_code == 200 and "secret" not in read.json()
    listed = await ws.get("/api/v1/integrations")
    assert all("secret" not in i for i in listed.json()["data"])
    assert (await other_ws.get(f"/api/v1/integrations/{pbx['id']}")).status_code == 404
    # Properly signed, it works, and the integration shows it was used.
    assert read.json()["last_used_at"] is None
    assert (await post_signed(client, CALLS, pbx, event)).status_code == 200
    used = (await ws.get(f"/api/v1/integrations/{pbx['id']}")).json()
    assert used["last_used_at"] is not None and used["version"] == read.json()["version"]


async def test_rotation_and_disabling(client: httpx.AsyncClient, ws: Workspace) -> None:
    pbx = await new_integration(ws)
    rotated = await ws.post(f"/api/v1/integrations/{pbx['id']}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != pbx["secret"]
    event = {"call_id": call_id(), "direction": "in", "from": "+74951112234",
             "to": "+74950000000", "status": "ringing"}
    # The old secret still works during the grace period, and the new one does.
    assert (await post_signed(client, CALLS, pbx, event)).status_code == 200
    assert (await post_signed(client, CALLS, pbx, event, secret=new_secret)).status_code == 200
    off = await ws.patch(f"/api/v1/integrations/{pbx['id']}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert_problem(await post_signed(client, CALLS, pbx, event, secret=new_secret), 401)
    assert (await ws.delete(f"/api/v1/integrations/{pbx['id']}")).status_code == 204
    assert (await ws.get(f"/api/v1/integrations/{pbx['id']}")).status_code == 404


async def test_screen_pop_for_a_known_number(client: httpx.AsyncClient, ws: Workspace) -> None:
    manager = await new_user(ws, "manager", "Olga Manager")
    card = await new_contact(ws, full_name="Ivan Petrov", phones=["+7 495 123-45-67"],
                             owner_id=manager["id"], timezone="Asia/Vladivostok")
    deal = await ws.post("/api/v1/deals", json={"title": "Windows x3",
                                               "contact_ids": [card["id"]], "amount": "1200"})
    assert deal.status_code == 201, deal.text
    task = await ws.post("/api/v1/tasks", json={"title": "Send the offer",
                                               "contact_id": card["id"]})
    assert task.status_code == 201
    note = await ws.post("/api/v1/activities", json={"type": "note", "body": "Wants white",
                                                    "contact_id": card["id"]})
    assert note.status_code == 201
    pbx = await new_integration(ws, config={"extensions": {"101": manager["id"]}})
    response = await call(client, pbx, call_id=call_id(), **{"from": "8 (495) 123-45-67"},
                          status="ringing", extension="101")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contact_id"] == card["id"] and body["contact_created"] is False
    assert body["inbox_item_id"] is None and body["user_id"] == manager["id"]
    pop = body["screen_pop"]
    assert pop["contact"]["full_name"] == "Ivan Petrov"
    assert pop["contact"]["owner"]["full_name"] == "Olga Manager"
    assert pop["contact"]["timezone"] == "Asia/Vladivostok" and pop["contact"]["local_time"]
    assert [d["title"] for d in pop["open_deals"]] == ["Windows x3"]
    assert pop["open_deals"][0]["stage_name"]
    assert [t["title"] for t in pop["open_tasks"]] == ["Send the offer"]
    assert [a["type"] for a in pop["last_interactions"]] == ["note"]
    # The call is on the timeline.
    activity = (await ws.get(f"/api/v1/activities/{body['activity_id']}")).json()
    assert activity["type"] == "call" and activity["direction"] == "in"
    assert activity["from_number"] == "+74951234567" and activity["owner_id"] == manager["id"]


async def test_a_ringing_call_writes_the_activity_and_events_an_api_call_would(
        client: httpx.AsyncClient, ws: Workspace) -> None:
    """A known caller's first `ringing` event is written below the ORM (decision 0060): the
    call and its `activity.created` / `call.logged` events have the same shape and values as
    an activity created through `POST /activities`."""
    card = await new_contact(ws, full_name="Pavel Sidorov", phones=["+7 495 765-43-21"])
    pbx = await new_integration(ws)
    cursor = (await ws.get("/api/v1/events", params={"limit": 200})).json()["next_cursor"]
    ringing = await call(client, pbx, call_id=call_id(), **{"from": "+7 495 765-43-21"},
                         to="+74950000000", status="ringing")
    assert ringing.status_code == 200, ringing.text
    activity_id = ringing.json()["activity_id"]
    api = await ws.post("/api/v1/activities", json={
        "type": "call", "direction": "in", "contact_id": card["id"],
        "from_number": "+7 495 765-43-21", "to_number": "+74950000000",
        "data": {"via": "api"}})
    assert api.status_code == 201, api.text
    body = await events_since(ws, cursor, expect=4, types="activity.created,call.logged")
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for event in body["data"]:
        by_entity.setdefault(event["entity_id"], []).append(event)
    ours, theirs = by_entity[activity_id], by_entity[api.json()["id"]]
    assert [e["type"] for e in ours] == [e["type"] for e in theirs] == [
        "activity.created", "call.logged"]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine["after"] == ours[0]["after"] and mine["before"] is None
        assert set(mine["after"]) == set(other["after"])
        for event in (mine, other):  # a new record's event names the fields it has
            assert event["changed"] == sorted(k for k, v in event["after"].items()
                                              if v is not None)
    after = ours[0]["after"]
    read = (await ws.get(f"/api/v1/activities/{activity_id}")).json()
    assert {k: v for k, v in after.items() if k in read} == {
        k: v for k, v in read.items() if k in after}
    assert (after["type"], after["direction"], after["channel"], after["contact_id"],
            after["from_number"], after["version"]) == (
        "call", "in", "phone", card["id"], "+74957654321", 1)
    assert after["data"]["status"] == "ringing" and after["data"]["contact_created"] is False
    assert after["external_id"].startswith("call:")
    # It is an ordinary record from then on: a later event of the call updates it.
    answered = await call(client, pbx, call_id=after["data"]["call_id"],
                          **{"from": "+7 495 765-43-21"}, to="+74950000000",
                          status="answered")
    assert answered.status_code == 200 and answered.json()["activity_id"] == activity_id
    updated = (await ws.get(f"/api/v1/activities/{activity_id}")).json()
    assert updated["version"] == 2 and updated["call_status"] == "answered"


async def test_unknown_number_gets_a_card_and_an_inbox_lead(client: httpx.AsyncClient,
                                                           ws: Workspace) -> None:
    pbx = await new_integration(ws)
    cid = call_id()
    response = await call(client, pbx, call_id=cid, **{"from": "8 912 345 67 89"},
                          status="ringing")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contact_created"] is True
    pop = body["screen_pop"]
    assert pop["contact"]["phones"][0]["e164"] == "+79123456789"
    assert pop["contact"]["full_name"] == "" and pop["open_deals"] == []
    card = (await ws.get(f"/api/v1/contacts/{body['contact_id']}")).json()
    assert card["emails"] == [] and card["owner_id"] is None
    item = (await ws.get(f"/api/v1/inbox/{body['inbox_item_id']}")).json()
    assert (item["channel"], item["status"], item["source_id"]) == ("call", "new", cid)
    assert item["contact_id"] == body["contact_id"] and item["contact_created"] is True


async def test_repeated_and_out_of_order_events(client: httpx.AsyncClient,
                                                ws: Workspace) -> None:
    pbx = await new_integration(ws)
    cid = call_id()
    common = {"call_id": cid, "from": "+74957654321"}
    completed = await call(client, pbx, **common, status="completed", duration_seconds=95,
                           recording_url="https://pbx.example/rec/1.mp3")
    assert completed.status_code == 200, completed.text
    again = await call(client, pbx, **common, status="completed", duration_seconds=95)
    late_ringing = await call(client, pbx, **common, status="ringing")
    late_answer = await call(client, pbx, **common, status="answered")
    ids = {r.json()["activity_id"] for r in (completed, again, late_ringing, late_answer)}
    assert len(ids) == 1
    assert late_ringing.json()["status"] == "completed"
    assert late_ringing.json()["screen_pop"] is not None
    contact_id = completed.json()["contact_id"]
    calls = (await ws.get("/api/v1/activities", params={"contact_id": contact_id})).json()
    assert len(calls["data"]) == 1
    logged = calls["data"][0]
    assert logged["call_status"] == "answered" and logged["duration_seconds"] == 95
    assert logged["recording_url"] == "https://pbx.example/rec/1.mp3"
    assert logged["data"]["status"] == "completed"
    leads = (await ws.get("/api/v1/inbox", params={"contact_id": contact_id})).json()["data"]
    assert len(leads) == 1
    # In order: ringing → answered → completed moves forward and fills in the duration.
    cid2 = call_id()
    for status in ("ringing", "answered"):
        await call(client, pbx, call_id=cid2, **{"from": "+74957654321"}, status=status)
    done = await call(client, pbx, call_id=cid2, **{"from": "+74957654321"},
                      status="completed", answered_at="2026-12-03T10:00:00Z",
                      ended_at="2026-12-03T10:02:05Z")
    final = (await ws.get(f"/api/v1/activities/{done.json()['activity_id']}")).json()
    assert final["duration_seconds"] == 125 and final["data"]["status"] == "completed"


async def test_missed_call_creates_a_call_back_task_for_the_owner(
        client: httpx.AsyncClient, ws: Workspace) -> None:
    owner = await new_user(ws, "agent", "Owner")
    card = await new_contact(ws, full_name="Maria", phones=["+74951110001"],
                             owner_id=owner["id"])
    pbx = await new_integration(ws)
    cursor = (await ws.get("/api/v1/events", params={"limit": 1})).json().get("cursor")
    cid = call_id()
    await call(client, pbx, call_id=cid, **{"from": "+74951110001"}, status="ringing")
    missed = await call(client, pbx, call_id=cid, **{"from": "+74951110001"}, status="missed")
    assert missed.status_code == 200, missed.text
    task_id = missed.json()["callback_task_id"]
    task = (await ws.get(f"/api/v1/tasks/{task_id}")).json()
    assert task["assignee_id"] == owner["id"] and task["contact_id"] == card["id"]
    assert task["type"] == "call" and task["title"] == "Call back Maria"
    # A repeat does not make a second task.
    repeat = await call(client, pbx, call_id=cid, **{"from": "+74951110001"}, status="missed")
    assert repeat.json()["callback_task_id"] == task_id
    tasks = (await ws.get("/api/v1/tasks", params={"contact_id": card["id"]})).json()["data"]
    assert len(tasks) == 1
    events = await events_since(ws, cursor, expect=1, types="call.missed")
    assert [e["entity_id"] for e in events["data"]] == [missed.json()["activity_id"]]


async def test_missed_calls_without_owner_go_round_robin(client: httpx.AsyncClient,
                                                        ws: Workspace) -> None:
    a, b = await new_user(ws, "agent", "A"), await new_user(ws, "agent", "B")
    team = await ws.post("/api/v1/teams", json={"name": f"Sales {uuid.uuid4().hex[:4]}",
                                               "member_ids": [a["id"], b["id"]]})
    assert team.status_code == 201, team.text
    pbx = await new_integration(ws, team_id=team.json()["id"])
    assignees = []
    for n in range(4):
        response = await call(client, pbx, call_id=call_id(), **{"from": f"+7495222000{n}"},
                              status="missed")
        assert response.status_code == 200, response.text
        task = (await ws.get(f"/api/v1/tasks/{response.json()['callback_task_id']}")).json()
        assignees.append(task["assignee_id"])
    assert set(assignees) == {a["id"], b["id"]}
    assert assignees[0] != assignees[1] and assignees[:2] == assignees[2:]


async def test_sip_and_tel_caller_ids_find_the_card(client: httpx.AsyncClient,
                                                    ws: Workspace) -> None:
    card = await new_contact(ws, full_name="Anna Sidorova", phones=["+7 495 765-43-21"])
    pbx = await new_integration(ws)
    for number in ("sip:+74957654321@pbx.example.com;user=phone", "tel:+7-495-765-43-21",
                   "SIPS:84957654321@trunk.example"):
        response = await call(client, pbx, call_id=call_id(), **{"from": number},
                              status="ringing")
        assert response.status_code == 200, (number, response.text)
        body = response.json()
        assert (body["contact_id"], body["contact_created"]) == (card["id"], False), number
    not_a_number = await call(client, pbx, call_id=call_id(),
                              **{"from": "sip:reception@pbx.example.com"}, status="ringing")
    assert_problem(not_a_number, 422)


async def test_bad_input_is_a_clear_4xx(client: httpx.AsyncClient, ws: Workspace) -> None:
    pbx = await new_integration(ws)
    bad = await call(client, pbx, call_id=call_id(), **{"from": "+74951110002"},
                     status="exploded")
    assert_problem(bad, 422)
    assert ["body", "status"] in [e["loc"] for e in bad.json()["errors"]]
    hidden = await call(client, pbx, call_id=call_id(), **{"from": "anonymous"},
                        status="ringing")
    assert_problem(hidden, 422)
    unknown_user = await call(client, pbx, call_id=call_id(), **{"from": "+74951110003"},
                              status="ringing", user_email="nobody@example.com")
    assert_problem(unknown_user, 422)
    huge = await call(client, pbx, call_id=call_id(), **{"from": "+74951110004"},
                      status="ringing", padding="x" * 70_000)
    assert_problem(huge, 413)
    _, headers = signed(pbx, {})
    not_json = await client.post(CALLS, content=b"{", headers=headers)
    assert_problem(not_json, 401)  # the signature covers the body: a changed body fails it


async def test_an_event_for_a_deleted_call_is_refused(client: httpx.AsyncClient,
                                                      ws: Workspace) -> None:
    """The call's activity was deleted on the timeline: a later event of that call neither
    revives it nor logs a second one; the answer is the activities service's 409."""
    pbx = await new_integration(ws)
    cid = call_id()
    first = await call(client, pbx, call_id=cid, **{"from": "+74957650001"}, status="ringing")
    assert first.status_code == 200, first.text
    activity_id = first.json()["activity_id"]
    assert (await ws.delete(f"/api/v1/activities/{activity_id}")).status_code == 204
    again = await call(client, pbx, call_id=cid, **{"from": "+74957650001"},
                       status="completed", duration_seconds=30)
    problem = assert_problem(again, 409)
    assert activity_id in problem["detail"] and "deleted" in problem["detail"]
