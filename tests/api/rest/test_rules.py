"""REST /api/v1/rules: saving checks, access, isolation, dry-run, runs and history."""

from __future__ import annotations

from typing import Any

from tests.api.rest.conftest import (
    act_as,
    assert_problem,
    error_locs,
    new_contact,
    new_user,
)
from tests.api.rest.test_tasks import frozen
from tests.conftest import Workspace
from tests.workers.test_rules_worker import CALL_TASK, default_stages, new_rule

__all__ = ["frozen"]

HOT_CONTACT_RULE: dict[str, Any] = {
    "name": "Hot leads get a call",
    "trigger": {"type": "record_created", "object": "contact"},
    "conditions": {"all": [{"field": "contact.status", "op": "eq", "value": "hot"},
                           {"field": "contact.tags", "op": "has", "value": "web"}]},
    "actions": [CALL_TASK],
}


async def test_create_read_update_delete_restore(ws: Workspace) -> None:
    created = await ws.post("/api/v1/rules", json=HOT_CONTACT_RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert created.headers["Location"] == f"/api/v1/rules/{rule['id']}"
    assert created.headers["ETag"] == '"1"'
    assert rule["enabled"] is True
    assert rule["trigger"] == {"type": "record_created", "object": "contact"}
    assert rule["actions"][0]["due"] == {"in": "15m", "business_hours": False}

    got = await ws.get(f"/api/v1/rules/{rule['id']}")
    assert got.json() == rule

    stale = await ws.patch(f"/api/v1/rules/{rule['id']}", json={"enabled": False},
                           headers={"If-Match": '"7"'})
    assert_problem(stale, 412)
    off = await ws.patch(f"/api/v1/rules/{rule['id']}", json={"enabled": False},
                         headers={"If-Match": '"1"'})
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False and off.json()["version"] == 2
    listed = (await ws.get("/api/v1/rules", params={"enabled": "false"})).json()["data"]
    assert [r["id"] for r in listed] == [rule["id"]]

    assert (await ws.delete(f"/api/v1/rules/{rule['id']}")).status_code == 204
    assert_problem(await ws.get(f"/api/v1/rules/{rule['id']}"), 404)
    restored = await ws.post(f"/api/v1/rules/{rule['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = (await ws.get(f"/api/v1/rules/{rule['id']}/history")).json()["data"]
    assert [h["type"] for h in history] == ["rule.created", "rule.updated", "rule.deleted",
                                            "rule.restored"]


async def test_saving_checks_point_at_the_faulty_part(ws: Workspace) -> None:
    stages = await default_stages(ws)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"trigger": {"type": "stage_entered", "stage_id": "00000000-0000-7000-8000-000000000000"}},
         ["body", "trigger", "stage_id"]),
        ({"actions": [{**CALL_TASK, "task_type": "séance"}]},
         ["body", "actions", 0, "task_type"]),
        ({"actions": [{**CALL_TASK, "title": "Call {{ contact.full_name"}]},
         ["body", "actions", 0, "title"]),
        ({"actions": [CALL_TASK, {"type": "move_deal",
                                  "stage_id": "00000000-0000-7000-8000-000000000000"}]},
         ["body", "actions", 1, "stage_id"]),
        ({"actions": [{"type": "notify", "title": "x", "to": {
            "strategy": "user", "user_id": "00000000-0000-7000-8000-000000000000"}}]},
         ["body", "actions", 0, "to", "user_id"]),
        ({"actions": [{"type": "update_fields", "object": "contact",
                       "set": {"status": 5}}]},
         ["body", "actions", 0, "set", "status"]),
        ({"actions": [{"type": "update_fields", "object": "contact",
                       "set": {"workspace_id": "x"}}]},
         ["body", "actions", 0, "set", "workspace_id"]),
        ({"trigger": {"type": "task_completed", "outcome": "exploded"}},
         ["body", "trigger", "outcome"]),
        ({"actions": [{"type": "send_sms"}]}, ["body", "actions", 0, "body"]),
        ({"actions": []}, ["body", "actions"]),
        ({"surprise": True}, ["body", "surprise"]),
    ]
    for patch, loc in cases:
        response = await ws.post("/api/v1/rules", json={**HOT_CONTACT_RULE, **patch})
        body = assert_problem(response, 422)
        assert any(found[:len(loc)] == loc for found in error_locs(response)), (patch, body)
    good = await ws.post("/api/v1/rules", json={
        **HOT_CONTACT_RULE, "trigger": {"type": "stage_entered",
                                        "stage_id": stages["Measurement"]}})
    assert good.status_code == 201, good.text
    assert (await ws.get("/api/v1/rules")).json()["data"] == [good.json()], \
        "nothing refused was stored"


async def test_only_owners_and_admins_write_rules(ws: Workspace) -> None:
    manager = await act_as(ws, await new_user(ws, "manager"))
    assert_problem(await manager.post("/api/v1/rules", json=HOT_CONTACT_RULE), 403)
    rule = await new_rule(ws, **HOT_CONTACT_RULE)
    assert (await manager.get(f"/api/v1/rules/{rule['id']}")).status_code == 200
    assert_problem(await manager.patch(f"/api/v1/rules/{rule['id']}",
                                       json={"enabled": False}), 403)
    admin = await act_as(ws, await new_user(ws, "admin"))
    assert (await admin.patch(f"/api/v1/rules/{rule['id']}",
                              json={"enabled": False})).status_code == 200


