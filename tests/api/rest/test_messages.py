"""POST /api/v1/messages: what is queued, what is refused, who sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.rest.conftest import act_as, assert_problem, error_locs, new_contact, new_user
from tests.api.rest.test_pipelines import new_deal
from tests.api.rest.test_templates import new_template
from tests.conftest import Workspace


async def test_an_email_is_rendered_and_queued_in_the_request(ws: Workspace) -> None:
    contact = await new_contact(ws, first_name="Ivan", emails=[{"email": "Ivan@Example.com"}])
    template = await new_template(ws)
    created = await ws.post("/api/v1/messages", json={
        "channel": "email", "contact_id": contact["id"], "template_id": template["id"]})
    assert created.status_code == 201, created.text
    message = created.json()
    assert created.headers["location"] == f"/api/v1/messages/{message['id']}"
    assert (message["status"], message["to"], message["subject"]) == (
        "queued", "ivan@example.com", "Ivan, your measurement")
    assert message["body"] == "Hello Ivan! We will call."
    assert message["message_key"] == f"relata-{message['id']}"
    assert message["attempts"] == 0 and message["sent_at"] is None
    assert (await ws.get(f"/api/v1/messages/{message['id']}")).json() == message
    listed = (await ws.get("/api/v1/messages", params={"contact_id": contact["id"]})).json()
    assert [m["id"] for m in listed["data"]] == [message["id"]]


async def test_a_later_message_is_scheduled(ws: Workspace) -> None:
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    message = (await ws.post("/api/v1/messages", json={
        "channel": "sms", "to": "+7 916 111-22-33", "body": "Tomorrow",
        "send_at": at.isoformat()})).json()
    assert (message["status"], message["to"]) == ("scheduled", "+79161112233")
    assert message["send_at"] == message["next_attempt_at"] == at.isoformat().replace(
        "+00:00", "Z")


@pytest.mark.parametrize(("body", "loc"), [
    ({"channel": "email", "subject": "Hi", "body": "x"}, ["body", "to"]),
    ({"channel": "email", "to": "not an address", "subject": "Hi", "body": "x"}, ["body", "to"]),
    ({"channel": "sms", "to": "12", "body": "x"}, ["body", "to"]),
    ({"channel": "email", "to": "a@example.com", "body": "no subject"}, ["body", "subject"]),
    ({"channel": "email", "to": "a@example.com", "subject": "Hi"}, ["body", "body"]),
    ({"channel": "sms", "to": "+79161112233", "subject": "Hi", "body": "x"},
     ["body", "subject"]),
    ({"channel": "fax", "to": "+79161112233", "body": "x"}, ["body", "channel"]),
    ({"channel": "sms", "to": "+79161112233", "body": "{{ ''.__class__ }}"},
     ["body", "body"]),
    ({"channel": "email", "to": "a@example.com", "subject": "Hi", "body": "x",
      "workspace_id": "01a20991-c1dd-7665-bff3-224686a3d0df"}, ["body", "workspace_id"]),
])
async def test_bad_messages_are_refused(shared_ws: Workspace, body: dict[str, str],
                                        loc: list[str]) -> None:
    response = await shared_ws.post("/api/v1/messages", json=body)
    assert_problem(response, 422)
    assert loc in error_locs(response)


async def test_a_contact_without_an_address_is_a_clear_422(ws: Workspace) -> None:
    contact = await new_contact(ws, first_name="Silent")
    for channel, what in (("email", "email address"), ("sms", "phone number")):
        response = await ws.post("/api/v1/messages", json={
            "channel": channel, "contact_id": contact["id"], "body": "x", "subject": "y"
            if channel == "email" else None})
        body = assert_problem(response, 422)
        assert error_locs(response) == [["body", "contact_id"]]
        assert f"has no {what}" in body["detail"]


async def test_a_template_of_another_channel_is_refused(ws: Workspace) -> None:
    email = await new_template(ws)
    response = await ws.post("/api/v1/messages", json={
        "channel": "sms", "to": "+79161112233", "template_id": email["id"]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "template_id"]]
    both = await ws.post("/api/v1/messages", json={
        "channel": "email", "to": "a@example.com", "template_id": email["id"], "body": "x"})
    assert error_locs(both) == [["body", "template_id"]]


async def test_messages_follow_the_contacts_visibility(ws: Workspace) -> None:
    owner = await new_user(ws, "agent")
    contact = await new_contact(ws, first_name="Mine", owner_id=owner["id"],
                                phones=[{"number": "+79165550000"}])
    message = (await ws.post("/api/v1/messages", json={
        "channel": "sms", "contact_id": contact["id"], "body": "Hi"})).json()
    other = await act_as(ws, await new_user(ws, "agent"))
    assert_problem(await other.get(f"/api/v1/messages/{message['id']}"), 404)
    assert message["id"] not in {m["id"] for m in (await other.get("/api/v1/messages")).json()[
        "data"]}
    assert_problem(await other.post("/api/v1/messages", json={
        "channel": "sms", "contact_id": contact["id"], "body": "Hi"}), 404)
    mine = await act_as(ws, owner)
    assert (await mine.get(f"/api/v1/messages/{message['id']}")).status_code == 200


async def test_another_workspaces_records_are_not_found(ws: Workspace,
                                                        other_ws: Workspace) -> None:
    their_contact = await new_contact(other_ws, first_name="Secret",
                                      phones=[{"number": "+79165551111"}])
    theirs = (await other_ws.post("/api/v1/messages", json={
        "channel": "sms", "contact_id": their_contact["id"], "body": "Hi"})).json()
    assert_problem(await ws.get(f"/api/v1/messages/{theirs['id']}"), 404)
    assert_problem(await ws.post("/api/v1/messages", json={
        "channel": "sms", "contact_id": their_contact["id"], "body": "Hi"}), 404)
    their_deal = await new_deal(other_ws)
    assert_problem(await ws.post("/api/v1/messages", json={
        "channel": "sms", "to": "+79165551111", "deal_id": their_deal["id"], "body": "Hi"}),
        404)
    their_template = await new_template(other_ws, kind="sms", subject=None, body="Hi")
    cross = await ws.post("/api/v1/messages", json={
        "channel": "sms", "to": "+79165551111", "template_id": their_template["id"]})
    assert error_locs(cross) == [["body", "template_id"]]
    their_doc = "01a20991-c1dd-7665-bff3-224686a3d0df"
    attach = await ws.post("/api/v1/messages", json={
        "channel": "email", "to": "a@example.com", "subject": "Hi", "body": "x",
        "document_ids": [their_doc]})
    assert error_locs(attach) == [["body", "document_ids", 0]]
