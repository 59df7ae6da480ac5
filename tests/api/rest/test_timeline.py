"""The timeline of a contact, company or deal: activities, tasks, stage changes and field
changes merged newest first, with keyset paging that survives equal timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from app.domain.shared.clock import clock
from tests.api.rest.conftest import (
    act_as,
    all_pages,
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    new_user,
)
from tests.conftest import Workspace

# A moment in the recent past: access tokens issued now stay valid while the clock is there.
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


@contextmanager
def frozen() -> Iterator[None]:
    try:
        yield
    finally:
        clock.freeze(None)


def at(minutes: float) -> datetime:
    moment = T0 + timedelta(minutes=minutes)
    clock.freeze(moment)
    return moment


@contextmanager
def count_statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    engine = app.state.resources.sessions.kw["bind"].sync_engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def stages(ws: Workspace) -> dict[str, str]:
    """The default pipeline's stage ids by name."""
    pipelines = (await ok(await ws.get("/api/v1/pipelines")))["data"]
    default = next(p for p in pipelines if p["is_default"])
    return {s["name"]: s["id"] for s in default["stages"]}


async def new_deal(ws: Workspace, **fields: Any) -> dict[str, Any]:
    return await ok(await ws.post("/api/v1/deals", json={"title": "Windows", **fields}), 201)


async def move(ws: Workspace, deal: dict[str, Any], stage_id: str) -> dict[str, Any]:
    return await ok(await ws.post(f"/api/v1/deals/{deal['id']}/move",
                                  json={"stage_id": stage_id}))


async def new_task(ws: Workspace, **fields: Any) -> dict[str, Any]:
    return await ok(await ws.post("/api/v1/tasks", json={"title": "Call back", **fields}), 201)


async def log(ws: Workspace, **fields: Any) -> dict[str, Any]:
    return await ok(await ws.post("/api/v1/activities", json=fields), 201)


async def timeline(ws: Workspace, kind: str, record_id: str, **params: Any
                   ) -> list[dict[str, Any]]:
    return (await ok(await ws.get(f"/api/v1/{kind}/{record_id}/timeline",
                                  params={"limit": 200, **params})))["data"]


def lines(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["kind"], e["summary"]) for e in entries]


