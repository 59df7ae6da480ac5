"""The inbox through the public API: list and filters, accept / link / decline and their
transitions, another workspace's items, one card per person, first-response time."""

from __future__ import annotations

import uuid

import httpx

from tests.api.rest.conftest import act_as, assert_problem, new_contact, new_user
from tests.api.rest.signed import call, email, new_integration
from tests.conftest import Workspace


def cid() -> str:
    return f"call-{uuid.uuid4().hex}"


async def _call_lead(client: httpx.AsyncClient, pbx: dict, number: str) -> dict:
    response = await call(client, pbx, call_id=cid(), **{"from": number}, status="ringing")
    assert response.status_code == 200, response.text
    return response.json()


async def test_accept_creates_a_deal_in_the_default_pipeline(client: httpx.AsyncClient,
                                                            ws: Workspace) -> None:
    pbx = await new_integration(ws)
    lead = await _call_lead(client, pbx, "+74953330001")
    item_id = lead["inbox_item_id"]
    listed = (await ws.get("/api/v1/inbox", params={"status": "new", "channel": "call"})).json()
    assert item_id in [i["id"] for i in listed["data"]]
    manager = await new_user(ws, "manager")
    accepted = await ws.post(f"/api/v1/inbox/{item_id}/accept",
                             json={"owner_id": manager["id"]})
    assert accepted.status_code == 200, accepted.text
    item = accepted.json()
    assert item["status"] == "accepted" and item["deal_id"] and item["decided_at"]
    deal = (await ws.get(f"/api/v1/deals/{item['deal_id']}")).json()
    pipelines = (await ws.get("/api/v1/pipelines")).json()["data"]
    default = next(p for p in pipelines if p["is_default"])
    assert deal["pipeline_id"] == default["id"]
    assert deal["stage_id"] == default["stages"][0]["id"]
    assert deal["contact_ids"] == [lead["contact_id"]] and deal["owner_id"] == manager["id"]
    assert deal["title"] == "+74953330001 (call)"
    card = (await ws.get(f"/api/v1/contacts/{lead['contact_id']}")).json()
    assert card["owner_id"] == manager["id"]  # the card had no owner
    # Illegal transitions are 409.
    for action, body in (("accept", {}), ("decline", {"reason": "spam"}),
                         ("link", {"contact_id": lead["contact_id"]})):
        assert_problem(await ws.post(f"/api/v1/inbox/{item_id}/{action}", json=body), 409)
    assert (await ws.get("/api/v1/inbox", params={"status": "accepted"})).json()["data"][0][
        "id"] == item_id


async def test_accept_into_a_chosen_stage(client: httpx.AsyncClient, ws: Workspace) -> None:
    pbx = await new_integration(ws)
    lead = await _call_lead(client, pbx, "+74953330002")
    pipelines = (await ws.get("/api/v1/pipelines")).json()["data"]
    stage = pipelines[0]["stages"][1]
    accepted = await ws.post(f"/api/v1/inbox/{lead['inbox_item_id']}/accept",
                             json={"stage_id": stage["id"], "title": "Balcony glazing"})
    assert accepted.status_code == 200, accepted.text
    deal = (await ws.get(f"/api/v1/deals/{accepted.json()['deal_id']}")).json()
    assert (deal["stage_id"], deal["title"]) == (stage["id"], "Balcony glazing")


async def test_link_merges_the_card_the_lead_made(client: httpx.AsyncClient,
                                                 ws: Workspace) -> None:
    existing = await new_contact(ws, full_name="Sergey", phones=["+74953330003"])
    pbx = await new_integration(ws)
    lead = await _call_lead(client, pbx, "+74953339999")  # his other number
    linked = await ws.post(f"/api/v1/inbox/{lead['inbox_item_id']}/link",
                           json={"contact_id": existing["id"]})
    assert linked.status_code == 200, linked.text
    assert linked.json()["status"] == "linked"
    assert linked.json()["contact_id"] == existing["id"]
    card = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert {p["e164"] for p in card["phones"]} == {"+74953330003", "+74953339999"}
    # The call moved over with the card.
    call_activity = (await ws.get(f"/api/v1/activities/{lead['activity_id']}")).json()
    assert call_activity["contact_id"] == existing["id"]
    # The next call from that number pops Sergey's card.
    again = await _call_lead(client, pbx, "+74953339999")
    assert again["contact_id"] == existing["id"] and again["inbox_item_id"] is None
    bad = await ws.post(f"/api/v1/inbox/{lead['inbox_item_id']}/link",
                        json={"contact_id": str(uuid.uuid4())})
    assert_problem(bad, 409)


