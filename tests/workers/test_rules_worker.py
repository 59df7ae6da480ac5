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


async def test_a_refused_action_fails_the_run_visibly_and_changes_nothing(
        ws: Workspace, auto: Automation) -> None:
    stages = await default_stages(ws)
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "deal"},
                          actions=[{**CALL_TASK, "assignee": {"strategy": "user",
                                                              "user_id": ws.owner_id}},
                                   {"type": "move_deal", "stage_id": stages["Pricing"]}])
    archived = await ws.post(f"/api/v1/pipelines/{stages['pipeline_id']}/stages/"
                             f"{stages['Pricing']}/archive")
    assert archived.status_code == 200, archived.text
    deal = (await ws.post("/api/v1/deals", json={"title": "Doors"})).json()
    await auto.drain()
    [run] = await runs(ws, rule["id"])
    assert run["status"] == "failed" and run["attempts"] == 1
    assert "archived" in run["error"]
    assert await open_tasks(ws, deal_id=deal["id"]) == [], "the run's task was rolled back"
    history = (await ws.get(f"/api/v1/rules/{rule['id']}/history")).json()["data"]
    [failed] = [e for e in history if e["type"] == "rule.run_failed"]
    assert failed["after"]["run_id"] == run["id"] and failed["actor"] == f"rule:{rule['id']}"


async def test_a_transient_failure_is_retried_with_backoff(
        ws: Workspace, auto: Automation, settings: Any, frozen: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from app.db import create_engine

    team_members = [await new_user(ws, "agent", "A"), await new_user(ws, "agent", "B")]
    team = (await ws.post("/api/v1/teams", json={
        "name": "Callers", "member_ids": [m["id"] for m in team_members]})).json()
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "contact"},
                          actions=[{**CALL_TASK, "assignee": {"strategy": "round_robin",
                                                              "team_id": team["id"]}}])
    owner = create_engine(settings, as_app_role=False)

    async def privilege(sql: str) -> None:
        async with owner.begin() as conn:
            await conn.execute(text(sql.format(role=settings.app_role)))

    start = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
    frozen(start)
    try:
        # The database refuses the round-robin write for a while (an outage, a bad grant).
        await privilege('REVOKE INSERT, UPDATE ON round_robin_turns FROM "{role}"')
        contact = await new_contact(ws, full_name="Retry Me")
        await auto.drain()
        [run] = await runs(ws, rule["id"])
        assert run["status"] == "retrying" and run["attempts"] == 1
        assert datetime.fromisoformat(run["next_attempt_at"]) == start + timedelta(seconds=10)
        await privilege('GRANT INSERT, UPDATE ON round_robin_turns TO "{role}"')
        frozen(start + timedelta(seconds=5))
        await auto.sweep(ws)
        assert (await runs(ws, rule["id"]))[0]["status"] == "retrying", "not before its time"
        frozen(start + timedelta(seconds=11))
        await auto.sweep(ws)
    finally:
        await privilege('GRANT INSERT, UPDATE ON round_robin_turns TO "{role}"')
        await owner.dispose()
        frozen(None)
    [run] = await runs(ws, rule["id"])
    assert run["status"] == "succeeded" and run["attempts"] == 2 and run["error"] is None
    assert [t["title"] for t in await open_tasks(ws, contact_id=contact["id"])] == \
        ["Call Retry Me"]


