"""Tasks over REST: workspace task types, UTC times on the contact's clock, complete / reopen
with attempts, "my work" buckets on a frozen clock, team agendas, and visibility by assignee."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, session_factory, unit_of_work
from app.domain.deals.models import Deal
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared.clock import clock
from tests.api.rest.conftest import (
    act_as,
    all_pages,
    assert_problem,
    error_locs,
    events_since,
    new_contact,
    new_user,
)
from tests.conftest import Workspace

# Tuesday 2 March 2027, 12:00 in Moscow (the test workspaces' time zone).
FROZEN = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
MSK = "+03:00"


@pytest.fixture
def frozen() -> Iterator[Callable[[datetime | None], None]]:
    """Freeze the server's clock (it runs in this process); always thawed afterwards.
    Get access tokens before freezing: their expiry is checked against the real time."""
    yield clock.freeze
    clock.freeze(None)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Direct database access, as the worker has it (for sweeps and arranging deals)."""
    engine = create_engine(settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def new_task(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/tasks", json={"title": "Call the customer", **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_team(ws: Workspace, name: str, head: dict[str, Any] | None,
                   members: list[dict[str, Any]]) -> dict[str, Any]:
    response = await ws.post("/api/v1/teams", json={
        "name": name, "head_id": head["id"] if head else None,
        "member_ids": [m["id"] for m in members]})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_deal(sessions: async_sessionmaker[AsyncSession], ws: Workspace, owner_id: str,
                   *, rotting: bool = True) -> uuid.UUID:
    """A deal idle for five days in a stage that rots after one, straight in the database
    (the deals API is another module's); `rotting`: already flagged as rotting."""
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        common = {"workspace_id": uuid.UUID(ws.id), "created_by": "system",
                  "updated_by": "system"}
        pipeline = Pipeline(name=f"P {uuid.uuid4().hex[:6]}", **common)
        session.add(pipeline)
        await session.flush()
        stage = Stage(pipeline_id=pipeline.id, name="New request", rotting_days=1, **common)
        session.add(stage)
        await session.flush()
        deal = Deal(title="Windows for the dacha", pipeline_id=pipeline.id, stage_id=stage.id,
                    currency="RUB", owner_id=uuid.UUID(owner_id),
                    stage_entered_at=FROZEN - timedelta(days=5),
                    rotting_since=FROZEN - timedelta(days=3) if rotting else None, **common)
        session.add(deal)
        await session.flush()
        return deal.id


async def get_deal(sessions: async_sessionmaker[AsyncSession], ws: Workspace,
                   deal_id: uuid.UUID) -> Deal:
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        deal = await session.get(Deal, (uuid.UUID(ws.id), deal_id))
        assert deal is not None
        return deal


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


# Types

async def test_task_types_come_from_the_workspace_list(ws: Workspace) -> None:
    assert (await new_task(ws, type="measurement"))["type"] == "measurement"
    assert (await new_task(ws))["type"] == "todo", "the default type"
    refused = await ws.post("/api/v1/tasks", json={"title": "Measure", "type": "measurement2"})
    assert_problem(refused, 422)
    assert error_locs(refused) == [["body", "type"]]

    current = (await ws.get("/api/v1/workspaces/current")).json()["settings"]["task_types"]
    updated = await ws.patch("/api/v1/workspaces/current",
                             json={"settings": {"task_types": [*current, "measurement2"]}})
    assert updated.status_code == 200, updated.text
    assert (await new_task(ws, type="measurement2"))["type"] == "measurement2"

    task = await new_task(ws, type="call")
    assert_problem(await ws.patch(f"/api/v1/tasks/{task['id']}", json={"type": "nope"}), 422)
    assert_problem(await ws.patch(f"/api/v1/tasks/{task['id']}", json={"type": None}), 422)


# Times

async def test_times_are_stored_in_utc_and_shown_on_the_contacts_clock(
        ws: Workspace, frozen: Callable[[datetime | None], None]) -> None:
    moscow = await new_contact(ws, full_name="Ivan Petrov", phones=["+7 495 123-45-67"])
    vladivostok = await new_contact(ws, full_name="Olga Kim", phones=["+7 423 222-33-44"],
                                    timezone="Asia/Vladivostok")
    assert moscow["timezone"] == "Europe/Moscow"
    frozen(FROZEN)
    task = await new_task(ws, type="call", contact_id=moscow["id"],
                          due_at="2027-03-02T15:30:00+03:00",
                          reminder_at="2027-03-02T08:15:00-04:00")
    assert task["due_at"] == "2027-03-02T12:30:00Z"
    assert task["reminder_at"] == "2027-03-02T12:15:00Z"
    assert task["contact_timezone"] == "Europe/Moscow"
    assert task["contact_local_time"] == "2027-03-02T12:00:00+03:00"
    assert task["due_at_contact_local"] == "2027-03-02T15:30:00+03:00"
    assert task["overdue"] is False

    far_east = await new_task(ws, contact_id=vladivostok["id"], due_at="2027-03-02T10:00:00Z")
    assert far_east["contact_local_time"] == "2027-03-02T19:00:00+10:00"
    assert far_east["due_at_contact_local"] == "2027-03-02T20:00:00+10:00"
    no_contact = await new_task(ws, due_at="2027-03-01T10:00:00Z")
    assert no_contact["overdue"] is True
    assert no_contact["contact_timezone"] is no_contact["contact_local_time"] is None

    fetched = (await ws.get(f"/api/v1/tasks/{task['id']}")).json()
    assert fetched == task
    listed = {t["id"]: t for t in await all_pages(ws, "/api/v1/tasks")}
    assert listed[task["id"]] == task
    assert listed[far_east["id"]]["contact_local_time"] == "2027-03-02T19:00:00+10:00"
    assert listed[no_contact["id"]]["due_at_contact_local"] is None

    naive = await ws.post("/api/v1/tasks", json={"title": "x", "due_at": "2027-03-02T15:30:00"})
    assert_problem(naive, 422)
    assert error_locs(naive) == [["body", "due_at"]]
    naive_patch = await ws.patch(f"/api/v1/tasks/{task['id']}",
                                 json={"reminder_at": "2027-03-02 10:00"})
    assert_problem(naive_patch, 422)
    out_of_range = await ws.post("/api/v1/tasks", json={"title": "x",
                                                       "due_at": "0001-01-01T00:00:00+05:00"})
    assert_problem(out_of_range, 422)


# Complete, reopen, attempts

async def test_complete_with_outcome_note_and_data_then_reopen(ws: Workspace) -> None:
    task = await new_task(ws, title="Measure the windows", type="measurement",
                          due_at="2027-03-02T10:00:00+03:00", data={"address": "Lenina 5"})
    url = f"/api/v1/tasks/{task['id']}"
    first = await ws.post(f"{url}/complete", json={"outcome": "no_answer",
                                                   "note": "Nobody at home"})
    assert first.status_code == 200, first.text
    done = first.json()
    assert (done["status"], done["outcome"], done["note"], done["attempt"]) == \
        ("done", "no_answer", "Nobody at home", 1)
    assert done["completed_at"] and done["completed_by"].startswith("api_key:")
    assert done["version"] == 2 and first.headers["etag"] == '"2"'

    again = await ws.post(f"{url}/complete", json={"outcome": "done"})
    assert_problem(again, 409)
    assert_problem(await ws.patch(url, json={"status": "canceled"}), 409)

    reopened = await ws.post(f"{url}/reopen", json={"due_at": "2027-03-03T11:00:00+03:00"})
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert (body["status"], body["attempt"], body["completed_at"], body["completed_by"]) == \
        ("open", 1, None, None)
    assert body["due_at"] == "2027-03-03T08:00:00Z"
    assert_problem(await ws.post(f"{url}/reopen"), 409)

    unknown = await ws.post(f"{url}/complete", json={"outcome": "exploded"})
    assert_problem(unknown, 422)
    assert error_locs(unknown) == [["body", "outcome"]]
    assert_problem(await ws.post(f"{url}/complete", json={"data": [1, 2]}), 422)
    assert_problem(await ws.post(f"{url}/complete", json={"attempt": 7}), 422)

    measured = await ws.post(f"{url}/complete", json={
        "outcome": "done", "note": "Two windows",
        "data": {"width_cm": 142.5, "height_cm": 160, "rooms": ["kitchen", "bedroom"]}})
    assert measured.status_code == 200, measured.text
    final = measured.json()
    assert final["attempt"] == 2 and final["outcome"] == "done"
    assert final["data"] == {"address": "Lenina 5", "width_cm": 142.5, "height_cm": 160,
                             "rooms": ["kitchen", "bedroom"]}

    history = (await ws.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in history] == ["task.created", "task.completed", "task.reopened",
                                            "task.completed"]
    assert history[1]["after"]["outcome"] == "no_answer"

    assert ids(await all_pages(ws, "/api/v1/tasks", attempt__gte=2)) == [task["id"]]
    assert ids(await all_pages(ws, "/api/v1/tasks", attempt=1)) == []

    simple = await new_task(ws)
    plain = await ws.post(f"/api/v1/tasks/{simple['id']}/complete")
    assert plain.status_code == 200, plain.text
    assert (plain.json()["outcome"], plain.json()["attempt"]) == ("done", 1)


async def test_cancel_and_reopen_a_canceled_task(ws: Workspace) -> None:
    task = await new_task(ws)
    url = f"/api/v1/tasks/{task['id']}"
    contact = await new_contact(ws, full_name="Cancel Me")
    await ws.patch(url, json={"contact_id": contact["id"]})
    canceled = await ws.patch(url, json={"status": "canceled"})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    # When and by whom it was closed; the card's timeline shows the cancellation.
    assert canceled.json()["completed_at"] is not None
    assert canceled.json()["completed_by"].startswith("api_key:")
    timeline = (await ws.get(f"/api/v1/contacts/{contact['id']}/timeline")).json()["data"]
    assert any(e["kind"] == "task" and e["payload"].get("event") == "canceled" for e in timeline), \
        timeline
    assert_problem(await ws.post(f"{url}/complete"), 409)
    assert_problem(await ws.patch(url, json={"status": "open"}), 409)
    assert_problem(await ws.patch(url, json={"status": "done"}), 422)
    reopened = await ws.post(f"{url}/reopen")
    assert reopened.json()["status"] == "open" and reopened.json()["attempt"] == 0
    assert reopened.json()["completed_at"] is None


async def test_completing_a_deal_task_is_activity_on_the_deal(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession],
        frozen: Callable[[datetime | None], None]) -> None:
    deal_id = await new_deal(sessions, ws, ws.owner_id)
    task = await new_task(ws, deal_id=str(deal_id))
    assert task["deal_id"] == str(deal_id)
    frozen(FROZEN)
    response = await ws.post(f"/api/v1/tasks/{task['id']}/complete")
    assert response.status_code == 200, response.text
    deal = await get_deal(sessions, ws, deal_id)
    assert deal.last_activity_at == FROZEN
    assert deal.rotting_since is None


