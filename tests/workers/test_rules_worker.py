"""Rules run by the real worker: relay -> arq -> handle_event, against PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update

from app.db import unit_of_work
from app.domain.outbox.models import Event
from app.domain.tasks.models import Task
from app.workers.events import handle_event
from tests.api.rest.conftest import new_contact, new_user
from tests.conftest import Workspace
from tests.workers.harness import Automation


async def default_stages(ws: Workspace) -> dict[str, str]:
    pipelines = (await ws.get("/api/v1/pipelines")).json()["data"]
    default = next(p for p in pipelines if p["is_default"])
    return {s["name"]: s["id"] for s in default["stages"]} | {"pipeline_id": default["id"]}


async def new_rule(ws: Workspace, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/rules", json={"name": "rule", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def runs(ws: Workspace, rule_id: str) -> list[dict[str, Any]]:
    response = await ws.get(f"/api/v1/rules/{rule_id}/runs")
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def open_tasks(ws: Workspace, **params: Any) -> list[dict[str, Any]]:
    response = await ws.get("/api/v1/tasks", params={"status": "open", **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


CALL_TASK = {"type": "create_task", "title": "Call {{ contact.full_name }}",
             "task_type": "call", "due": {"in": "15m"}, "assignee": {"strategy": "owner"}}


async def test_new_deal_gets_a_call_task_once_however_often_delivered(
        ws: Workspace, auto: Automation) -> None:
    manager = await new_user(ws, "manager", "Masha")
    stages = await default_stages(ws)
    rule = await new_rule(ws, trigger={"type": "stage_entered", "stage_id": stages["New request"]},
                          actions=[CALL_TASK])
    contact = await new_contact(ws, full_name="Ivan Petrov", phones=[{"number": "+7 495 123-45-67"}])
    deal = (await ws.post("/api/v1/deals", json={
        "title": "Windows", "contact_ids": [contact["id"]], "owner_id": manager["id"]})).json()

    assert await auto.drain() >= 1
    tasks = await open_tasks(ws, deal_id=deal["id"])
    assert [t["title"] for t in tasks] == ["Call Ivan Petrov"]
    assert tasks[0]["assignee_id"] == manager["id"]
    assert tasks[0]["created_by"] == f"rule:{rule['id']}"

    # The same event delivered again (a lost ack, a second worker): nothing more happens.
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        event_id = (await session.execute(select(Event.id).where(
            Event.entity_id == uuid.UUID(deal["id"]), Event.type == "deal.created"))).scalar_one()
        await session.execute(update(Event).where(Event.id == event_id)
                              .values(handled_at=None, dispatched_at=None))
    await auto.drain()
    await handle_event(auto.ctx, ws.id, str(event_id))
    assert len(await open_tasks(ws, deal_id=deal["id"])) == 1
    [run] = await runs(ws, rule["id"])
    assert run["status"] == "succeeded"
    assert run["event_type"] == "deal.created"
    assert run["actions"][0]["result"]["task_id"] == tasks[0]["id"]


async def test_conditions_that_do_not_hold_are_recorded_with_reasons(
        ws: Workspace, auto: Automation) -> None:
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "contact"},
                          conditions={"all": [{"field": "contact.status", "op": "eq",
                                               "value": "hot"}]},
                          actions=[{**CALL_TASK, "assignee": {"strategy": "user",
                                                              "user_id": ws.owner_id}}])
    await new_contact(ws, full_name="Cold Lead", status="cold")
    hot = await new_contact(ws, full_name="Hot Lead", status="hot")
    await auto.drain()
    by_status = {r["status"]: r for r in await runs(ws, rule["id"])}
    assert set(by_status) == {"succeeded", "not_matched"}
    reasons = [c["reason"] for c in by_status["not_matched"]["explanation"]]
    assert "contact.status is 'cold': eq 'hot' does not hold" in reasons
    assert [t["title"] for t in await open_tasks(ws, contact_id=hot["id"])] == ["Call Hot Lead"]


async def test_automation_chains_stop_at_a_bounded_depth(ws: Workspace, auto: Automation) -> None:
    # Every task created makes another task: without a bound this never ends.
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "task"},
                          actions=[{"type": "create_task", "title": "again", "task_type": "todo",
                                    "assignee": {"strategy": "user", "user_id": ws.owner_id}}])
    first = (await ws.post("/api/v1/tasks", json={"title": "start"})).json()
    await auto.drain(rounds=20)
    statuses = [r["status"] for r in await runs(ws, rule["id"])]
    assert statuses.count("loop_stopped") == 1
    assert statuses.count("succeeded") == 5
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        count = (await session.execute(select(func.count()).select_from(Task).where(
            Task.title == "again"))).scalar_one()
    assert count == 5, first