async def test_webhook_calls_retry_with_the_same_webhook_id(
        ws: Workspace, auto: Automation, frozen: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.workers.test_worker_crashes import Receiver

    receiver = Receiver(fail_first=2)
    rule = await new_rule(ws, trigger={"type": "record_created", "object": "contact"},
                          actions=[{"type": "call_webhook", "url": receiver.url}])
    start = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
    try:
        frozen(start)
        contact = await new_contact(ws, full_name="Hooked")
        await auto.sweep(ws)  # the run, then the first call: 503
        frozen(start + timedelta(seconds=11))
        await auto.sweep(ws)  # the second call: 503
        frozen(start + timedelta(seconds=11 + 61))
        await auto.sweep(ws)  # the third: 204
        frozen(start + timedelta(hours=3))
        await auto.sweep(ws)  # nothing left to send
    finally:
        frozen(None)
        receiver.server.shutdown()
    [(webhook_id, calls)] = receiver.ids.items()
    assert calls == 3, "two failures, one success, all with one webhook-id"
    assert receiver.bodies[-1]["record"]["contact"]["id"] == contact["id"]
    assert receiver.bodies[-1]["event"]["type"] == "contact.created"
    [run] = await runs(ws, rule["id"])
    assert run["actions"][0]["result"]["scheduled_action_id"] == webhook_id


async def test_a_busy_workspace_does_not_hold_back_the_others(
        ws: Workspace, other_ws: Workspace, auto: Automation) -> None:
    from app.domain.outbox.service import record_event
    from app.domain.shared.principal import system_principal
    from app.workers.relay import PER_PASS, dispatch_once

    for workspace in (ws, other_ws):
        await new_rule(workspace, trigger={"type": "record_created", "object": "contact"},
                       actions=[{"type": "notify", "title": "new", "to": {"strategy": "owner"}}])
    await auto.drain()
    busy = await new_contact(ws, full_name="Imported")
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        system = system_principal(uuid.UUID(ws.id))
        for _ in range(PER_PASS * 3):  # an import's worth of events
            await record_event(session, system, type="contact.created", entity_type="contact",
                               entity_id=uuid.UUID(busy["id"]), after={})
    quiet = await new_contact(other_ws, full_name="Walk-in")

    await dispatch_once(auto.sessions, auto.ctx["redis"], auto.ctx["settings"])
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        dispatched = (await session.execute(select(func.count()).select_from(Event).where(
            Event.dispatched_at.is_not(None), Event.handled_at.is_(None)))).scalar_one()
    async with unit_of_work(auto.sessions, uuid.UUID(other_ws.id)) as session:
        walk_in = (await session.execute(select(Event.dispatched_at).where(
            Event.entity_id == uuid.UUID(quiet["id"])))).scalar_one()
    assert dispatched <= PER_PASS, "one pass takes a bounded share of the busy workspace"
    assert walk_in is not None, "the quiet workspace's event goes out in the same pass"
    await auto.drain(rounds=20)
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        left = (await session.execute(select(func.count()).select_from(Event).where(
            Event.handled_at.is_(None)))).scalar_one()
    assert left == 0


async def test_an_event_its_job_passed_over_is_dispatched_again_and_handled(
        ws: Workspace, auto: Automation) -> None:
    """A job can end without handling its events (they were locked by a transaction that
    then rolled back). After the redispatch period the relay sends them again, and that
    second job really runs: arq refuses a job id it still holds a result for, so the
    second dispatch must not reuse the first one's id."""
    from app.workers.relay import dispatch_once

    rule = await new_rule(ws, trigger={"type": "record_created", "object": "contact"},
                          actions=[CALL_TASK])
    contact = await new_contact(ws, full_name="Olga Smirnova")
    assert await dispatch_once(auto.sessions, auto.ctx["redis"], auto.ctx["settings"]) == 1
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as holder:
        await holder.execute(select(Event.id).where(
            Event.entity_id == uuid.UUID(contact["id"])).with_for_update())
        assert await auto.run_jobs() == 1  # the job ran, found its event taken, did nothing
        await holder.rollback()
    assert await runs(ws, rule["id"]) == []

    auto.ctx["settings"] = auto.ctx["settings"].model_copy(
        update={"relay_redispatch_seconds": 0.0})
    assert await auto.drain() >= 1
    assert [t["title"] for t in await open_tasks(ws, contact_id=contact["id"])] == [
        "Call Olga Smirnova"]
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        left = (await session.execute(select(func.count()).select_from(Event).where(
            Event.handled_at.is_(None)))).scalar_one()
    assert left == 0


async def test_a_fanning_out_chain_stops_at_its_budget(ws: Workspace, auto: Automation) -> None:
    from app.domain.automations.runner import CHAIN_BUDGET

    # Three rules, each making a task for every task: 3, 9, 27, 81 … runs a generation.
    for i in range(3):
        await new_rule(ws, trigger={"type": "record_created", "object": "task"},
                       actions=[{"type": "create_task", "title": f"fan {i}", "task_type": "todo",
                                 "assignee": {"strategy": "user", "user_id": ws.owner_id}}])
    await ws.post("/api/v1/tasks", json={"title": "seed"})
    await auto.drain(rounds=30)
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        made = (await session.execute(select(func.count()).select_from(Task).where(
            Task.title.like("fan %")))).scalar_one()
    # Without the budget the depth bound allows 3 + 9 + 27 + 81 + 243 = 363. Jobs of one chain
    # running at once (10 in the harness, 3 rules each) may all pass the check before the
    # others commit: the budget holds to within what is in flight.
    assert CHAIN_BUDGET - 3 <= made <= CHAIN_BUDGET + 10 * 3, made


async def test_a_workspace_has_at_most_100_enabled_rules(ws: Workspace) -> None:
    from app.domain.automations.service import MAX_ENABLED_RULES

    body = {"trigger": {"type": "record_created", "object": "contact"},
            "actions": [{"type": "notify", "title": "x", "to": {"strategy": "owner"}}]}
    for i in range(MAX_ENABLED_RULES):
        await new_rule(ws, **body, name=f"rule {i}")
    refused = await ws.post("/api/v1/rules", json={**body, "name": "one too many"})
    assert refused.status_code == 409, refused.text
    spare = await new_rule(ws, **body, name="spare", enabled=False)
    assert (await ws.patch(f"/api/v1/rules/{spare['id']}",
                           json={"enabled": True})).status_code == 409
    first = (await ws.get("/api/v1/rules", params={"limit": 1, "enabled": "true"})).json()["data"][0]
    await ws.patch(f"/api/v1/rules/{first['id']}", json={"enabled": False})
    assert (await ws.patch(f"/api/v1/rules/{spare['id']}",
                           json={"enabled": True})).status_code == 200