# Conventions

async def test_create_read_patch_delete_restore_history(ws: Workspace) -> None:
    created = await ws.post("/api/v1/tasks", json={"title": "  Send the offer ", "type": "email",
                                                   "description": "PDF"})
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert created.headers["etag"] == '"1"'
    assert task["title"] == "Send the offer"
    assert task["assignee_id"] is None, "an API key's task starts unassigned"
    assert (task["status"], task["attempt"], task["data"]) == ("open", 0, {})
    url = f"/api/v1/tasks/{task['id']}"

    stale = await ws.patch(url, json={"title": "x"}, headers={"If-Match": '"7"'})
    assert_problem(stale, 412)
    patched = await ws.patch(url, json={"title": "Send the signed offer", "description": None},
                             headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] is None and patched.headers["etag"] == '"2"'
    unchanged = await ws.patch(url, json={"title": "Send the signed offer"})
    assert unchanged.json()["version"] == 2

    for field, value in [("id", str(uuid.uuid4())), ("outcome", "done"), ("attempt", 3),
                         ("completed_at", "2027-01-01T00:00:00Z"), ("workspace_id", ws.id),
                         ("status", "done"), ("version", 9), ("title", "")]:
        bad = await ws.patch(url, json={field: value})
        assert_problem(bad, 422)
    assert_problem(await ws.post("/api/v1/tasks", json={"title": "x", "status": "open"}), 422)
    assert_problem(await ws.post("/api/v1/tasks", json={"title": "   "}), 422)
    assert_problem(await ws.patch(url, json={"title": None}), 422)

    assert (await ws.delete(url)).status_code == 204
    assert_problem(await ws.get(url), 404)
    assert task["id"] not in ids(await all_pages(ws, "/api/v1/tasks"))
    assert task["id"] in ids(await all_pages(ws, "/api/v1/tasks", include_deleted="true"))
    restored = await ws.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = (await ws.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in history] == ["task.created", "task.updated", "task.deleted",
                                            "task.restored"]
    assert history[1]["before"]["title"] == "Send the offer"
    assert_problem(await ws.get(f"/api/v1/tasks/{uuid.uuid4()}"), 404)
    assert_problem(await ws.get("/api/v1/tasks/not-a-uuid"), 422)


