"""S4. The "no answer" button — a call cadence, configured as a rule, run by the worker.

Masha, a manager, calls a lead from a web request. Each time nobody answers she completes the
call task with the outcome `no_answer`; that is all she does. The rule reschedules the same
task: 1st no-answer -> in 5 minutes, 2nd -> 30 minutes, 3rd -> 3 hours, 4th -> 1 day; the
5th no-answer moves the deal to "Archive" (lost, reason no_answer). Configured over REST,
checked over GraphQL; the real relay and arq worker do the work, on a frozen clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.rest.conftest import act_as, new_contact, new_user
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.test_rules_worker import default_stages, new_rule, runs

START = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow

TASK = """query($id: ID!) { task(id: $id) { status dueAt attempt outcome } }"""


async def test_no_answer_reschedules_then_archives(
        ws: Workspace, auto: Automation, frozen: Callable[[datetime | None], None]) -> None:
    masha_user = await new_user(ws, "manager", "Masha")
    masha = await act_as(ws, masha_user)
    stages = await default_stages(ws)
    rule = await new_rule(ws, name="No-answer cadence",
                          trigger={"type": "task_completed", "task_type": "call",
                                   "outcome": "no_answer"},
                          actions=[{"type": "cadence", "offsets": ["5m", "30m", "3h", "1d"],
                                    "on_exhausted": [{"type": "move_deal",
                                                      "stage_id": stages["Archive"],
                                                      "lost_reason": "no_answer"}]}])
    frozen(START)
    lead = await new_contact(masha, full_name="Oleg Sidorov",
                             phones=[{"number": "8 (495) 123-45-67"}])
    deal = (await masha.post("/api/v1/deals", json={
        "title": "Balcony glazing", "contact_ids": [lead["id"]],
        "owner_id": masha_user["id"]})).json()
    task = (await masha.post("/api/v1/tasks", json={
        "title": "Call Oleg", "type": "call", "deal_id": deal["id"], "contact_id": lead["id"],
        "due_at": START.isoformat()})).json()
    await auto.drain()

    now = START
    for attempt, wait in enumerate([timedelta(minutes=5), timedelta(minutes=30),
                                    timedelta(hours=3), timedelta(days=1)], start=1):
        done = await masha.post(f"/api/v1/tasks/{task['id']}/complete",
                                json={"outcome": "no_answer", "note": f"try {attempt}"})
        assert done.status_code == 200, done.text
        await auto.drain()
        seen = (await masha.gql(TASK, {"id": task["id"]}))["data"]["task"]
        assert seen["status"] == "open", (attempt, seen)
        assert seen["attempt"] == attempt
        assert datetime.fromisoformat(seen["dueAt"]) == now + wait, attempt
        now += wait
        frozen(now)

    await masha.post(f"/api/v1/tasks/{task['id']}/complete", json={"outcome": "no_answer"})
    await auto.drain()
    archived = (await masha.get(f"/api/v1/deals/{deal['id']}")).json()
    assert archived["stage_id"] == stages["Archive"]
    assert archived["status"] == "lost" and archived["lost_reason"] == "no_answer"
    closed = (await masha.get(f"/api/v1/tasks/{task['id']}")).json()
    assert closed["status"] == "done" and closed["attempt"] == 5

    history: list[dict[str, Any]] = await runs(ws, rule["id"])
    assert [r["status"] for r in history] == ["succeeded"] * 5
    assert history[0]["actions"][0]["summary"] == \
        "attempt 5: the 4 retries are used up"
    assert history[0]["actions"][1]["type"] == "move_deal"
    # The stage history says the rule moved the deal.
    moves = (await masha.get(f"/api/v1/deals/{deal['id']}/stage-history")).json()["data"]
    assert moves[-1]["entered_by"] == f"rule:{rule['id']}"
    # A completion with another outcome is not a no-answer: nothing is rescheduled.
    other = (await masha.post("/api/v1/tasks", json={"title": "Call again", "type": "call",
                                                     "deal_id": deal["id"]})).json()
    await masha.post(f"/api/v1/tasks/{other['id']}/complete", json={"outcome": "done"})
    await auto.drain()
    assert (await masha.get(f"/api/v1/tasks/{other['id']}")).json()["status"] == "done"
    frozen(None)
