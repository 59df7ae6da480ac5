"""`form.submitted` drives pipeline rules (S3 step 1): a request from the website form gets
the manager a call task due in 15 minutes — with the real relay and arq worker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.rest.conftest import new_user
from tests.api.rest.test_form_submissions import new_form, submit, visitor_for
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.test_rules_worker import default_stages, new_rule, open_tasks, runs

MON_10 = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)


async def test_a_form_request_gets_the_manager_a_call_task_in_15_minutes(
        ws: Workspace, auto: Automation, app: Any,
        frozen: Callable[[datetime | None], None]) -> None:
    masha = await new_user(ws, "manager", "Masha")
    sales = await new_team(ws, "Sales", None, [masha])
    stages = await default_stages(ws)
    order = await new_form(ws, name="Window order", pipeline_id=stages["pipeline_id"],
                           owner={"strategy": "round_robin", "team_id": sales["id"]})
    callback = await new_form(ws, name="Call me back")  # no pipeline: only the inbox
    rule = await new_rule(
        ws, name="A website request: call within 15 minutes",
        trigger={"type": "event", "event": "form.submitted"},
        conditions={"field": "event.after.form_id", "op": "eq", "value": order["id"]},
        actions=[{"type": "create_task", "task_type": "call",
                  "title": "Call {{ contact.full_name }} to clarify the order "
                           "({{ event.after.fields.wish }})",
                  "due": {"in": "15m"}, "assignee": {"strategy": "owner"}}])

    frozen(MON_10)
    async with visitor_for(app) as visitor:
        sent = await submit(visitor, order, json={
            "name": "Ivan Petrov", "phone": "8 (495) 123-45-67", "wish": "3 windows"})
        assert sent.status_code == 201, sent.text
        other = await submit(visitor, callback, json={"name": "Olga", "phone": "89160001122"})
        assert other.status_code == 201, other.text
    await auto.drain()

    [task] = await open_tasks(ws, type="call")
    assert task["title"] == "Call Ivan Petrov to clarify the order (3 windows)"
    assert task["assignee_id"] == masha["id"]
    assert datetime.fromisoformat(task["due_at"]) == MON_10 + timedelta(minutes=15)
    deal = (await ws.get(f"/api/v1/deals/{task['deal_id']}")).json()
    assert deal["stage_id"] == stages["New request"] and deal["owner_id"] == masha["id"]
    assert task["contact_id"] == deal["contact_ids"][0]
    rule_runs = await runs(ws, rule["id"])
    assert [r["event_type"] for r in rule_runs if r["status"] == "succeeded"] == [
        "form.submitted"]