async def test_decline_and_validation(client: httpx.AsyncClient, ws: Workspace,
                                      other_ws: Workspace) -> None:
    pbx = await new_integration(ws)
    lead = await _call_lead(client, pbx, "+74953330004")
    item_id = lead["inbox_item_id"]
    assert_problem(await ws.post(f"/api/v1/inbox/{item_id}/decline", json={}), 422)
    assert_problem(await ws.post(f"/api/v1/inbox/{item_id}/link",
                                 json={"contact_id": str(uuid.uuid4())}), 422)
    # Another workspace sees nothing of it.
    assert_problem(await other_ws.get(f"/api/v1/inbox/{item_id}"), 404)
    for action, body in (("accept", {}), ("decline", {"reason": "x"})):
        assert_problem(await other_ws.post(f"/api/v1/inbox/{item_id}/{action}", json=body), 404)
    assert item_id not in [i["id"] for i in (await other_ws.get("/api/v1/inbox")).json()["data"]]
    declined = await ws.post(f"/api/v1/inbox/{item_id}/decline", json={"reason": "Wrong number"})
    assert declined.status_code == 200
    assert (declined.json()["status"], declined.json()["decline_reason"]) == (
        "declined", "Wrong number")
    assert_problem(await ws.post(f"/api/v1/inbox/{item_id}/accept", json={}), 409)
    assert_problem(await ws.get("/api/v1/inbox", params={"status__in": "new,bogus",
                                                        "sort": "nope"}), 422)


async def test_agents_see_the_leads_of_their_cards(client: httpx.AsyncClient,
                                                  ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    other = await new_user(ws, "agent")
    mine = await new_contact(ws, full_name="Mine", emails=["mine@example.com"],
                             owner_id=agent["id"])
    theirs = await new_contact(ws, full_name="Theirs", emails=["theirs@example.com"],
                               owner_id=other["id"])
    box = await new_integration(ws, "email")
    pbx = await new_integration(ws)
    for card, number in ((mine, "+74953330005"), (theirs, "+74953330006")):
        lead = await _call_lead(client, pbx, number)
        linked = await ws.post(f"/api/v1/inbox/{lead['inbox_item_id']}/link",
                               json={"contact_id": card["id"]})
        assert linked.status_code == 200
    as_agent = await act_as(ws, agent)
    seen = {i["contact_id"] for i in (await as_agent.get("/api/v1/inbox")).json()["data"]}
    assert mine["id"] in seen and theirs["id"] not in seen
    assert box  # (an email integration exists; its leads follow the same rule)


async def test_same_person_by_email_and_phone_is_one_card(client: httpx.AsyncClient,
                                                         ws: Workspace) -> None:
    box = await new_integration(ws, "email")
    pbx = await new_integration(ws)
    mail = await email(client, box, **{"from": "Vera <vera@example.com>"}, text="hi",
                       message_id=f"<{uuid.uuid4().hex}@x>")
    card_id = mail.json()["contact_id"]
    # She left her number on the card (or a form told us both); then she calls.
    patched = await ws.patch(f"/api/v1/contacts/{card_id}", json={"phones": ["8 495 444 55 66"]})
    assert patched.status_code == 200
    rang = await _call_lead(client, pbx, "+7 (495) 444-55-66")
    assert rang["contact_id"] == card_id and rang["contact_created"] is False
    contacts = (await ws.get("/api/v1/contacts", params={"q": "vera"})).json()["data"]
    assert [c["id"] for c in contacts] == [card_id]


async def test_first_response_time_is_recorded(client: httpx.AsyncClient,
                                               ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    box = await new_integration(ws, "email")
    mail = await email(client, box, **{"from": "slow@example.com"}, text="anyone?",
                       message_id=f"<{uuid.uuid4().hex}@x>")
    item_id = mail.json()["inbox_item_id"]
    contact_id = mail.json()["contact_id"]
    assert (await ws.get(f"/api/v1/inbox/{item_id}")).json()["first_response_at"] is None
    # A note is not a response; an outbound call by a user is.
    await ws.post("/api/v1/activities", json={"type": "note", "body": "x",
                                              "contact_id": contact_id})
    assert (await ws.get(f"/api/v1/inbox/{item_id}")).json()["first_response_at"] is None
    await ws.patch(f"/api/v1/contacts/{contact_id}", json={"owner_id": agent["id"]})
    as_agent = await act_as(ws, agent)
    out = await as_agent.post("/api/v1/activities", json={
        "type": "call", "direction": "out", "contact_id": contact_id, "call_status": "answered",
        "to_number": "+74955550000"})
    assert out.status_code == 201, out.text
    item = (await ws.get(f"/api/v1/inbox/{item_id}")).json()
    assert item["first_response_at"] is not None and item["first_response_seconds"] >= 0
    first = item["first_response_at"]
    # A second response does not move it.
    await as_agent.post("/api/v1/messages", json={"channel": "email", "contact_id": contact_id,
                                                  "subject": "Re", "body": "hello"})
    assert (await ws.get(f"/api/v1/inbox/{item_id}")).json()["first_response_at"] == first
    unanswered = (await ws.get("/api/v1/inbox", params={
        "first_response_at__isnull": "true", "contact_id": contact_id})).json()["data"]
    assert unanswered == []


async def test_a_message_answers_a_lead(client: httpx.AsyncClient, ws: Workspace) -> None:
    box = await new_integration(ws, "email")
    mail = await email(client, box, **{"from": "msg@example.com"}, text="?",
                       message_id=f"<{uuid.uuid4().hex}@x>")
    queued = await ws.post("/api/v1/messages", json={
        "channel": "email", "contact_id": mail.json()["contact_id"], "subject": "Hi",
        "body": "We can help"})
    assert queued.status_code == 201, queued.text
    item = (await ws.get(f"/api/v1/inbox/{mail.json()['inbox_item_id']}")).json()
    assert item["first_response_seconds"] is not None
