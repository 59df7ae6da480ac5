"""S5 with rules: follow-ups the workspace configures on top of the built-in reminders.

* "The commercial offer task is two days overdue": when an offer task becomes overdue, the
  rule waits two days and, if the task is *still open* then, tells the head of the team.
  An offer sent on Saturday is not escalated on Sunday.
* A rotting deal gets a "revive it" call task for its owner, due within business hours in
  the customer's time zone.
All on a frozen clock, with the minute sweep and the real relay and worker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.rest.conftest import act_as, new_contact, new_user
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.test_rules_worker import default_stages, new_rule, runs

THU_NOON = datetime(2027, 2, 25, 9, 0, tzinfo=UTC)  # Thursday 12:00 in Moscow
FRI_1800 = datetime(2027, 2, 26, 15, 0, tzinfo=UTC)


async def rule_notices(ws: Workspace) -> list[str]:
    rows = (await ws.get("/api/v1/notifications")).json()["data"]
    return [n["title"] for n in rows if n["type"] == "rule"]


async def test_overdue_offers_escalate_after_two_days_and_rotting_deals_get_a_task(
        ws: Workspace, auto: Automation, frozen: Callable[[datetime | None], None]) -> None:
    anna_user, elena_user = await new_user(ws, "agent", "Anna"), await new_user(ws, "manager",
                                                                                "Elena")
    await new_team(ws, "Sales", elena_user, [anna_user])
    anna, elena = await act_as(ws, anna_user), await act_as(ws, elena_user)
    stages = await default_stages(ws)
    escalate = await new_rule(
        ws, name="Offer two days overdue: tell the head",
        trigger={"type": "task_overdue", "task_type": "email"},
        conditions={"field": "task.status", "op": "eq", "value": "open"},
        actions=[{"type": "wait", "for": "2d", "recheck": True},
                 {"type": "notify", "to": {"strategy": "team_head"},
                  "title": "Two days overdue: {{ task.title }}"}])
    revive = await new_rule(
        ws, name="Rotting deal: revive it",
        trigger={"type": "deal_rotting", "pipeline_id": stages["pipeline_id"]},
        actions=[{"type": "create_task", "task_type": "call", "title": "Revive: {{ deal.title }}",
                  "due": {"in": "2h", "business_hours": True},
                  "assignee": {"strategy": "owner"}}])

    frozen(THU_NOON)
    ivan = await new_contact(anna, full_name="Ivan", phones=[{"number": "+7 343 123-45-67"}])
    deal = (await anna.post("/api/v1/deals", json={
        "title": "Windows", "contact_ids": [ivan["id"]], "owner_id": anna_user["id"]})).json()
    offer = (await elena.post("/api/v1/tasks", json={
        "title": "Send the commercial offer", "type": "email", "assignee_id": anna_user["id"],
        "deal_id": deal["id"], "due_at": FRI_1800.isoformat()})).json()
    second = (await elena.post("/api/v1/tasks", json={
        "title": "Send the second offer", "type": "email", "assignee_id": anna_user["id"],
        "due_at": FRI_1800.isoformat()})).json()
    await auto.drain()

    # Friday noon: the deal has idled a day in "New request" (rots after 1 day).
    frozen(THU_NOON + timedelta(days=1))
    await auto.sweep(ws)
    [revival] = (await anna.get("/api/v1/tasks", params={
        "deal_id": deal["id"], "type": "call"})).json()["data"]
    assert revival["title"] == "Revive: Windows"
    assert revival["assignee_id"] == anna_user["id"]
    # Due in 2 hours: Friday 16:00 in Yekaterinburg (the contact's zone) is within hours.
    assert datetime.fromisoformat(revival["due_at"]) == THU_NOON + timedelta(days=1, hours=2)

    # Friday 18:01: both offers are overdue; the rule starts waiting.
    frozen(FRI_1800 + timedelta(minutes=1))
    await auto.sweep(ws)
    assert {r["status"] for r in await runs(ws, escalate["id"])} == {"waiting"}, \
        [r["error"] for r in await runs(ws, escalate["id"])]
    # Saturday: Anna sends the second offer.
    frozen(FRI_1800 + timedelta(days=1))
    await anna.post(f"/api/v1/tasks/{second['id']}/complete")
    await auto.drain()
    assert await rule_notices(elena) == []

    # Sunday 18:01: two days on, only the offer still open is escalated — once.
    frozen(FRI_1800 + timedelta(days=2, minutes=1))
    await auto.sweep(ws)
    await auto.sweep(ws)
    assert await rule_notices(elena) == ["Two days overdue: Send the commercial offer"]
    by_task: dict[str, Any] = {r["entity_id"]: r for r in await runs(ws, escalate["id"])}
    assert by_task[offer["id"]]["status"] == "succeeded"
    assert by_task[offer["id"]]["actions"][-1]["type"] == "notify"
    skipped = by_task[second["id"]]["actions"][-1]
    assert skipped["result"]["skipped"] == "the conditions no longer hold"
    assert [r["status"] for r in await runs(ws, revive["id"])] == ["succeeded"]
    frozen(None)
