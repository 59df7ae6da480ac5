"""GraphQL for activities and the timeline: the same rules as REST, union results."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.api.graphql.helpers import (
    ERRORS,
    create_company,
    create_contact,
    created_entity_ids,
    mutate,
    ok,
)
from tests.conftest import Workspace

PASSWORD = "correct horse battery"
ACTIVITY_FIELDS = """
  id type direction channel occurredAt ownerId contactId companyId dealId subject body
  fromNumber toNumber callStatus durationSeconds recordingUrl mentions data externalId version
  participants { name email phone userId }
"""
ACTIVITY_RESULT = f"{ERRORS} ... on Activity {{ {ACTIVITY_FIELDS} }}"
LOG = f"mutation($input: ActivityInput!) {{ logActivity(input: $input) {{ {ACTIVITY_RESULT} }} }}"
UPDATE = f"""
mutation($id: ID!, $input: ActivityInput!, $version: Int) {{
  updateActivity(id: $id, input: $input, version: $version) {{ {ACTIVITY_RESULT} }}
}}
"""
DELETE = f"""
mutation($id: ID!, $version: Int) {{
  deleteActivity(id: $id, version: $version) {{ {ERRORS} ... on DeleteSuccess {{ id }} }}
}}
"""
GET = f"query($id: ID!) {{ activity(id: $id) {{ {ACTIVITY_FIELDS} contact {{ fullName }} }} }}"
LIST = """
query($first: Int, $after: String, $filter: JSON, $q: String, $sort: String) {
  activities(first: $first, after: $after, filter: $filter, q: $q, sort: $sort) {
    edges { cursor node { id subject type contact { fullName } company { name } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
TIMELINE = """
query($type: TimelineRecordType!, $id: ID!, $first: Int, $after: String,
      $types: [TimelineEntryKind!]) {
  timeline(recordType: $type, id: $id, first: $first, after: $after, types: $types) {
    edges { cursor node { id kind occurredAt actor actorName summary record { type id }
                          payload activity { id type callStatus } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def log(ws: Workspace, token: str | None = None, **fields: Any) -> dict[str, Any]:
    result = ok(await ws.gql(LOG, {"input": fields}, token=token))["logActivity"]
    assert result["__typename"] == "Activity", result
    return result  # type: ignore[no-any-return]


async def user_token(ws: Workspace, role: str, name: str) -> tuple[str, str]:
    """A new user of the workspace, and an access token for them."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = await ws.post("/api/v1/users", json={"email": email, "full_name": name,
                                                   "role": role, "password": PASSWORD})
    assert created.status_code == 201, created.text
    token = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return created.json()["id"], token.json()["access_token"]


async def test_log_a_missed_call_and_read_it_back(ws: Workspace) -> None:
    card = await create_contact(ws, firstName="Anna", phones=[{"number": "+74951234567"}])
    call = await log(ws, type="call", direction="in", callStatus="missed",
                     contactId=card["id"], fromNumber="8 495 123-45-67", toNumber="101",
                     durationSeconds=0, recordingUrl="https://pbx.example/r/1.mp3",
                     occurredAt="2026-11-23T10:15:00+03:00", data={"line": 2})
    assert (call["fromNumber"], call["toNumber"], call["channel"]) == (
        "+74951234567", "101", "phone")
    assert call["occurredAt"] == "2026-11-23T07:15:00+00:00" and call["data"] == {"line": 2}
    read = ok(await ws.gql(GET, {"id": call["id"]}))["activity"]
    assert read.pop("contact") == {"fullName": "Anna"}
    assert read == {k: v for k, v in call.items() if k != "__typename"}
    rest = (await ws.get(f"/api/v1/activities/{call['id']}")).json()
    assert (rest["from_number"], rest["call_status"]) == ("+74951234567", "missed")
    # The log shows a transaction once no older one is open on the server: poll like a client.
    for _ in range(100):
        if call["id"] in await created_entity_ids(ws, "call.missed"):
            break
        await asyncio.sleep(0.05)
    assert call["id"] in await created_entity_ids(ws, "call.missed")


async def test_invalid_input_is_a_validation_error_naming_the_field(ws: Workspace) -> None:
    card = await create_contact(ws, firstName="Boris")
    cases = [
        ({"type": "note", "contactId": card["id"], "fromNumber": "+74951234567"},
         [["input", "fromNumber"]]),
        ({"type": "note", "contactId": card["id"], "callStatus": "missed"},
         [["input", "callStatus"]]),
        ({"contactId": card["id"], "body": "no type"}, [["input", "type"]]),
        ({"type": "call", "contactId": card["id"]}, [["input", "direction"]]),
        ({"type": "note", "body": "linked to nothing"}, [["input"]]),
        ({"type": "note", "contactId": str(uuid.uuid4())}, [["input", "contactId"]]),
        ({"type": "note", "contactId": card["id"], "occurredAt": "2026-11-23T10:15:00"},
         [["input", "occurredAt"]]),
    ]
    for fields, locs in cases:
        result = await mutate(ws, LOG, "logActivity", input=fields)
        assert result["__typename"] == "ValidationError", (fields, result)
        assert [e["loc"] for e in result["errors"]] == locs, fields
    rest = (await ws.get("/api/v1/activities")).json()["data"]
    assert rest == []


async def test_update_and_delete_with_versions(ws: Workspace) -> None:
    card = await create_contact(ws, firstName="Gleb")
    note = await log(ws, type="note", contactId=card["id"], body="first")
    updated = await mutate(ws, UPDATE, "updateActivity", id=note["id"],
                           input={"body": "second", "subject": "Call summary"}, version=1)
    assert (updated["__typename"], updated["body"], updated["version"]) == (
        "Activity", "second", 2)
    stale = await mutate(ws, UPDATE, "updateActivity", id=note["id"], input={"body": "x"},
                         version=1)
    assert stale == {"__typename": "PreconditionFailedError", "message": stale["message"],
                     "currentVersion": 2}
    clearing = await mutate(ws, UPDATE, "updateActivity", id=note["id"],
                            input={"contactId": None})
    assert clearing["__typename"] == "ValidationError"
    missing = await mutate(ws, DELETE, "deleteActivity", id=str(uuid.uuid4()))
    assert missing["__typename"] == "NotFoundError"
    deleted = await mutate(ws, DELETE, "deleteActivity", id=note["id"], version=2)
    assert deleted == {"__typename": "DeleteSuccess", "id": note["id"]}
    assert ok(await ws.gql(GET, {"id": note["id"]}))["activity"] is None
    assert (await ws.get(f"/api/v1/activities/{note['id']}")).status_code == 404


async def test_a_mention_in_a_note_notifies_the_user(ws: Workspace) -> None:
    oleg_id, oleg_token = await user_token(ws, "agent", "Oleg")
    marina_id, marina_token = await user_token(ws, "manager", "Marina")
    card = await create_contact(ws, firstName="Anna", ownerId=marina_id)
    note = await log(ws, token=marina_token, type="note", contactId=card["id"],
                     body="@Oleg call her", mentions=[oleg_id])
    assert note["ownerId"] == marina_id and note["mentions"] == [oleg_id]
    told = await ws.client.get("/api/v1/notifications", params={"type": "mention"},
                               headers={"Authorization": f"Bearer {oleg_token}"})
    assert told.status_code == 200, told.text
    assert [(n["entity_id"], n["title"]) for n in told.json()["data"]] == [
        (note["id"], "Marina mentioned you in a note")]


async def test_list_activities_with_filters_and_nested_records(ws: Workspace) -> None:
    card = await create_contact(ws, firstName="Lena")
    company = await create_company(ws, name="Okna Plus")
    for i, kind in enumerate(("email", "sms", "email")):
        await log(ws, type=kind, direction="out", contactId=card["id"],
                  companyId=company["id"], subject=f"{kind}-{i}",
                  occurredAt=f"2026-11-2{i}T09:00:00Z")
    data = ok(await ws.gql(LIST, {"first": 1, "filter": {"field": "type", "op": "eq",
                                                         "value": "email"}}))["activities"]
    assert [e["node"]["subject"] for e in data["edges"]] == ["email-2"]
    assert data["edges"][0]["node"]["contact"] == {"fullName": "Lena"}
    assert data["edges"][0]["node"]["company"] == {"name": "Okna Plus"}
    assert data["pageInfo"]["hasNextPage"] is True
    rest = ok(await ws.gql(LIST, {"first": 5, "after": data["pageInfo"]["endCursor"],
                                  "filter": {"field": "type", "op": "eq", "value": "email"}}))
    assert [e["node"]["subject"] for e in rest["activities"]["edges"]] == ["email-0"]
    searched = ok(await ws.gql(LIST, {"q": "sms-1"}))["activities"]["edges"]
    assert [e["node"]["subject"] for e in searched] == ["sms-1"]
    bad = await ws.gql(LIST, {"first": 500})
    assert bad["errors"][0]["extensions"]["status"] == 422


async def test_timeline_pages_like_rest(ws: Workspace) -> None:
    card = await create_contact(ws, firstName="Vera")
    call = await log(ws, type="call", direction="in", callStatus="missed",
                     contactId=card["id"])
    for i in range(3):
        await log(ws, type="note", contactId=card["id"], body=f"note {i}")
    task = await ws.post("/api/v1/tasks", json={"title": "Call back", "contact_id": card["id"]})
    assert task.status_code == 201, task.text
    updated = await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"})
    assert updated.status_code == 200

    rest = (await ws.get(f"/api/v1/contacts/{card['id']}/timeline")).json()["data"]
    nodes, after = [], None
    while True:
        page = ok(await ws.gql(TIMELINE, {"type": "CONTACT", "id": card["id"], "first": 2,
                                          "after": after}))["timeline"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [n["id"] for n in nodes] == [e["id"] for e in rest]
    assert [n["kind"] for n in nodes] == ["CHANGE", "TASK", "ACTIVITY", "ACTIVITY", "ACTIVITY",
                                          "ACTIVITY", "CREATED"]
    assert [n["summary"] for n in nodes] == [e["summary"] for e in rest]
    missed = next(n for n in nodes if n["record"]["id"] == call["id"])
    assert missed["activity"] == {"id": call["id"], "type": "call", "callStatus": "missed"}
    assert missed["summary"] == "Incoming call (missed)"
    assert missed["payload"]["call_status"] == "missed"
    assert nodes[0]["payload"]["after"] == {"status": "hot"} and nodes[0]["activity"] is None

    only = ok(await ws.gql(TIMELINE, {"type": "CONTACT", "id": card["id"],
                                      "types": ["TASK", "CREATED"]}))["timeline"]
    assert [e["node"]["kind"] for e in only["edges"]] == ["TASK", "CREATED"]
    bad = await ws.gql(TIMELINE, {"type": "CONTACT", "id": card["id"], "after": "junk"})
    assert bad["errors"][0]["extensions"]["errors"][0]["loc"] == ["after"]


async def test_a_timeline_you_may_not_see_is_null(ws: Workspace, other_ws: Workspace) -> None:
    agent_id, agent_token = await user_token(ws, "agent", "Agent")
    theirs = await create_contact(ws, firstName="Not the agent's")
    mine = await create_contact(ws, firstName="The agent's", ownerId=agent_id)
    for record_type, record_id, token, visible in [
            ("CONTACT", theirs["id"], agent_token, False),
            ("CONTACT", mine["id"], agent_token, True),
            ("CONTACT", str(uuid.uuid4()), None, False),
            ("COMPANY", theirs["id"], None, False),
            ("DEAL", "not-a-uuid", None, False)]:
        body = ok(await ws.gql(TIMELINE, {"type": record_type, "id": record_id}, token=token))
        assert (body["timeline"] is not None) == visible, (record_type, record_id)
    across = ok(await other_ws.gql(TIMELINE, {"type": "CONTACT", "id": mine["id"]}))
    assert across["timeline"] is None
    note = await log(ws, type="note", contactId=theirs["id"], body="secret")
    hidden = ok(await ws.gql(GET, {"id": note["id"]}, token=agent_token))
    assert hidden["activity"] is None