async def test_a_contact_timeline_merges_everything_newest_first(ws: Workspace) -> None:
    marina = await new_user(ws, "manager", "Marina Volkova")
    as_marina = await act_as(ws, marina)
    pipeline = await stages(ws)
    with frozen():
        t0 = at(0)
        card = await new_contact(as_marina, first_name="Anna", last_name="Petrova")
        at(1)
        await ok(await as_marina.patch(f"/api/v1/contacts/{card['id']}",
                                       json={"status": "warm"}))
        at(2)
        deal = await new_deal(ws, contact_ids=[card["id"]], owner_id=marina["id"])
        at(3)
        call = await log(as_marina, type="call", direction="out", contact_id=card["id"],
                         call_status="answered", duration_seconds=125)
        at(4)
        task = await new_task(as_marina, contact_id=card["id"], title="Send the offer")
        at(5)
        await move(ws, deal, pipeline["Clarified"])
        at(6)
        await ok(await as_marina.post(f"/api/v1/tasks/{task['id']}/complete",
                                      json={"outcome": "done"}))
        at(7)
        note = await log(as_marina, type="note", contact_id=card["id"], body="Prefers mornings",
                         occurred_at=iso(t0 + timedelta(seconds=30)))
        entries = await timeline(as_marina, "contacts", card["id"])

    assert lines(entries) == [
        ("task", "Task completed: Send the offer (outcome: done)"),
        ("stage_change", "Deal “Windows” moved from New request to Clarified"),
        ("task", "Task created: Send the offer"),
        ("activity", "Outgoing call, 2 min 5 s"),
        ("stage_change", "Deal “Windows” created in stage New request"),
        ("change", "Status: new → warm"),
        ("activity", "Note: Prefers mornings"),
        ("created", "Contact created"),
    ]
    assert [e["occurred_at"] for e in entries] == [
        iso(t0 + timedelta(minutes=m)) for m in (6, 5, 4, 3, 2, 1)] + [
        iso(t0 + timedelta(seconds=30)), iso(t0)]
    user_actor, key_actor = f"user:{marina['id']}", entries[1]["actor"]
    assert key_actor.startswith("api_key:") and entries[1]["actor_name"] is None
    assert [(e["actor"], e["actor_name"]) for e in entries if e["kind"] != "stage_change"] == [
        (user_actor, "Marina Volkova")] * 6
    assert entries[3]["payload"] == (await ok(await ws.get(f"/api/v1/activities/{call['id']}")))
    assert entries[3]["record"] == {"type": "activity", "id": call["id"]}
    assert entries[6]["payload"]["id"] == note["id"]
    assert entries[0]["record"] == {"type": "task", "id": task["id"]}
    assert entries[0]["payload"]["event"] == "completed"
    assert entries[0]["payload"]["outcome"] == "done"
    assert entries[2]["payload"]["event"] == "created"
    stage_change = entries[1]
    assert stage_change["record"] == {"type": "deal", "id": deal["id"]}
    assert stage_change["payload"]["stage_name"] == "Clarified"
    assert stage_change["payload"]["from_stage_name"] == "New request"
    assert entries[5]["payload"] == {"event_type": "contact.updated", "changed": ["status"],
                                     "before": {"status": "new"}, "after": {"status": "warm"}}
    assert entries[5]["record"] == {"type": "contact", "id": card["id"]}
    assert entries[7]["payload"]["after"]["full_name"] == "Anna Petrova"
    assert len({e["id"] for e in entries}) == len(entries)

    only = await timeline(as_marina, "contacts", card["id"], types="activity,stage_change")
    assert [e["kind"] for e in only] == ["stage_change", "activity", "stage_change", "activity"]
    changes = await timeline(as_marina, "contacts", card["id"], types="change")
    assert lines(changes) == [("change", "Status: new → warm")]