async def test_related_records_must_exist_and_be_visible(ws: Workspace) -> None:
    manager = await new_user(ws, "manager")
    agent = await new_user(ws, "agent")
    as_manager = await act_as(ws, manager)
    as_agent = await act_as(ws, agent)
    managers_contact = await new_contact(as_manager, full_name="Manager's customer")
    for field in ("contact_id", "company_id", "deal_id", "assignee_id"):
        response = await ws.post("/api/v1/tasks", json={"title": "x", field: str(uuid.uuid4())})
        assert_problem(response, 422)
        assert error_locs(response) == [["body", field]]
    hidden = await as_agent.post("/api/v1/tasks", json={"title": "x",
                                                        "contact_id": managers_contact["id"]})
    assert_problem(hidden, 422)
    gone = await new_contact(ws, full_name="Gone")
    await ws.delete(f"/api/v1/contacts/{gone['id']}")
    assert_problem(await ws.post("/api/v1/tasks", json={"title": "x",
                                                        "contact_id": gone["id"]}), 422)
    own = await new_task(as_agent, contact_id=None)
    assert own["assignee_id"] == agent["id"], "a user's task is theirs by default"


async def test_list_filters_search_and_due_time_order(ws: Workspace) -> None:
    contact = await new_contact(ws, full_name="Filter Target")
    a = await new_task(ws, title="Call A", type="call", due_at="2027-03-01T10:00:00Z",
                       contact_id=contact["id"])
    b = await new_task(ws, title="Meet B", type="meeting", due_at="2027-03-03T10:00:00Z")
    c = await new_task(ws, title="Call C", type="call", due_at="2027-03-02T10:00:00Z")
    d = await new_task(ws, title="Todo D")  # no due time
    await ws.post(f"/api/v1/tasks/{c['id']}/complete")
    mine = {a["id"], b["id"], c["id"], d["id"]}

    def only_mine(rows: list[dict[str, Any]]) -> list[str]:
        return [r["id"] for r in rows if r["id"] in mine]

    assert only_mine(await all_pages(ws, "/api/v1/tasks", type="call")) == [c["id"], a["id"]]
    assert only_mine(await all_pages(ws, "/api/v1/tasks", status="open",
                                     due_at__gte="2027-03-01T00:00:00Z",
                                     due_at__lt="2027-03-04T00:00:00Z")) == [b["id"], a["id"]]
    assert only_mine(await all_pages(ws, "/api/v1/tasks", contact_id=contact["id"])) == [a["id"]]
    assert only_mine(await all_pages(ws, "/api/v1/tasks", due_at__isnull="true")) == [d["id"]]
    assert only_mine(await all_pages(ws, "/api/v1/tasks", q="call")) == [c["id"], a["id"]]
    by_due = only_mine(await all_pages(ws, "/api/v1/tasks", sort="due_at", limit=1))
    assert by_due == [a["id"], c["id"], b["id"], d["id"]], "no due time sorts last"
    by_due_desc = only_mine(await all_pages(ws, "/api/v1/tasks", sort="-due_at", limit=2))
    assert by_due_desc == [b["id"], c["id"], a["id"], d["id"]]

    search = await ws.post("/api/v1/tasks/search", json={"filter": {"or": [
        {"field": "type", "op": "eq", "value": "meeting"},
        {"field": "status", "op": "eq", "value": "done"}]}, "sort": "due_at"})
    assert search.status_code == 200, search.text
    assert only_mine(search.json()["data"]) == [c["id"], b["id"]]

    assert_problem(await ws.get("/api/v1/tasks", params={"sort": "title"}), 422)
    assert_problem(await ws.get("/api/v1/tasks", params={"nope": "1"}), 422)
    assert_problem(await ws.get("/api/v1/tasks", params={"due_at__gt": "yesterday"}), 422)
    assert_problem(await ws.get("/api/v1/tasks", params={"sort": "due_at",
                                                         "cursor": "garbage"}), 422)
    assert_problem(await ws.get("/api/v1/tasks", params={"limit": "201"}), 422)


