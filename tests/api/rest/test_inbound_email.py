"""Inbound email through the public API: matching, threading, idempotency, caps."""

from __future__ import annotations

import uuid

import httpx

from tests.api.rest.conftest import assert_problem, new_contact
from tests.api.rest.signed import email, new_integration
from tests.conftest import Workspace


def mid() -> str:
    return f"<{uuid.uuid4().hex}@mail.example>"


async def test_known_sender_is_matched_and_logged(client: httpx.AsyncClient,
                                                  ws: Workspace) -> None:
    card = await new_contact(ws, full_name="Anna", emails=["anna@example.com"])
    box = await new_integration(ws, "email")
    message_id = mid()
    response = await email(client, box, **{"from": "Anna K <ANNA@example.com>"},
                           subject="Windows", text="Hello, how much?", message_id=message_id,
                           attachments=[{"filename": "plan.pdf", "content_type":
                                         "application/pdf", "size": 1024}])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["contact_id"] == card["id"] and body["contact_created"] is False
    assert body["inbox_item_id"] is None and body["duplicate"] is False
    activity = (await ws.get(f"/api/v1/activities/{body['activity_id']}")).json()
    assert (activity["type"], activity["direction"], activity["subject"]) == (
        "email", "in", "Windows")
    assert activity["body"] == "Hello, how much?"
    assert activity["data"]["attachments"][0]["filename"] == "plan.pdf"
    assert activity["data"]["message_id"] == message_id.strip("<>")
    # The same Message-ID again: nothing new.
    again = await email(client, box, **{"from": "anna@example.com"}, subject="Windows",
                        text="Hello, how much?", message_id=message_id)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["activity_id"] == body["activity_id"]
    listed = await ws.get("/api/v1/activities", params={"contact_id": card["id"]})
    assert len(listed.json()["data"]) == 1


async def test_unknown_sender_gets_a_card_and_a_lead(client: httpx.AsyncClient,
                                                    ws: Workspace) -> None:
    box = await new_integration(ws, "email")
    message_id = mid()
    response = await email(client, box, **{"from": "Boris Novak <boris@novak.example>"},
                           subject="Need a quote", html="<p>Five <b>windows</b></p>",
                           message_id=message_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["contact_created"] is True
    card = (await ws.get(f"/api/v1/contacts/{body['contact_id']}")).json()
    assert card["full_name"] == "Boris Novak" and card["phones"] == []
    assert [e["email"] for e in card["emails"]] == ["boris@novak.example"]
    item = (await ws.get(f"/api/v1/inbox/{body['inbox_item_id']}")).json()
    assert (item["channel"], item["status"]) == ("email", "new")
    assert item["data"]["subject"] == "Need a quote"
    activity = (await ws.get(f"/api/v1/activities/{body['activity_id']}")).json()
    assert activity["body"] == "Five windows"  # from the HTML when there is no text


async def test_replies_join_the_thread(client: httpx.AsyncClient, ws: Workspace) -> None:
    box = await new_integration(ws, "email")
    first_id, second_id, third_id = mid(), mid(), mid()
    first = await email(client, box, **{"from": "c@thread.example"}, subject="Q",
                        text="1", message_id=first_id)
    second = await email(client, box, **{"from": "c@thread.example"}, subject="Re: Q",
                         text="2", message_id=second_id, in_reply_to=first_id)
    # Only References (no In-Reply-To) still finds the thread.
    third = await email(client, box, **{"from": "c@thread.example"}, subject="Re: Q",
                        text="3", message_id=third_id, references=[first_id, second_id])
    other = await email(client, box, **{"from": "c@thread.example"}, subject="New topic",
                        text="4", message_id=mid())
    threads = {r.json()["thread_id"] for r in (first, second, third)}
    assert len(threads) == 1
    assert other.json()["thread_id"] not in threads
    assert {r.json()["contact_id"] for r in (first, second, third, other)} == {
        first.json()["contact_id"]}
    # Only the first email from the unknown address is a lead.
    leads = (await ws.get("/api/v1/inbox", params={
        "contact_id": first.json()["contact_id"]})).json()["data"]
    assert len(leads) == 1


async def test_bad_input_and_signatures(client: httpx.AsyncClient, ws: Workspace,
                                        other_ws: Workspace) -> None:
    box = await new_integration(ws, "email")
    pbx = await new_integration(ws, "telephony")
    theirs = await new_integration(other_ws, "email")
    ok = {"from": "x@example.com", "message_id": mid(), "text": "hi"}
    assert_problem(await email(client, pbx, **ok), 401)
    assert_problem(await email(client, box, secret=theirs["secret"], **ok), 401)
    bad_from = await email(client, box, **{**ok, "from": "not an address"})
    assert ["body", "from"] in [e["loc"] for e in assert_problem(bad_from, 422)["errors"]]
    no_id = await email(client, box, **{"from": "x@example.com", "text": "hi"})
    assert_problem(no_id, 422)
    too_long = await email(client, box, **{**ok, "text": "x" * 100_001})
    assert_problem(too_long, 422)
    too_big = await email(client, box, **{**ok, "html": "x" * 2_100_000})
    assert_problem(too_big, 413)
    nul = await email(client, box, **{**ok, "subject": "a\u0000b"})
    assert_problem(nul, 422)
    assert (await ws.get("/api/v1/contacts/lookup",
                         params={"email": "x@example.com"})).status_code == 404