async def test_paging_never_skips_or_repeats_entries_with_the_same_time(ws: Workspace) -> None:
    pipeline = await stages(ws)
    with frozen():
        moment = at(0)
        card = await new_contact(ws, first_name="Same time")
        for status in ("cold", "warm", "hot"):
            await ok(await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": status}))
        for i in range(4):
            await log(ws, type="note", contact_id=card["id"], body=f"note {i}",
                      occurred_at=iso(moment))
        tasks = [await new_task(ws, contact_id=card["id"], title=f"task {i}") for i in range(2)]
        await ok(await ws.post(f"/api/v1/tasks/{tasks[0]['id']}/complete", json={}))
        deal = await new_deal(ws, contact_ids=[card["id"]])
        await move(ws, deal, pipeline["Clarified"])
        await move(ws, deal, pipeline["Measurement"])

        url = f"/api/v1/contacts/{card['id']}/timeline"
        everything = await timeline(ws, "contacts", card["id"])
        assert len(everything) == 1 + 3 + 4 + 3 + 3
        assert {e["occurred_at"] for e in everything} == {iso(moment)}
        for limit in (1, 2, 3, 5, 13):
            paged = await all_pages(ws, url, limit=limit)
            assert [e["id"] for e in paged] == [e["id"] for e in everything], limit
        paged = await all_pages(ws, url, limit=2, types="task,created")
        assert [e["id"] for e in paged] == [e["id"] for e in everything
                                            if e["kind"] in ("task", "created")]
    # Within one moment, newer writes come first within each kind.
    assert [e["summary"] for e in everything if e["kind"] == "change"] == [
        "Status: warm → hot", "Status: cold → warm", "Status: new → cold"]
    assert [e["summary"] for e in everything if e["kind"] == "stage_change"] == [
        "Deal “Windows” moved from Clarified to Measurement",
        "Deal “Windows” moved from New request to Clarified",
        "Deal “Windows” created in stage New request"]


@pytest.mark.parametrize("params,loc", [
    ({"limit": 0}, ["query", "limit"]),
    ({"limit": 201}, ["query", "limit"]),
    ({"types": "activity,gossip"}, ["query", "types"]),
    ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ({"cursor": "WyJ4IiwxLCJ5Il0"}, ["query", "cursor"]),  # ["x",1,"y"]
    ({"cursor": "WyI5OTk5LTEyLTMxVDIzOjAwOjAwLTE0OjAwIiwgMSwgIjAxOTBiNmEyLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMCJd"},
     ["query", "cursor"]),  # beyond the year 9999 in UTC
    ({"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwWiIsIDEsIDEyM10"}, ["query", "cursor"]),
    ({"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgMSwgIjAxOTBiNmEyLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMCJd"},
     ["query", "cursor"]),  # no offset
])
async def test_bad_paging_parameters_are_422(shared_ws: Workspace, params: dict[str, Any],
                                             loc: list[str]) -> None:
    card = await new_contact(shared_ws, first_name="Paging")
    response = await shared_ws.get(f"/api/v1/contacts/{card['id']}/timeline", params=params)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_a_deal_timeline(ws: Workspace) -> None:
    pipeline = await stages(ws)
    with frozen():
        at(0)
        deal = await new_deal(ws, amount="1000.00", currency="RUB")
        at(1)
        await ok(await ws.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "1500.00"}))
        at(2)
        await move(ws, deal, pipeline["Clarified"])
        at(3)
        await log(ws, type="meeting", deal_id=deal["id"], subject="Measurement visit")
        at(4)
        await new_task(ws, deal_id=deal["id"], title="Compute the price")
        at(5)
        await ok(await ws.post(f"/api/v1/deals/{deal['id']}/move", json={
            "stage_id": pipeline["Lost"], "lost_reason": "price"}))
        entries = await timeline(ws, "deals", deal["id"])
    assert lines(entries) == [
        ("stage_change", "Deal “Windows” moved from Clarified to Lost (lost: price)"),
        ("task", "Task created: Compute the price"),
        ("activity", "Meeting: Measurement visit"),
        ("stage_change", "Deal “Windows” moved from New request to Clarified"),
        ("change", "Amount: 1000.00 → 1500.00"),
        ("created", "Deal created"),
    ]
    assert entries[4]["payload"]["changed"] == ["amount"]  # the score it moved is not a change
    assert entries[0]["payload"]["lost_reason"] == "price"
    assert entries[3]["payload"]["lost_reason"] is None


async def test_a_company_timeline_shows_its_deals_and_activities(ws: Workspace) -> None:
    pipeline = await stages(ws)
    with frozen():
        at(0)
        company = await new_company(ws, name="Okna Plus")
        at(1)
        deal = await new_deal(ws, company_id=company["id"], title="Office windows")
        at(2)
        await log(ws, type="email", direction="in", company_id=company["id"],
                  subject="Request for quote")
        at(3)
        await move(ws, deal, pipeline["Measurement"])
        at(4)
        await ok(await ws.patch(f"/api/v1/companies/{company['id']}",
                                json={"tags": ["b2b"], "domain": "okna.example"}))
        entries = await timeline(ws, "companies", company["id"])
    assert lines(entries) == [
        ("change", "Changed domain, tags"),
        ("stage_change", "Deal “Office windows” moved from New request to Measurement"),
        ("activity", "Email received: Request for quote"),
        ("stage_change", "Deal “Office windows” created in stage New request"),
        ("created", "Company created"),
    ]
    assert entries[0]["payload"]["after"] == {"domain": "okna.example", "tags": ["b2b"]}