async def test_another_workspaces_rules_are_not_found(ws: Workspace, other_ws: Workspace) -> None:
    rule = await new_rule(ws, **HOT_CONTACT_RULE)
    for call in (other_ws.get(f"/api/v1/rules/{rule['id']}"),
                 other_ws.patch(f"/api/v1/rules/{rule['id']}", json={"enabled": False}),
                 other_ws.delete(f"/api/v1/rules/{rule['id']}"),
                 other_ws.get(f"/api/v1/rules/{rule['id']}/runs"),
                 other_ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
                     "entity_type": "contact",
                     "entity_id": "00000000-0000-7000-8000-000000000000"})):
        assert_problem(await call, 404)
    assert (await other_ws.get("/api/v1/rules")).json()["data"] == []
    # A record of another workspace cannot be dry-run against either.
    theirs = await new_contact(other_ws, full_name="Theirs")
    assert_problem(await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
        "entity_type": "contact", "entity_id": theirs["id"]}), 404)


async def test_dry_run_explains_and_writes_nothing(ws: Workspace) -> None:
    rule = await new_rule(ws, **HOT_CONTACT_RULE)
    cold = await new_contact(ws, full_name="Cold Carl", status="cold", tags=["web"])
    hot = await new_contact(ws, full_name="Hot Hanna", status="hot", tags=["web"])

    result = await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
        "entity_type": "contact", "entity_id": cold["id"]})
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["matched"] is False and body["actions"] == []
    reasons = {c["path"]: c["reason"] for c in body["explanation"]}
    assert reasons["conditions.all.0"] == "contact.status is 'cold': eq 'hot' does not hold"
    assert reasons["conditions.all.1"] == "contact.tags is ['web']: has 'web' holds"

    matched = (await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
        "entity_type": "contact", "entity_id": hot["id"]})).json()
    assert matched["matched"] is True
    [action] = matched["actions"]
    assert action["type"] == "create_task"
    assert action["params"]["title"] == "Call Hot Hanna"
    assert "the record's owner" in action["summary"]
    tasks = (await ws.get("/api/v1/tasks", params={"contact_id": hot["id"]})).json()["data"]
    assert tasks == [], "a dry-run writes nothing"

    # A proposed change, tried before saving it.
    proposal = {**HOT_CONTACT_RULE, "conditions": {"field": "contact.status", "op": "in",
                                                   "value": ["hot", "cold"]}}
    tried = (await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
        "entity_type": "contact", "entity_id": cold["id"], "rule": proposal})).json()
    assert tried["matched"] is True
    assert (await ws.get(f"/api/v1/rules/{rule['id']}")).json()["conditions"] == \
        rule["conditions"]


async def test_dry_run_against_a_past_event(ws: Workspace) -> None:
    rule = await new_rule(ws, name="Status changes",
                          trigger={"type": "record_updated", "object": "contact",
                                   "fields": ["status"]},
                          actions=[CALL_TASK])
    contact = await new_contact(ws, full_name="Zara", status="warm")
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"tags": ["x"]})
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"status": "hot"})
    events = (await ws.get(f"/api/v1/contacts/{contact['id']}/history")).json()["data"]
    tags_event, status_event = events[1], events[2]
    assert "status" not in tags_event["changed"] and "status" in status_event["changed"]

    miss = (await ws.post(f"/api/v1/rules/{rule['id']}/dry-run",
                          json={"event_id": tags_event["id"]})).json()
    assert miss["matched"] is False
    assert miss["explanation"][0]["reason"].startswith("none of status changed (changed: tags")
    hit = (await ws.post(f"/api/v1/rules/{rule['id']}/dry-run",
                         json={"event_id": status_event["id"]})).json()
    assert hit["matched"] is True and hit["explanation"][0]["reason"] == "status changed"
    assert hit["context"]["event"]["type"] == "contact.updated"

    bad = await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={})
    assert_problem(bad, 422)
    missing = await ws.post(f"/api/v1/rules/{rule['id']}/dry-run",
                            json={"event_id": "00000000-0000-7000-8000-000000000000"})
    assert_problem(missing, 404)


async def test_business_hours_move_due_times_to_the_next_opening(
        ws: Workspace, frozen: Any) -> None:
    from datetime import UTC, datetime

    hours = await ws.patch("/api/v1/workspaces/current", json={"settings": {
        "business_hours": {"days": [0, 1, 2, 3, 4], "start": "10:00", "end": "19:00"}}})
    assert hours.status_code == 200, hours.text
    assert_problem(await ws.patch("/api/v1/workspaces/current", json={"settings": {
        "business_hours": {"start": "19:00", "end": "10:00"}}}), 422)
    rule = await new_rule(ws, name="Call within business hours",
                          trigger={"type": "record_created", "object": "contact"},
                          actions=[{**CALL_TASK, "due": {"in": "15m", "business_hours": True}}])
    contact = await new_contact(ws, full_name="Weekend Lead",
                                phones=[{"number": "+7 495 123-45-67"}])
    frozen(datetime(2027, 3, 6, 9, 0, tzinfo=UTC))  # Saturday 12:00 in Moscow
    try:
        result = (await ws.post(f"/api/v1/rules/{rule['id']}/dry-run", json={
            "entity_type": "contact", "entity_id": contact["id"]})).json()
    finally:
        frozen(None)
    due = datetime.fromisoformat(result["actions"][0]["params"]["due_at"])
    assert due == datetime(2027, 3, 8, 7, 0, tzinfo=UTC), "Monday 10:00 in Moscow"


async def test_a_time_zone_too_long_for_a_file_name_is_a_422(client: Any) -> None:
    """Found by the fuzz test: ZoneInfo raised OSError for a 300-character name (a 500)."""
    response = await client.post("/api/v1/workspaces", json={
        "name": "Long zone", "owner_email": "long-zone@example.com",
        "owner_password": "correct horse battery", "timezone": "Europe/" + "x" * 300})
    assert_problem(response, 422)
