"""Deals: fields and defaults, line-item arithmetic, moves and stage history, won/lost, the
board, lists and filters, batch, and who may see what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.domain.shared.clock import clock
from tests.api.rest.conftest import (
    act_as,
    all_pages,
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    new_custom_field,
    new_user,
)
from tests.api.rest.test_pipelines import default_pipeline, new_deal, new_pipeline, stage_id
from tests.conftest import Workspace

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Any:
    """Set the server's clock (after signing in: access tokens expire in real time)."""
    yield clock.freeze
    clock.freeze(None)


async def deal_titles(ws: Workspace, **params: Any) -> list[str]:
    response = await ws.get("/api/v1/deals", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return sorted(d["title"] for d in response.json()["data"])


async def stage_history(ws: Workspace, deal_id: str) -> list[dict[str, Any]]:
    response = await ws.get(f"/api/v1/deals/{deal_id}/stage-history")
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def event_types(ws: Workspace, deal_id: str) -> list[str]:
    history = (await ws.get(f"/api/v1/deals/{deal_id}/history")).json()["data"]
    return [e["type"] for e in history]


# Fields and defaults

async def test_create_with_defaults_read_and_etag(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    created = await ws.post("/api/v1/deals", json={"title": "  Balcony glazing "})
    assert created.status_code == 201, created.text
    deal = created.json()
    assert created.headers["location"] == f"/api/v1/deals/{deal['id']}"
    assert created.headers["etag"] == '"1"'
    assert deal["title"] == "Balcony glazing"
    assert (deal["pipeline_id"], deal["stage_id"]) == (sales["id"], stage_id(sales,
                                                                               "New request"))
    assert (deal["status"], deal["currency"], deal["amount"], deal["line_items"]) == (
        "open", "USD", None, [])
    assert deal["owner_id"] is None  # created with an API key: unowned, as cards are
    assert deal["rotting"] is False and deal["rotting_since"] is None
    assert deal["closed_at"] is None and deal["lost_reason"] is None
    assert deal["stage_entered_at"] == deal["created_at"]
    assert deal["score"]["probability"] == 10 and deal["score"]["class"] in "ABCD"
    assert set(deal["score"]) >= {"class", "points", "probability", "expected_amount",
                                  "max_expected_amount", "drop_from_max", "explanation",
                                  "adjustment", "adjusted_by", "adjusted_at"}
    read = await ws.get(f"/api/v1/deals/{deal['id']}")
    assert read.json() == deal and read.headers["etag"] == '"1"'
    owner = await new_user(ws, "manager")
    as_user = await act_as(ws, owner)
    mine = await new_deal(as_user, title="Mine")
    assert mine["owner_id"] == owner["id"]


async def test_all_fields_round_trip(ws: Workspace) -> None:
    contact_a = await new_contact(ws, first_name="Anna")
    contact_b = await new_contact(ws, first_name="Boris")
    company = await new_company(ws, name="Okna")
    await new_custom_field(ws, "floor", "number", object_type="deal")
    deal = await new_deal(ws, title="Windows", amount="1250.5", currency="eur",
                          contact_ids=[contact_b["id"], contact_a["id"], contact_b["id"]],
                          company_id=company["id"], owner_id=ws.owner_id,
                          expected_close_date="2026-12-31", source="website",
                          tags=["b2c", " b2c", "urgent"], custom_fields={"floor": 7},
                          external_id="1C-77")
    assert (deal["amount"], deal["currency"]) == ("1250.50", "EUR")
    assert deal["contact_ids"] == [contact_b["id"], contact_a["id"]]
    assert (deal["company_id"], deal["owner_id"]) == (company["id"], ws.owner_id)
    assert (deal["expected_close_date"], deal["source"], deal["tags"]) == (
        "2026-12-31", "website", ["b2c", "urgent"])
    assert (deal["custom_fields"], deal["external_id"]) == ({"floor": 7}, "1C-77")
    bad_field = await ws.post("/api/v1/deals", json={"title": "x",
                                                     "custom_fields": {"floor": "high"}})
    assert error_locs(bad_field) == [["body", "custom_fields", "floor"]]
    duplicate = await ws.post("/api/v1/deals", json={"title": "x", "external_id": "1C-77"})
    assert_problem(duplicate, 409)


async def test_unknown_and_server_owned_fields_are_422(ws: Workspace) -> None:
    deal = await new_deal(ws)
    for field, value in (("id", deal["id"]), ("workspace_id", ws.id), ("score", {}),
                         ("created_at", "2026-01-01T00:00:00Z"), ("rotting", True),
                         ("version", 3), ("colour", "red")):
        assert_problem(await ws.post("/api/v1/deals", json={"title": "x", field: value}), 422)
        assert_problem(await ws.patch(f"/api/v1/deals/{deal['id']}", json={field: value}), 422)
    for body in ({"title": ""}, {"title": None}, {"amount": "-1"}, {"amount": "abc"},
                 {"currency": "XXXX"}, {"currency": "ZZZ"}, {"stage_id": None},
                 {"contact_ids": ["nope"]}, {"status": "closed"}):
        assert_problem(await ws.patch(f"/api/v1/deals/{deal['id']}", json=body), 422)
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["version"] == 1


# Line items and amounts

async def test_line_item_arithmetic_is_exact_decimal(ws: Workspace) -> None:
    deal = await new_deal(ws, line_items=[
        {"name": "Window", "quantity": "3", "unit_price": "19.99", "discount": "5",
         "tax_rate": "20"},
        {"sku": "SILL-1", "quantity": "0.5", "unit_price": "0.10"}])
    assert deal["line_items"] == [
        {"name": "Window", "sku": None, "quantity": "3", "unit_price": "19.99",
         "discount": "5", "tax_rate": "20", "total": "65.96"},
        {"name": None, "sku": "SILL-1", "quantity": "0.5", "unit_price": "0.10",
         "discount": "0", "tax_rate": "0", "total": "0.05"}]
    assert deal["amount"] == "66.01"
    url = f"/api/v1/deals/{deal['id']}"
    # The same amount is accepted (in any notation); a different one is a conflict.
    same = await ws.patch(url, json={"amount": "66.010"})
    assert same.status_code == 200 and same.json()["version"] == 1
    conflict = await ws.patch(url, json={"amount": "66.00"})
    assert error_locs(conflict) == [["body", "amount"]]
    assert "66.01" in conflict.json()["detail"]
    both = await ws.patch(url, json={"line_items": [{"name": "Door", "quantity": 1,
                                                     "unit_price": "100"}], "amount": "99"})
    assert error_locs(both) == [["body", "amount"]]
    # A change of currency recomputes in the new minor unit.
    yen = await ws.patch(url, json={"currency": "JPY"})
    assert [line["total"] for line in yen.json()["line_items"]] == ["66", "0"]
    assert yen.json()["amount"] == "66"
    # Without line items the amount is the client's again (the last computed one stays).
    cleared = await ws.patch(url, json={"line_items": []})
    assert cleared.json()["line_items"] == [] and cleared.json()["amount"] == "66"
    free = await ws.patch(url, json={"amount": "1000.5"})
    assert free.json()["amount"] == "1001"  # JPY has no minor unit


async def test_amounts_round_to_the_currency(ws: Workspace) -> None:
    usd = await new_deal(ws, amount="10.005")
    assert usd["amount"] == "10.01"
    kwd = await new_deal(ws, amount="1.2345", currency="KWD")
    assert kwd["amount"] == "1.235"
    yen = await new_deal(ws, currency="JPY", line_items=[
        {"name": "Tatami", "quantity": "3", "unit_price": "1999", "tax_rate": "10"}])
    assert (yen["amount"], yen["line_items"][0]["total"]) == ("6597", "6597")
    as_number = await new_deal(ws, line_items=[{"name": "x", "quantity": 3,
                                                "unit_price": 19.99}])
    assert as_number["amount"] == "59.97"


async def test_line_item_validation(ws: Workspace) -> None:
    cases = [
        ({"quantity": "1", "unit_price": "1"}, ["body", "line_items", 0]),
        ({"name": "x", "quantity": "0", "unit_price": "1"}, ["body", "line_items", 0,
                                                              "quantity"]),
        ({"name": "x", "quantity": "1", "unit_price": "-1"}, ["body", "line_items", 0,
                                                              "unit_price"]),
        ({"name": "x", "quantity": "2", "unit_price": "5", "discount": "10.01"},
         ["body", "line_items", 0, "discount"]),
        ({"name": "x", "quantity": "1", "unit_price": "1", "tax_rate": "100.5"},
         ["body", "line_items", 0, "tax_rate"]),
        ({"name": "x", "quantity": "1", "unit_price": "1", "price": "1"},
         ["body", "line_items", 0, "price"]),
        ({"name": "x", "quantity": "99999999999999", "unit_price": "99999999999999"},
         ["body", "line_items", 0]),
    ]
    for item, loc in cases:
        response = await ws.post("/api/v1/deals", json={"title": "x", "line_items": [item]})
        assert_problem(response, 422)
        assert error_locs(response)[0] == loc, (item, response.text)
    exact = await ws.post("/api/v1/deals", json={"title": "x", "line_items": [
        {"name": "x", "quantity": "2", "unit_price": "5", "discount": "10"}]})
    assert exact.status_code == 201 and exact.json()["amount"] == "0.00"


# Moves, won and lost, stage history

async def test_moves_write_intervals_and_events(ws: Workspace, frozen: Any) -> None:
    sales = await default_pipeline(ws)
    new, clarified, measurement = (stage_id(sales, n) for n in
                                   ("New request", "Clarified", "Measurement"))
    user = await new_user(ws, "admin")
    admin = await act_as(ws, user)
    frozen(T0)
    deal = await new_deal(admin, amount="500")
    url = f"/api/v1/deals/{deal['id']}"
    frozen(T0 + timedelta(hours=2))
    moved = await admin.patch(url, json={"stage_id": clarified, "title": "Renamed"},
                              headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_entered_at"] == "2026-11-23T11:00:00Z"
    assert moved.json()["version"] == 2 and moved.json()["score"]["probability"] == 20
    frozen(T0 + timedelta(hours=5))
    again = await admin.post(f"{url}/move", json={"stage_id": measurement})
    assert again.status_code == 200 and again.json()["version"] == 3
    same = await admin.post(f"{url}/move", json={"stage_id": measurement})
    assert same.json()["version"] == 3  # already there: nothing happens
    frozen(T0 + timedelta(hours=6))
    history = await stage_history(admin, deal["id"])
    actor = f"user:{user['id']}"
    assert [(h["stage_name"], h["from_stage_id"], h["entered_at"], h["left_at"],
             h["duration_seconds"], h["entered_by"], h["left_by"]) for h in history] == [
        ("New request", None, "2026-11-23T09:00:00Z", "2026-11-23T11:00:00Z", 7200, actor,
         actor),
        ("Clarified", new, "2026-11-23T11:00:00Z", "2026-11-23T14:00:00Z", 10800, actor,
         actor),
        ("Measurement", clarified, "2026-11-23T14:00:00Z", None, 3600, actor, None)]
    events = (await admin.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in events] == ["deal.created", "deal.updated",
                                           "deal.stage_changed", "deal.stage_changed"]
    assert events[1]["after"]["title"] == "Renamed" and "stage_id" not in events[1]["changed"]
    change = events[2]
    assert (change["before"]["stage_id"], change["after"]["stage_id"]) == (new, clarified)
    assert (change["before"]["stage_name"], change["after"]["stage_name"]) == (
        "New request", "Clarified")
    assert_problem(await admin.patch(url, json={"title": "x"}, headers={"If-Match": '"1"'}),
                   412)
    assert_problem(await admin.post(f"{url}/move", json={"stage_id": new},
                                    headers={"If-Match": '"2"'}), 412)


async def test_each_move_counts_once_against_the_rate_limit(ws: Workspace) -> None:
    """A plain move (on the driver connection), a move that falls back to the ORM path
    after that (a lost stage), a refused one and the next each count as one request
    (decision 0063)."""
    sales = await default_pipeline(ws)
    for _attempt in range(2):  # a minute's window may close in between: once more then
        deal = await new_deal(ws)
        url = f"/api/v1/deals/{deal['id']}/move"
        answers = [
            await ws.post(url, json={"stage_id": stage_id(sales, "Clarified")}),
            await ws.post(url, json={"stage_id": stage_id(sales, "Lost"),
                                     "lost_reason": "price"}),
            await ws.post(url, json={"stage_id": stage_id(sales, "Won")},
                          headers={"If-Match": '"1"'}),
            # the refused move rolled back: its lock is gone with it
            await ws.post(url, json={"stage_id": stage_id(sales, "Won")})]
        assert [a.status_code for a in answers] == [200, 200, 412, 200]
        assert [answers[i].json()["status"] for i in (1, 3)] == ["lost", "won"]
        remaining = [int(a.headers["ratelimit-remaining"]) for a in answers]
        resets = [int(a.headers["ratelimit-reset"]) for a in answers]
        if resets == sorted(resets, reverse=True):  # all in one window
            assert remaining == [remaining[0] - i for i in range(4)], remaining
            return
    raise AssertionError("two windows closed during the test")


async def test_won_and_lost_follow_the_stage(ws: Workspace, frozen: Any) -> None:
    sales = await default_pipeline(ws)
    won, lost, archive = (stage_id(sales, n) for n in ("Won", "Lost", "Archive"))
    frozen(T0)
    deal = await new_deal(ws, amount="100")
    url = f"/api/v1/deals/{deal['id']}"
    assert error_locs(await ws.patch(url, json={"status": "won"})) == [["body", "status"]]
    assert error_locs(await ws.patch(url, json={"lost_reason": "price"})) == [
        ["body", "lost_reason"]]
    no_reason = await ws.post(f"{url}/move", json={"stage_id": lost})
    assert error_locs(no_reason) == [["body", "lost_reason"]]
    assert "price" in no_reason.json()["detail"]
    unknown = await ws.post(f"{url}/move", json={"stage_id": lost, "lost_reason": "weather"})
    assert error_locs(unknown) == [["body", "lost_reason"]]
    frozen(T0 + timedelta(days=1))
    lost_deal = await ws.post(f"{url}/move", json={"stage_id": lost, "lost_reason": "price"})
    body = lost_deal.json()
    assert (body["status"], body["lost_reason"], body["closed_at"]) == (
        "lost", "price", "2026-11-24T09:00:00Z")
    assert body["score"]["probability"] == 0
    assert error_locs(await ws.patch(url, json={"lost_reason": None})) == [
        ["body", "lost_reason"]]
    other_reason = await ws.patch(url, json={"lost_reason": "competitor"})
    assert other_reason.json()["lost_reason"] == "competitor"
    frozen(T0 + timedelta(days=2))
    archived = await ws.patch(url, json={"stage_id": archive, "status": "lost"})
    assert archived.status_code == 200, archived.text
    assert (archived.json()["lost_reason"], archived.json()["closed_at"]) == (
        "competitor", "2026-11-24T09:00:00Z")
    reopened = await ws.post(f"{url}/move", json={"stage_id": stage_id(sales, "Pricing")})
    assert (reopened.json()["status"], reopened.json()["lost_reason"],
            reopened.json()["closed_at"]) == ("open", None, None)
    won_deal = await ws.patch(url, json={"stage_id": won, "status": "won"})
    assert (won_deal.json()["status"], won_deal.json()["closed_at"]) == (
        "won", "2026-11-25T09:00:00Z")
    assert won_deal.json()["score"]["probability"] == 100
    assert await event_types(ws, deal["id"]) == [
        "deal.created", "deal.stage_changed", "deal.lost", "deal.updated",
        "deal.stage_changed", "deal.stage_changed", "deal.reopened", "deal.stage_changed",
        "deal.won"]
    # A workspace's own reasons.
    await ws.patch("/api/v1/workspaces/current",
                   json={"settings": {"lost_reasons": ["too far", "budget"]}})
    second = await new_deal(ws)
    assert error_locs(await ws.post(f"/api/v1/deals/{second['id']}/move", json={
        "stage_id": lost, "lost_reason": "price"})) == [["body", "lost_reason"]]
    assert (await ws.post(f"/api/v1/deals/{second['id']}/move", json={
        "stage_id": lost, "lost_reason": "too far"})).json()["lost_reason"] == "too far"
    created_lost = await new_deal(ws, stage_id=lost, lost_reason="budget")
    assert (created_lost["status"], created_lost["closed_at"]) == ("lost",
                                                                  "2026-11-25T09:00:00Z")


async def test_stage_history_survives_rename_reorder_and_archive(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    lead, quote = stage_id(pipeline, "Lead"), stage_id(pipeline, "Quote")
    deal = await new_deal(ws, stage_id=lead)
    await ws.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": quote})
    url = f"/api/v1/pipelines/{pipeline['id']}"
    await ws.patch(f"{url}/stages/{lead}", json={"name": "Inquiry"})
    ids = [s["id"] for s in pipeline["stages"]]
    await ws.post(f"{url}/stages/reorder", json={"stage_ids": [ids[1], ids[0], *ids[2:]]})
    await ws.post(f"{url}/stages/{lead}/archive")
    history = await stage_history(ws, deal["id"])
    assert [(h["stage_id"], h["stage_name"], h["stage_archived"], h["from_stage_id"])
            for h in history] == [(lead, "Inquiry", True, None), (quote, "Quote", False, lead)]
    assert history[0]["left_at"] == history[1]["entered_at"]
    assert all(h["pipeline_id"] == pipeline["id"] for h in history)
    # The deal's own record is untouched by the stage changes.
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["stage_id"] == quote


async def test_moving_between_pipelines_needs_the_pipeline(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    repairs = await new_pipeline(ws)
    deal = await new_deal(ws)
    url = f"/api/v1/deals/{deal['id']}"
    quote = stage_id(repairs, "Quote")
    without = await ws.patch(url, json={"stage_id": quote})
    assert error_locs(without) == [["body", "stage_id"]]
    assert error_locs(await ws.post(f"{url}/move", json={"stage_id": quote})) == [
        ["body", "stage_id"]]
    mismatch = await ws.patch(url, json={"stage_id": stage_id(sales, "Clarified"),
                                         "pipeline_id": repairs["id"]})
    assert error_locs(mismatch) == [["body", "stage_id"]]
    moved = await ws.post(f"{url}/move", json={"stage_id": quote, "pipeline_id": repairs["id"]})
    assert (moved.json()["pipeline_id"], moved.json()["stage_id"]) == (repairs["id"], quote)
    back = await ws.patch(url, json={"pipeline_id": sales["id"]})
    assert (back.json()["pipeline_id"], back.json()["stage_id"]) == (
        sales["id"], stage_id(sales, "New request"))
    history = await stage_history(ws, deal["id"])
    assert [h["pipeline_id"] for h in history] == [sales["id"], repairs["id"], sales["id"]]
    # On create, a stage alone places the deal in the stage's pipeline.
    created = await new_deal(ws, stage_id=quote)
    assert created["pipeline_id"] == repairs["id"]
    unknown = await ws.post("/api/v1/deals", json={"title": "x", "stage_id": deal["id"]})
    assert error_locs(unknown) == [["body", "stage_id"]]


async def test_stage_probability_change_rescores_its_deals(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    quote = stage_id(pipeline, "Quote")
    deal = await new_deal(ws, stage_id=quote, amount="200")
    assert deal["score"]["probability"] == 50
    await ws.patch(f"/api/v1/pipelines/{pipeline['id']}/stages/{quote}",
                   json={"probability": 80})
    after = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert after["score"]["probability"] == 80 and after["version"] == 1


# The board

async def test_board_counts_sums_and_first_pages(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    new, payment = stage_id(sales, "New request"), stage_id(sales, "Payment")
    for i in range(3):
        await new_deal(ws, title=f"New {i}", amount=f"{100 * (i + 1)}.10")
    await new_deal(ws, title="No amount")
    await new_deal(ws, title="In euros", amount="999.99", currency="EUR")
    await new_deal(ws, title="Paid", stage_id=payment, currency="USD", line_items=[
        {"name": "Window", "quantity": "3", "unit_price": "19.99", "discount": "5",
         "tax_rate": "20"}])
    gone = await new_deal(ws, title="Deleted", amount="5000")
    await ws.delete(f"/api/v1/deals/{gone['id']}")
    response = await ws.get(f"/api/v1/pipelines/{sales['id']}/board", params={"limit": 2})
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["pipeline"]["id"] == sales["id"] and board["currency"] == "USD"
    columns = {c["stage"]["name"]: c for c in board["stages"]}
    assert list(columns) == [s["name"] for s in sales["stages"]]
    first = columns["New request"]
    assert first["count"] == 5
    assert (first["total_amount"], first["weighted_amount"]) == ("600.30", "60.03")
    assert first["other_currencies"] == [{"currency": "EUR", "count": 1,
                                          "total_amount": "999.99", "weighted_amount": "100.00"}]
    assert [d["title"] for d in first["deals"]] == ["In euros", "No amount"]
    assert first["next_cursor"]
    paid = columns["Payment"]
    assert (paid["count"], paid["total_amount"], paid["weighted_amount"]) == (1, "65.96",
                                                                              "52.77")
    assert paid["next_cursor"] is None and paid["deals"][0]["amount"] == "65.96"
    empty = columns["Clarified"]
    assert (empty["count"], empty["total_amount"], empty["deals"]) == (0, "0.00", [])
    # The cursor continues the column in the deal list, in the same order.
    rest = await all_pages(ws, "/api/v1/deals", stage_id=new, limit=2,
                           cursor=first["next_cursor"])
    assert [d["title"] for d in rest] == ["New 2", "New 1", "New 0"]
    assert_problem(await ws.get(f"/api/v1/pipelines/{sales['id']}/board",
                                params={"limit": 0}), 422)
    assert_problem(await ws.get(f"/api/v1/pipelines/{sales['id']}/board",
                                params={"owner_id": "me"}), 422)


async def test_board_shows_archived_stages_only_while_they_hold_deals(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    url = f"/api/v1/pipelines/{pipeline['id']}"
    quote, done = stage_id(pipeline, "Quote"), stage_id(pipeline, "Done")
    await ws.post(f"{url}/stages/{done}/archive")
    deal = await new_deal(ws, stage_id=quote)
    await ws.post(f"{url}/stages/{quote}/archive")
    names = [(c["stage"]["name"], c["stage"]["archived"], c["count"])
             for c in (await ws.get(f"{url}/board")).json()["stages"]]
    assert names == [("Lead", False, 0), ("Dropped", False, 0), ("Quote", True, 1)]
    await ws.delete(f"/api/v1/deals/{deal['id']}")
    names = [c["stage"]["name"] for c in (await ws.get(f"{url}/board")).json()["stages"]]
    assert names == ["Lead", "Dropped"]


# Visibility and access

async def test_an_agent_never_sees_another_agents_deals(
        ws: Workspace, fresh_client: httpx.AsyncClient) -> None:
    sales = await default_pipeline(ws)
    alice, bob = await new_user(ws, "agent"), await new_user(ws, "agent")
    team = await ws.post("/api/v1/teams", json={"name": "Sales",
                                                "member_ids": [alice["id"], bob["id"]]})
    assert team.status_code == 201, team.text
    as_alice, as_bob = await act_as(ws, alice, fresh_client), await act_as(ws, bob)
    mine = await new_deal(as_alice, title="Alice's", amount="10")
    theirs = await new_deal(as_bob, title="Bob's", amount="20")
    await new_deal(ws, title="Unowned", amount="40")
    url = f"/api/v1/deals/{theirs['id']}"
    assert_problem(await as_alice.get(url), 404)
    assert_problem(await as_alice.patch(url, json={"title": "x"}), 404)
    assert_problem(await as_alice.post(f"{url}/move", json={
        "stage_id": stage_id(sales, "Clarified")}), 404)
    assert_problem(await as_alice.delete(url), 404)
    assert_problem(await as_alice.get(f"{url}/stage-history"), 404)
    assert_problem(await as_alice.get(f"{url}/history"), 404)
    assert await deal_titles(as_alice) == ["Alice's"]
    assert await deal_titles(as_alice, owner_id=bob["id"]) == []
    search = await as_alice.post("/api/v1/deals/search", json={})
    assert [d["title"] for d in search.json()["data"]] == ["Alice's"]
    board = (await as_alice.get(f"/api/v1/pipelines/{sales['id']}/board")).json()
    column = board["stages"][0]
    assert [d["title"] for d in column["deals"]] == ["Alice's"]
    assert (column["count"], column["total_amount"]) == (1, "10.00")
    assert (await ws.get(url)).status_code == 200
    assert len((await ws.get(f"/api/v1/pipelines/{sales['id']}/board")).json()[
        "stages"][0]["deals"]) == 3
    owner_board = (await ws.get(f"/api/v1/pipelines/{sales['id']}/board",
                                params={"owner_id": bob["id"]})).json()
    assert [d["title"] for d in owner_board["stages"][0]["deals"]] == ["Bob's"]
    # With the team setting on, teammates see each other's deals (but still not unowned).
    await ws.patch("/api/v1/workspaces/current", json={"settings": {"agents_see_team": True}})
    assert (await as_alice.get(url)).status_code == 200
    assert await deal_titles(as_alice) == ["Alice's", "Bob's"]
    assert mine["owner_id"] == alice["id"]


async def test_deal_links_respect_visibility(ws: Workspace) -> None:
    alice, bob = await new_user(ws, "agent"), await new_user(ws, "agent")
    as_alice, as_bob = await act_as(ws, alice), await act_as(ws, bob)
    hidden = await new_contact(as_bob, first_name="Hidden")
    hidden_company = await new_company(as_bob, name="Hidden Co")
    own = await new_contact(as_alice, first_name="Visible")
    refused = await as_alice.post("/api/v1/deals", json={"title": "x", "contact_ids": [
        own["id"], hidden["id"]]})
    assert error_locs(refused) == [["body", "contact_ids"]]
    assert error_locs(await as_alice.post("/api/v1/deals", json={
        "title": "x", "company_id": hidden_company["id"]})) == [["body", "company_id"]]
    deleted = await new_contact(as_alice, first_name="Deleted")
    await as_alice.delete(f"/api/v1/contacts/{deleted['id']}")
    assert error_locs(await as_alice.post("/api/v1/deals", json={
        "title": "x", "contact_ids": [deleted["id"]]})) == [["body", "contact_ids"]]
    assert error_locs(await as_alice.post("/api/v1/deals", json={
        "title": "x", "owner_id": ws.id})) == [["body", "owner_id"]]


async def test_other_workspace_and_read_only_key(ws: Workspace, other_ws: Workspace) -> None:
    deal = await new_deal(ws)
    url = f"/api/v1/deals/{deal['id']}"
    for response in (await other_ws.get(url), await other_ws.patch(url, json={"title": "x"}),
                     await other_ws.delete(url), await other_ws.post(f"{url}/restore"),
                     await other_ws.get(f"{url}/stage-history"),
                     await other_ws.get(f"{url}/history")):
        assert_problem(response, 404)
    assert await deal_titles(other_ws) == []
    theirs = await default_pipeline(other_ws)
    assert error_locs(await other_ws.post("/api/v1/deals", json={
        "title": "x", "stage_id": deal["stage_id"]})) == [["body", "stage_id"]]
    assert error_locs(await ws.post(f"{url}/move", json={
        "stage_id": theirs["stages"][1]["id"], "pipeline_id": theirs["id"]})) == [
        ["body", "stage_id"]]
    key = await ws.post("/api/v1/api-keys", json={"name": "ro", "scope": "read"})
    reader = Workspace(id=ws.id, owner_id=ws.owner_id, api_key=key.json()["key"],
                       client=ws.client)
    assert (await reader.get(url)).status_code == 200
    assert (await reader.get(f"{url}/stage-history")).status_code == 200
    assert_problem(await reader.post("/api/v1/deals", json={"title": "x"}), 403)
    assert_problem(await reader.patch(url, json={"title": "x"}), 403)
    assert_problem(await reader.post(f"{url}/move", json={"stage_id": deal["stage_id"]}), 403)
    assert_problem(await reader.delete(url), 403)
    assert_problem(await reader.post("/api/v1/deals/batch", json={"items": [{"title": "x"}]}),
                   403)


# Lists, filters, search

async def test_filters_and_search(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    anna = await new_contact(ws, first_name="Anna", last_name="Kuznetsova")
    company = await new_company(ws, name="Stroy")
    await new_custom_field(ws, "floor", "number", object_type="deal")
    await new_deal(ws, title="Small", amount="99.99", tags=["b2c"])
    await new_deal(ws, title="Big", amount="1000", tags=["b2b", "vip"], company_id=company["id"],
                   custom_fields={"floor": 9}, contact_ids=[anna["id"]],
                   expected_close_date="2026-12-01")
    lost = await new_deal(ws, title="Gone", amount="5000")
    await ws.post(f"/api/v1/deals/{lost['id']}/move", json={
        "stage_id": stage_id(sales, "Lost"), "lost_reason": "price"})
    assert await deal_titles(ws, amount__gte="1000") == ["Big", "Gone"]
    assert await deal_titles(ws, amount__lt="100.5") == ["Small"]
    assert await deal_titles(ws, amount__in="99.99,5000") == ["Gone", "Small"]
    assert await deal_titles(ws, amount__isnull="true") == []
    assert await deal_titles(ws, status="lost") == ["Gone"]
    assert await deal_titles(ws, status__ne="lost", tags__has="vip") == ["Big"]
    assert await deal_titles(ws, contact_id=anna["id"]) == ["Big"]
    assert await deal_titles(ws, contact_id__isnull="true") == ["Gone", "Small"]
    assert await deal_titles(ws, company_id=company["id"]) == ["Big"]
    assert await deal_titles(ws, **{"custom_fields.floor__gte": "5"}) == ["Big"]
    assert await deal_titles(ws, expected_close_date__lte="2026-12-31") == ["Big"]
    assert await deal_titles(ws, **{"stage.kind": "lost"}) == ["Gone"]
    assert await deal_titles(ws, stage_id=stage_id(sales, "New request")) == ["Big", "Small"]
    assert await deal_titles(ws, score_class__in="A,B,C,D") == ["Big", "Gone", "Small"]
    assert await deal_titles(ws, q="kuzn") == ["Big"]
    assert await deal_titles(ws, q="sma") == ["Small"]
    assert await deal_titles(ws, sort="title") == ["Big", "Gone", "Small"]
    for params in ({"amount__gte": "lots"}, {"amount__contains": "1"}, {"amount__has": "1"},
                   {"contact_id": "nope"}, {"contact_id__gt": anna["id"]}, {"colour": "red"},
                   {"sort": "amount"}, {"limit": "201"}, {"status": ["a", "b"]}):
        assert_problem(await ws.get("/api/v1/deals", params=params), 422)
    search = await ws.post("/api/v1/deals/search", json={"filter": {"or": [
        {"field": "amount", "op": "gt", "value": "4999.99"},
        {"field": "contact_id", "op": "eq", "value": anna["id"]}]}, "sort": "title"})
    assert [d["title"] for d in search.json()["data"]] == ["Big", "Gone"]
    assert_problem(await ws.post("/api/v1/deals/search", json={"filter": {
        "field": "amount", "op": "gte", "value": {"x": 1}}}), 422)
    assert_problem(await ws.post("/api/v1/deals/search", json={"filter": {
        "field": "amount", "op": "gte", "value": "NaN"}}), 422)
    pages = await all_pages(ws, "/api/v1/deals", limit=1)
    assert [d["title"] for d in pages] == ["Gone", "Big", "Small"]


# Batch, delete, restore

async def test_batch_upserts_on_external_id(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    first = await ws.post("/api/v1/deals/batch", json={"items": [
        {"title": "One", "external_id": "e1", "amount": "10"},
        {"title": "Two", "external_id": "e2", "line_items": [{"quantity": 1,
                                                              "unit_price": 1}]},
        {"title": "Three", "external_id": "e3", "stage_id": stage_id(sales, "Won")}]})
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "created"]
    assert results[1]["error"]["status"] == 422
    second = await ws.post("/api/v1/deals/batch", json={"upsert_on": "external_id", "items": [
        {"title": "One", "external_id": "e1", "amount": "10"},
        {"title": "Three", "external_id": "e3", "stage_id": stage_id(sales, "Lost"),
         "lost_reason": "price"},
        {"title": "Four", "external_id": "e4"},
        {"title": "No key"}]})
    statuses = [(r["status"], r["index"]) for r in second.json()["results"]]
    assert statuses == [("unchanged", 0), ("updated", 1), ("created", 2), ("error", 3)]
    three = (await ws.get(f"/api/v1/deals/{results[2]['id']}")).json()
    assert (three["status"], three["lost_reason"]) == ("lost", "price")
    assert len(await stage_history(ws, three["id"])) == 2
    assert_problem(await ws.post("/api/v1/deals/batch", json={
        "upsert_on": "email", "items": [{"title": "x"}]}), 422)


async def test_delete_restore_keep_history(ws: Workspace) -> None:
    deal = await new_deal(ws)
    url = f"/api/v1/deals/{deal['id']}"
    assert_problem(await ws.delete(url, headers={"If-Match": '"7"'}), 412)
    assert (await ws.delete(url)).status_code == 204
    assert_problem(await ws.get(url), 404)
    assert await deal_titles(ws) == []
    assert await deal_titles(ws, include_deleted="true") == ["Deal"]
    assert len(await stage_history(ws, deal["id"])) == 1
    restored = await ws.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert restored.headers["etag"] == '"3"'
    assert await event_types(ws, deal["id"]) == ["deal.created", "deal.deleted",
                                                 "deal.restored"]