async def test_a_merged_cards_history_shows_on_the_surviving_card(ws: Workspace) -> None:
    target = await new_contact(ws, first_name="Anna")
    duplicate = await new_contact(ws, first_name="Anna P")
    call = await log(ws, type="call", direction="in", call_status="missed",
                     contact_id=duplicate["id"])
    merged = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                           json={"source_id": duplicate["id"]})
    assert merged.status_code == 200, merged.text
    entries = await timeline(ws, "contacts", target["id"])
    assert call["id"] in {e["record"]["id"] for e in entries if e["kind"] == "activity"}
    assert [e["summary"] for e in entries if e["kind"] == "created"] == [
        "Contact created", "Contact created"]


async def test_who_sees_which_timeline(ws: Workspace, other_ws: Workspace) -> None:
    """An agent reads the timelines of their own records only (404 otherwise), and on their
    card sees every activity and task on it — but not the stage changes of a deal they may
    not see."""
    a_user, b_user = await new_user(ws, "agent"), await new_user(ws, "agent")
    as_a, as_b = await act_as(ws, a_user), await act_as(ws, b_user)
    a_card = await new_contact(as_a, first_name="A's customer")
    b_card = await new_contact(as_b, first_name="B's customer")
    b_company = await new_company(as_b, name="B's company")
    b_deal = await new_deal(as_b, contact_ids=[b_card["id"]])
    for url in (f"/api/v1/contacts/{b_card['id']}/timeline",
                f"/api/v1/companies/{b_company['id']}/timeline",
                f"/api/v1/deals/{b_deal['id']}/timeline"):
        assert_problem(await as_a.get(url), 404)
        assert_problem(await other_ws.get(url), 404)
        assert (await as_b.get(url)).status_code == 200
    assert_problem(await as_a.get("/api/v1/contacts/0190b6a2-0000-7000-8000-000000000000/"
                                  "timeline"), 404)

    # B logs a call and gets a task on A's card; B's deal also names A's customer.
    await log(ws, type="call", direction="in", call_status="answered", contact_id=a_card["id"],
              owner_id=b_user["id"])
    await new_task(ws, contact_id=a_card["id"], assignee_id=b_user["id"], title="B's task")
    await ok(await ws.patch(f"/api/v1/deals/{b_deal['id']}",
                            json={"contact_ids": [b_card["id"], a_card["id"]]}))
    seen_by_a = await timeline(as_a, "contacts", a_card["id"])
    assert [e["kind"] for e in seen_by_a] == ["task", "activity", "created"]
    seen_by_admin = await timeline(ws, "contacts", a_card["id"])
    assert [e["kind"] for e in seen_by_admin] == ["task", "activity", "stage_change", "created"]

    assert (await ws.delete(f"/api/v1/contacts/{a_card['id']}")).status_code == 204
    assert_problem(await as_a.get(f"/api/v1/contacts/{a_card['id']}/timeline"), 404)


async def test_a_page_costs_the_same_statements_however_many_entries(app: Any,
                                                                     ws: Workspace) -> None:
    users = [await act_as(ws, await new_user(ws, "manager", f"Manager {i}")) for i in range(3)]
    small = await new_contact(users[0], first_name="Small")
    big = await new_contact(ws, first_name="Big")
    deal = await new_deal(ws, contact_ids=[big["id"]])
    for i in range(12):
        await log(users[i % 3], type="note", contact_id=big["id"], body=f"note {i}")
        await new_task(users[i % 3], contact_id=big["id"], deal_id=deal["id"])
        await ok(await ws.patch(f"/api/v1/contacts/{big['id']}", json={"source": f"s{i}"}))

    async def statements(card: dict[str, Any]) -> list[str]:
        await ws.get("/api/v1/contacts")  # the principal is cached: no lookups below
        with count_statements(app) as seen:
            entries = await timeline(ws, "contacts", card["id"])
        assert entries
        return [s for s in seen if "FROM " in s]

    few, many = await statements(small), await statements(big)
    assert len(await timeline(ws, "contacts", big["id"])) == 1 + 12 + 12 + 12 + 1
    assert len(many) == len(few), (few, many)
    assert sum("FROM users" in s for s in many) == 1, many  # every actor's name at once
