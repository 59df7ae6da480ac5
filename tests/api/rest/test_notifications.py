"""Notifications over REST: who is told what (assignment, reminders, overdue tasks and the
team head), exactly once per occasion, read / read-all, and nobody reads another's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.tasks.sweeps import flag_overdue_tasks, send_due_reminders
from tests.api.rest.conftest import act_as, all_pages, assert_problem, new_user
from tests.api.rest.test_tasks import FROZEN, MSK, frozen, new_task, new_team, sessions
from tests.conftest import Workspace

__all__ = ["frozen", "sessions"]  # fixtures used here

Sessions = async_sessionmaker[AsyncSession]


async def notifications(ws: Workspace, **params: Any) -> list[dict[str, Any]]:
    return await all_pages(ws, "/api/v1/notifications", **params)


async def sweep(sessions: Sessions, ws: Workspace, job: Any, now: datetime) -> int:
    """Run one sweep over one workspace in its own transaction, as the worker does."""
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        return int(await job(session, uuid.UUID(ws.id), now))


def about(rows: list[dict[str, Any]], task_id: str) -> list[str]:
    return [n["type"] for n in rows if n["entity_id"] == task_id]


async def test_assigning_a_task_tells_the_assignee(ws: Workspace) -> None:
    agent = await new_user(ws, "agent", "Anna")
    manager = await new_user(ws, "manager", "Maria")
    as_agent = await act_as(ws, agent)
    as_manager = await act_as(ws, manager)
    task = await new_task(ws, title="Call Ivan back", assignee_id=agent["id"],
                          due_at=f"2027-03-02T15:00:00{MSK}")
    told = await notifications(as_agent)
    assert len(told) == 1
    note = told[0]
    assert note["type"] == "task_assigned" and note["read_at"] is None
    assert (note["entity_type"], note["entity_id"]) == ("task", task["id"])
    assert note["user_id"] == agent["id"] and note["actor"].startswith("api_key:")
    assert "Call Ivan back" in note["title"]
    assert note["body"] == "Due 2027-03-02 15:00 Europe/Moscow", "on the workspace's clock"

    # Reassigning tells the new assignee; assigning yourself tells nobody.
    await ws.patch(f"/api/v1/tasks/{task['id']}", json={"assignee_id": manager["id"]})
    assert about(await notifications(as_manager), task["id"]) == ["task_assigned"]
    own = await new_task(as_agent, title="Note to self")
    assert about(await notifications(as_agent), own["id"]) == []
    # A patch that leaves the assignee alone tells nobody again; handing it back does.
    await ws.patch(f"/api/v1/tasks/{task['id']}", json={"title": "Call Ivan back today"})
    await ws.patch(f"/api/v1/tasks/{task['id']}", json={"assignee_id": agent["id"]})
    assert about(await notifications(as_agent), task["id"]) == ["task_assigned"] * 2
    assert about(await notifications(as_manager), task["id"]) == ["task_assigned"]


async def test_reminder_sweep_reminds_once_and_again_for_a_new_time(
        ws: Workspace, sessions: Sessions,
        frozen: Callable[[datetime | None], None]) -> None:
    agent = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent)
    frozen(FROZEN)
    task = await new_task(ws, title="Call tomorrow as asked", assignee_id=agent["id"],
                          reminder_at="2027-03-02T08:55:00Z", due_at="2027-03-02T09:30:00Z")
    later = await new_task(ws, assignee_id=agent["id"], reminder_at="2027-03-02T09:05:00Z")
    canceled = await new_task(ws, assignee_id=agent["id"], reminder_at="2027-03-02T08:00:00Z")
    await ws.patch(f"/api/v1/tasks/{canceled['id']}", json={"status": "canceled"})

    assert await sweep(sessions, ws, send_due_reminders, FROZEN) == 1
    assert await sweep(sessions, ws, send_due_reminders, FROZEN) == 0, "once per occasion"
    told = await notifications(as_agent)
    assert about(told, task["id"]) == ["task_reminder", "task_assigned"], "newest first"
    assert about(told, later["id"]) == ["task_assigned"]
    assert about(told, canceled["id"]) == ["task_assigned"]
    read = (await ws.get(f"/api/v1/tasks/{task['id']}")).json()
    assert read["reminded_at"] == "2027-03-02T09:00:00Z"
    assert read["version"] == 1, "sending the reminder is not an edit of the task"
    history = (await ws.get(f"/api/v1/tasks/{task['id']}/history")).json()["data"]
    assert history[-1]["type"] == "task.reminder_due" and history[-1]["actor"] == "system"
    assert (history[-1]["before"], history[-1]["after"]) == (
        {"reminded_at": None}, {"reminded_at": "2027-03-02T09:00:00Z"})

    # A new reminder time is a new occasion.
    await ws.patch(f"/api/v1/tasks/{task['id']}", json={"reminder_at": "2027-03-02T09:10:00Z"})
    assert await sweep(sessions, ws, send_due_reminders, FROZEN) == 0, "not yet"
    ten_past = FROZEN + timedelta(minutes=10)
    assert await sweep(sessions, ws, send_due_reminders, ten_past) == 2
    assert await sweep(sessions, ws, send_due_reminders, ten_past) == 0
    assert about(await notifications(as_agent), task["id"]) == [
        "task_reminder", "task_reminder", "task_assigned"]


async def test_overdue_sweep_tells_the_assignee_and_team_heads_exactly_once(
        ws: Workspace, sessions: Sessions,
        frozen: Callable[[datetime | None], None]) -> None:
    head = await new_user(ws, "manager", "Helga Head")
    other_head = await new_user(ws, "manager", "Otto Head")
    agent = await new_user(ws, "agent", "Anna Agent")
    await new_team(ws, "Windows", head, [agent])
    await new_team(ws, "Installers", other_head, [agent, other_head])
    await new_team(ws, "Heads", head, [head])  # a head of their own team is not told twice
    as_head, as_other, as_agent = (await act_as(ws, head), await act_as(ws, other_head),
                                   await act_as(ws, agent))
    frozen(FROZEN)
    offer = await new_task(ws, title="Send the commercial offer", assignee_id=agent["id"],
                           due_at="2027-02-28T09:00:00Z")
    heads_own = await new_task(ws, title="Head's own call", assignee_id=head["id"],
                               due_at="2027-03-02T08:00:00Z")
    not_yet = await new_task(ws, assignee_id=agent["id"], due_at="2027-03-02T10:00:00Z")
    done = await new_task(ws, assignee_id=agent["id"], due_at="2027-03-01T10:00:00Z")
    await ws.post(f"/api/v1/tasks/{done['id']}/complete")

    assert await sweep(sessions, ws, flag_overdue_tasks, FROZEN) == 2
    assert await sweep(sessions, ws, flag_overdue_tasks, FROZEN) == 0, "the sweep ran twice"

    agent_told = await notifications(as_agent)
    assert about(agent_told, offer["id"]) == ["task_overdue", "task_assigned"]
    assert about(agent_told, not_yet["id"]) == ["task_assigned"]
    assert about(agent_told, done["id"]) == ["task_assigned"]
    for who in (as_head, as_other):
        told = await notifications(who)
        assert about(told, offer["id"]) == ["task_overdue"]
        assert "Anna Agent" in next(n["title"] for n in told if n["entity_id"] == offer["id"])
    assert about(await notifications(as_head), heads_own["id"]) == ["task_overdue",
                                                                    "task_assigned"]
    overdue = (await ws.get(f"/api/v1/tasks/{offer['id']}")).json()
    assert overdue["overdue_notified_at"] == "2027-03-02T09:00:00Z" and overdue["overdue"]
    history = (await ws.get(f"/api/v1/tasks/{offer['id']}/history")).json()["data"]
    assert [e["type"] for e in history].count("task.overdue") == 1

    # Done late, reopened for a new time: when that passes, it is overdue again.
    await ws.post(f"/api/v1/tasks/{offer['id']}/complete", json={"outcome": "no_answer"})
    await ws.post(f"/api/v1/tasks/{offer['id']}/reopen",
                  json={"due_at": "2027-03-02T09:30:00Z"})
    assert await sweep(sessions, ws, flag_overdue_tasks, FROZEN) == 0
    an_hour_later = FROZEN + timedelta(hours=1, minutes=1)
    assert await sweep(sessions, ws, flag_overdue_tasks, an_hour_later) == 2  # and not_yet
    assert about(await notifications(as_agent), offer["id"]).count("task_overdue") == 2
    assert about(await notifications(as_head), offer["id"]).count("task_overdue") == 2


async def test_a_workspace_that_escalates_by_rule_can_keep_heads_out_of_the_builtin_notice(
        ws: Workspace, sessions: Sessions,
        frozen: Callable[[datetime | None], None]) -> None:
    head = await new_user(ws, "manager", "Helga Head")
    agent = await new_user(ws, "agent", "Anna Agent")
    await new_team(ws, "Windows", head, [agent])
    updated = await ws.patch("/api/v1/workspaces/current",
                             json={"settings": {"overdue_tells_team_heads": False}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["settings"]["overdue_tells_team_heads"] is False
    as_head, as_agent = await act_as(ws, head), await act_as(ws, agent)
    frozen(FROZEN)
    offer = await new_task(ws, title="Send the offer", assignee_id=agent["id"],
                           due_at="2027-02-28T09:00:00Z")
    assert await sweep(sessions, ws, flag_overdue_tasks, FROZEN) == 1
    assert about(await notifications(as_agent), offer["id"]) == ["task_overdue",
                                                                 "task_assigned"]
    assert about(await notifications(as_head), offer["id"]) == []


async def test_read_one_read_all_and_unread_filter(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent)
    tasks = [await new_task(ws, title=f"Task {i}", assignee_id=agent["id"]) for i in range(3)]
    told = await notifications(as_agent)
    assert [n["entity_id"] for n in told] == [t["id"] for t in reversed(tasks)], "newest first"
    count = await as_agent.get("/api/v1/notifications/unread-count")
    assert count.json() == {"count": 3}

    first = told[-1]
    read = await as_agent.post(f"/api/v1/notifications/{first['id']}/read")
    assert read.status_code == 200, read.text
    read_at = read.json()["read_at"]
    assert read_at is not None
    again = await as_agent.post(f"/api/v1/notifications/{first['id']}/read")
    assert again.json()["read_at"] == read_at, "the first read time stays"
    assert first["id"] not in [n["id"] for n in await notifications(as_agent, unread="true")]
    assert [n["id"] for n in await notifications(as_agent, unread="false")] == [first["id"]]
    assert len(await notifications(as_agent, limit=1)) == 3, "pages follow the cursor"

    all_read = await as_agent.post("/api/v1/notifications/read-all")
    assert all_read.status_code == 200 and all_read.json() == {"count": 2}
    assert (await as_agent.post("/api/v1/notifications/read-all")).json() == {"count": 0}
    assert await notifications(as_agent, unread="true") == []
    assert (await as_agent.get("/api/v1/notifications/unread-count")).json() == {"count": 0}
    assert [n["type"] for n in await notifications(as_agent, type="task_assigned")] == \
        ["task_assigned"] * 3
    assert_problem(await as_agent.get("/api/v1/notifications", params={"sort": "title"}), 422)
    assert_problem(await as_agent.get("/api/v1/notifications", params={"cursor": "!"}), 422)


async def test_another_users_notification_is_not_found(ws: Workspace) -> None:
    anna = await new_user(ws, "agent")
    boris = await new_user(ws, "manager")
    as_anna, as_boris = await act_as(ws, anna), await act_as(ws, boris)
    await new_task(ws, assignee_id=anna["id"])
    annas = (await notifications(as_anna))[0]
    url = f"/api/v1/notifications/{annas['id']}"
    assert_problem(await as_boris.get(url), 404)
    assert_problem(await as_boris.post(f"{url}/read"), 404)
    assert (await as_boris.post("/api/v1/notifications/read-all")).json() == {"count": 0}
    assert await notifications(as_boris) == []
    assert (await as_anna.get(url)).json()["read_at"] is None, "still unread for Anna"
    assert_problem(await as_anna.post(f"/api/v1/notifications/{uuid.uuid4()}/read"), 404)
    # An API key is not a person: it has no notifications to read.
    assert_problem(await ws.get("/api/v1/notifications"), 403)
    assert_problem(await ws.post("/api/v1/notifications/read-all"), 403)