async def test_batch_creates_tasks_one_by_one_and_refuses_upserts(ws: Workspace) -> None:
    response = await ws.post("/api/v1/tasks/batch", json={"items": [
        {"title": "One", "type": "call"}, {"title": "Two", "type": "no-such-type"},
        {"type": "call"}, {"title": "Four", "due_at": "2027-03-02T10:00:00+03:00"}]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "error", "created"]
    assert results[1]["error"]["status"] == 422
    four = (await ws.get(f"/api/v1/tasks/{results[3]['id']}")).json()
    assert four["due_at"] == "2027-03-02T07:00:00Z"
    refused = await ws.post("/api/v1/tasks/batch", json={"items": [{"title": "x"}],
                                                         "upsert_on": "external_id"})
    assert_problem(refused, 422)
    assert error_locs(refused) == [["body", "upsert_on"]]


async def test_every_change_is_an_event(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    start = (await ws.get("/api/v1/events", params={"limit": 200})).json()["next_cursor"]
    task = await new_task(ws, assignee_id=agent["id"])
    url = f"/api/v1/tasks/{task['id']}"
    await ws.patch(url, json={"assignee_id": ws.owner_id})
    await ws.post(f"{url}/complete")
    await ws.post(f"{url}/reopen")
    await ws.delete(url)
    await ws.post(f"{url}/restore")
    body = await events_since(ws, start, expect=10, types=",".join(
        f"task.{t}" for t in ("created", "updated", "assigned", "completed", "reopened",
                              "deleted", "restored")))
    events = [(e["type"], e["entity_id"]) for e in body["data"]]
    assert [t for t, entity in events if entity == task["id"]] == [
        "task.created", "task.assigned", "task.updated", "task.assigned", "task.completed",
        "task.reopened", "task.deleted", "task.restored"]
    assigned = [e for e in body["data"] if e["type"] == "task.assigned"]
    assert assigned[1]["before"] == {"assignee_id": agent["id"]}
    assert assigned[1]["after"] == {"assignee_id": ws.owner_id}


# My work

async def test_agenda_buckets_today_overdue_upcoming(
        ws: Workspace, frozen: Callable[[datetime | None], None]) -> None:
    agent = await new_user(ws, "agent")
    other = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent)
    moscow = await new_contact(ws, full_name="Ivan", phones=["+7 495 765-43-21"])
    frozen(FROZEN)  # 12:00 in Moscow

    async def task(due: str | None, **fields: Any) -> str:
        return (await new_task(ws, assignee_id=fields.pop("assignee", agent["id"]),
                               due_at=due, **fields))["id"]

    yesterday = await task(f"2027-03-01T18:00:00{MSK}", contact_id=moscow["id"])
    this_morning = await task(f"2027-03-02T09:00:00{MSK}")
    tonight = await task(f"2027-03-02T18:00:00{MSK}")
    late_tonight = await task(f"2027-03-02T23:59:00{MSK}")
    tomorrow = await task(f"2027-03-03T10:00:00{MSK}")
    await task(None)
    done = await task(f"2027-03-02T10:00:00{MSK}")
    await ws.post(f"/api/v1/tasks/{done}/complete")
    deleted = await task(f"2027-03-02T11:00:00{MSK}")
    await ws.delete(f"/api/v1/tasks/{deleted}")
    await task(f"2027-03-02T13:00:00{MSK}", assignee=other["id"])

    async def agenda(who: Workspace = as_agent, **params: Any) -> list[dict[str, Any]]:
        return await all_pages(who, "/api/v1/tasks/agenda", **params)

    assert ids(await agenda(bucket="today")) == [this_morning, tonight, late_tonight]
    assert ids(await agenda()) == [this_morning, tonight, late_tonight], "today by default"
    assert ids(await agenda(bucket="overdue")) == [yesterday, this_morning]
    assert ids(await agenda(bucket="upcoming")) == [tomorrow]
    assert ids(await agenda(bucket="today", limit=1)) == [this_morning, tonight, late_tonight]
    # "Today" is the caller's day: in Vladivostok it is already 19:00.
    assert ids(await agenda(bucket="today", tz="Asia/Vladivostok")) == [yesterday, this_morning]
    assert ids(await agenda(bucket="upcoming", tz="Asia/Vladivostok")) == [
        tonight, late_tonight, tomorrow]
    row = (await agenda(bucket="overdue"))[0]
    assert row == (await as_agent.get(f"/api/v1/tasks/{yesterday}")).json()
    assert row["contact_local_time"] == "2027-03-02T12:00:00+03:00" and row["overdue"] is True
    # An API key has no tasks of its own: it names whose.
    assert ids(await agenda(ws, assignee_id=agent["id"], bucket="upcoming")) == [tomorrow]
    assert_problem(await ws.get("/api/v1/tasks/agenda"), 422)
    assert_problem(await as_agent.get("/api/v1/tasks/agenda", params={"bucket": "later"}), 422)
    assert_problem(await as_agent.get("/api/v1/tasks/agenda", params={"tz": "Mars/Base"}), 422)
    assert_problem(await as_agent.get("/api/v1/tasks/agenda", params={"limit": 0}), 422)
    assert_problem(await as_agent.get("/api/v1/tasks/agenda", params={"cursor": "x"}), 422)
    assert_problem(await as_agent.get("/api/v1/tasks/agenda", params={"assignee_id": "you"}),
                   422)

    # Moving a task moves it between buckets; completing it takes it off the agenda.
    await ws.patch(f"/api/v1/tasks/{tomorrow}", json={"due_at": f"2027-03-02T20:00:00{MSK}"})
    await ws.post(f"/api/v1/tasks/{this_morning}/complete")
    assert ids(await agenda(bucket="today")) == [tonight, tomorrow, late_tonight]


async def test_team_agenda_for_a_manager(ws: Workspace,
                                         frozen: Callable[[datetime | None], None]) -> None:
    manager = await new_user(ws, "manager")
    anna = await new_user(ws, "agent", "Anna")
    boris = await new_user(ws, "agent", "Boris")
    carl = await new_user(ws, "agent", "Carl")
    team = await new_team(ws, "Windows", manager, [anna, boris])
    await new_team(ws, "Doors", None, [carl])
    as_manager = await act_as(ws, manager)
    as_anna = await act_as(ws, anna)
    frozen(FROZEN)
    due = {name: (await new_task(ws, title=f"{name}'s call", assignee_id=user["id"],
                                 due_at=f"2027-03-02T{hour}:00:00{MSK}"))["id"]
           for name, user, hour in [("anna", anna, 15), ("boris", boris, 14),
                                    ("carl", carl, 16), ("manager", manager, 17)]}

    team_agenda = await all_pages(as_manager, "/api/v1/tasks/agenda", team_id=team["id"])
    assert ids(team_agenda) == [due["boris"], due["anna"]]
    assert ids(await all_pages(as_manager, "/api/v1/tasks/agenda")) == [due["manager"]]
    assert ids(await all_pages(as_manager, "/api/v1/tasks/agenda",
                               assignee_id=boris["id"])) == [due["boris"]]
    assert ids(await all_pages(as_manager, "/api/v1/tasks/agenda",
                               assignee_id=carl["id"])) == [], "not the manager's team"
    assert ids(await all_pages(as_anna, "/api/v1/tasks/agenda", team_id=team["id"])) == \
        [due["anna"]], "an agent sees only their own in the team's agenda"
    assert ids(await all_pages(ws, "/api/v1/tasks/agenda", team_id=team["id"])) == \
        [due["boris"], due["anna"]]
    unknown = await as_manager.get("/api/v1/tasks/agenda", params={"team_id": str(uuid.uuid4())})
    assert_problem(unknown, 422)


# Visibility

async def test_an_agent_never_sees_another_agents_task(ws: Workspace,
                                                       client: httpx.AsyncClient) -> None:
    anna = await new_user(ws, "agent")
    boris = await new_user(ws, "agent")
    as_anna = await act_as(ws, anna)
    as_boris = await act_as(ws, boris)
    now = datetime.now(UTC)
    borises = await new_task(as_boris, title="Boris's call",
                             due_at=(now + timedelta(minutes=5)).isoformat())
    annas = await new_task(as_anna, title="Anna's call",
                           due_at=(now + timedelta(minutes=6)).isoformat())
    url = f"/api/v1/tasks/{borises['id']}"
    for response in [await as_anna.get(url), await as_anna.patch(url, json={"title": "x"}),
                     await as_anna.post(f"{url}/complete"), await as_anna.post(f"{url}/reopen"),
                     await as_anna.delete(url), await as_anna.get(f"{url}/history")]:
        assert_problem(response, 404)
    assert ids(await all_pages(as_anna, "/api/v1/tasks")) == [annas["id"]]
    search = await as_anna.post("/api/v1/tasks/search", json={})
    assert ids(search.json()["data"]) == [annas["id"]]
    for bucket in ("today", "upcoming"):
        assert borises["id"] not in ids(await all_pages(
            as_anna, "/api/v1/tasks/agenda", bucket=bucket, assignee_id=boris["id"]))
    # Handing a task to Boris hides it from Anna; Boris sees it.
    handed = await as_anna.patch(f"/api/v1/tasks/{annas['id']}",
                                 json={"assignee_id": boris["id"]})
    assert handed.status_code == 200, handed.text
    assert_problem(await as_anna.get(f"/api/v1/tasks/{annas['id']}"), 404)
    assert (await as_boris.get(f"/api/v1/tasks/{annas['id']}")).status_code == 200
    assert (await ws.get(url)).json()["title"] == "Boris's call", "untouched"


async def test_read_only_keys_cannot_write_tasks(ws: Workspace) -> None:
    key = await ws.post("/api/v1/api-keys", json={"name": "reports", "scope": "read"})
    assert key.status_code == 201, key.text
    reader = Workspace(id=ws.id, owner_id=ws.owner_id, api_key=key.json()["key"],
                       client=ws.client)
    task = await new_task(ws)
    assert_problem(await reader.post("/api/v1/tasks", json={"title": "x"}), 403)
    assert_problem(await reader.post(f"/api/v1/tasks/{task['id']}/complete"), 403)
    assert (await reader.get(f"/api/v1/tasks/{task['id']}")).status_code == 200


async def test_values_postgres_cannot_store_are_422_not_500(ws: Workspace) -> None:
    for body in ['{"title": "x\\u0000y"}', '{"title": "x", "note": 1}',
                 '{"title": "x", "data": {"width": NaN}}', '{"title": "x", "data": {"n": 1e400}}',
                 '{"title": "x", "data": {"k\\u0000": 1}}',
                 '{"title": "x", "data": ' + '{"a": ' * 12 + '1' + '}' * 13,
                 '{"title": "x", "due_at": "9999-12-31T23:59:59-05:00"}']:
        response = await ws.post("/api/v1/tasks", content=body,
                                 headers={"Content-Type": "application/json"})
        assert_problem(response, 422)
    assert_problem(await ws.get("/api/v1/tasks", params={"q": "a\x00"}), 422)
    # Beyond the int4 column: a clear 422, not an overflow in the driver.
    assert_problem(await ws.get("/api/v1/tasks", params={"attempt__gt": "99999999999999999999"}),
                   422)
    for url in ("/api/v1/tasks", "/api/v1/tasks/agenda"):
        cursor = base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+05:00", "'
                                          + str(uuid.uuid4()).encode() + b'"]').decode()
        assert_problem(await ws.get(url, params={"cursor": cursor, "sort": "due_at",
                                                 "assignee_id": ws.owner_id}), 422)
