"""Deal scoring over REST (S8): configure rules, see deals scored and explained, re-scoring
on every input change, the maximum and the drop from it, and the head's manual adjustment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.db import unit_of_work
from app.domain.deals import moves, scoring
from app.domain.deals import service as deals_service
from app.domain.deals.models import Deal
from app.domain.deals.schemas import DealMove
from app.domain.shared.clock import clock
from app.domain.shared.principal import system_principal
from tests.api.graphql.test_dataloader import count_statements
from tests.api.rest.conftest import (
    act_as,
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    new_custom_field,
    new_user,
)
from tests.conftest import Workspace, make_workspace

URL = "/api/v1/deal-scoring"

RULES: list[dict[str, Any]] = [
    {"id": "big-order", "name": "Big order", "points": 40,
     "conditions": [{"field": "deal.amount", "op": "gte", "value": 10000}]},
    {"id": "hot-customer", "name": "Hot customer", "points": 25,
     "conditions": [{"field": "contact.status", "op": "eq", "value": "hot"}]},
    {"id": "from-ads", "name": "From ads", "points": 30,
     "conditions": [{"field": "deal.source", "op": "eq", "value": "ads"}]},
    {"id": "partner", "name": "Partner company", "points": -20,
     "conditions": [{"field": "company.kind", "op": "eq", "value": "partner"}]},
]
THRESHOLDS = {"A": 60, "B": 30, "C": 10}


async def put_config(ws: Workspace, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await ws.client.put(URL, json=body, headers={**ws.auth, **headers})


async def configure(ws: Workspace, rules: list[dict[str, Any]] = RULES,
                    **extra: Any) -> dict[str, Any]:
    response = await put_config(ws, {"rules": rules, "thresholds": THRESHOLDS, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def stage_ids(ws: Workspace) -> dict[str, str]:
    response = await ws.get("/api/v1/pipelines")
    assert response.status_code == 200, response.text
    pipeline = response.json()["data"][0]
    return {s["name"]: s["id"] for s in pipeline["stages"]}


async def new_deal(ws: Workspace, stage: str = "Proposal", **fields: Any) -> dict[str, Any]:
    body = {"title": "Windows for the dacha", "currency": "EUR",
            "stage_id": (await stage_ids(ws))[stage], **fields}
    response = await ws.post("/api/v1/deals", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def deal_of(ws: Workspace, deal_id: str) -> dict[str, Any]:
    response = await ws.get(f"/api/v1/deals/{deal_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def cursor_now(ws: Workspace) -> str | None:
    body = (await ws.get("/api/v1/events", params={"limit": 200})).json()
    cursor = body["next_cursor"]
    while body["data"]:
        body = (await ws.get("/api/v1/events", params={"limit": 200, "after": cursor})).json()
        cursor = body["next_cursor"] or cursor
    return cursor  # type: ignore[no-any-return]


async def events_after(ws: Workspace, cursor: str | None, *, expect: int,
                       types: str) -> list[dict[str, Any]]:
    """The events of `types` after the cursor, polled until `expect` have arrived: the log
    serves an event once every older transaction on the (shared) server has ended."""
    events: list[dict[str, Any]] = []
    for _ in range(300):
        params = {"types": types, "limit": 200, **({"after": cursor} if cursor else {})}
        events = (await ws.get("/api/v1/events", params=params)).json()["data"]
        if len(events) >= expect:
            return events
        await asyncio.sleep(0.1)
    return events


def rule_ids(score: dict[str, Any]) -> list[str]:
    return [e["rule_id"] for e in score["explanation"] if e["kind"] == "rule"]


async def test_defaults_until_configured_then_versioned(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    response = await ws.get(URL)
    assert response.status_code == 200
    assert response.headers["etag"] == '"0"'
    assert response.json() == {"rules": [], "thresholds": {"A": 50, "B": 0, "C": -50},
                               "class_factors": {"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.5},
                               "version": 0, "updated_at": None, "updated_by": None}
    cursor = await cursor_now(ws)
    stored = await configure(ws)
    assert stored["version"] == 1 and stored["rescored_deals"] == 0
    assert stored["rules"][0] == {**RULES[0], "enabled": True}
    assert stored["thresholds"] == THRESHOLDS
    assert stored["updated_by"].startswith("api_key:")
    again = await ws.get(URL)
    assert again.headers["etag"] == '"1"'
    assert again.json()["rules"] == stored["rules"]
    events = await events_after(ws, cursor, expect=1, types="deal_scoring.updated")
    assert [e["type"] for e in events] == ["deal_scoring.updated"]
    assert events[0]["after"]["version"] == 1
    # The same configuration again changes nothing.
    same = await configure(ws)
    assert same["version"] == 1


async def test_deal_is_scored_and_explained(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    contact = await new_contact(ws, first_name="Anna", phones=["+7 495 123-45-67"],
                                status="hot")
    deal = await new_deal(ws, amount="15000", contact_ids=[contact["id"]], source="site")
    score = deal["score"]
    assert score["points"] == 65 and score["class"] == "A"
    assert score["probability"] == 72  # Proposal 60% × 1.2
    assert score["expected_amount"] == "10800.00"
    assert score["max_expected_amount"] == "10800.00" and score["drop_from_max"] == "0.00"
    assert rule_ids(score) == ["big-order", "hot-customer"]
    big = score["explanation"][0]
    assert big["rule"] == "Big order" and big["points"] == 40
    assert big["conditions"] == [{"field": "deal.amount", "op": "gte", "value": 10000,
                                  "actual": "15000.00"}]
    assert big["text"] == ("Rule “Big order” +40 points: deal amount ≥ 10000 (it is "
                           "15000.00).")
    texts = [e["text"] for e in score["explanation"]]
    assert "65 points from 2 matching rules: class A (A from 60, B from 30, C from 10, " \
           "D below)." in texts
    assert "Stage “Proposal” wins 60% of deals." in texts
    assert "Class A weighs the stage probability ×1.2: 60% → 72%." in texts
    assert "Expected amount 15000.00 EUR × 72% = 10800.00 EUR." in texts
    # The score endpoint shows the same, with the deal's version as ETag.
    response = await ws.get(f"/api/v1/deals/{deal['id']}/score")
    assert response.status_code == 200 and response.headers["etag"] == f'"{deal["version"]}"'
    assert response.json()["class"] == "A" and response.json()["currency"] == "EUR"

    cold = await new_deal(ws, amount="900")  # no rule: 0 points, class D
    assert cold["score"]["class"] == "D" and cold["score"]["probability"] == 30
    assert cold["score"]["expected_amount"] == "270.00"
    no_amount = await new_deal(ws)
    assert no_amount["score"]["expected_amount"] is None


async def test_changing_rules_rescores_open_deals(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    ad_deal = await new_deal(ws, amount="2000", source="ads")
    other = await new_deal(ws, amount="2000", source="site")
    assert ad_deal["score"]["class"] == "B" and other["score"]["class"] == "D"
    cursor = await cursor_now(ws)
    rules = [{**r, "points": 70} if r["id"] == "from-ads" else r for r in RULES]
    stored = await configure(ws, rules)
    assert stored["version"] == 2 and stored["rescored_deals"] == 1
    rescored = await deal_of(ws, ad_deal["id"])
    assert rescored["score"]["points"] == 70 and rescored["score"]["class"] == "A"
    assert rescored["score"]["probability"] == 72
    assert rescored["version"] == ad_deal["version"]  # derived state: the ETag stays valid
    assert (await deal_of(ws, other["id"]))["score"] == other["score"]
    events = await events_after(ws, cursor, expect=2, types="deal_scoring.updated,deal.updated")
    assert [e["type"] for e in events] == ["deal_scoring.updated", "deal.updated"]
    assert events[1]["entity_id"] == ad_deal["id"]
    assert {"score_class", "score_points", "probability"} <= set(events[1]["changed"])
    assert events[1]["before"]["score_class"] == "B" and events[1]["after"]["score_class"] == "A"
    # A disabled rule no longer counts.
    await configure(ws, [{**r, "enabled": r["id"] != "from-ads"} for r in RULES])
    assert (await deal_of(ws, ad_deal["id"]))["score"]["class"] == "D"


async def test_class_factors_and_thresholds_are_configurable(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    deal = await new_deal(ws, amount="1000")
    assert deal["score"]["class"] == "B" and deal["score"]["probability"] == 60
    await configure(ws, [], thresholds={"A": 0, "B": -1, "C": -2},
                    class_factors={"A": 1.5, "B": 1, "C": 1, "D": 1})
    score = (await deal_of(ws, deal["id"]))["score"]
    assert score["class"] == "A" and score["probability"] == 90
    assert score["expected_amount"] == "900.00"


async def test_contact_and_company_changes_rescore_their_deals(
        client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    company = await new_company(ws, kind="customer")
    contact = await new_contact(ws, first_name="Boris", status="cold")
    second = await new_contact(ws, first_name="Vera", status="hot")
    deal = await new_deal(ws, amount="500", contact_ids=[contact["id"], second["id"]],
                          company_id=company["id"])
    assert deal["score"]["points"] == 0  # the primary contact is the first one
    cursor = await cursor_now(ws)
    response = await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"status": "hot"})
    assert response.status_code == 200, response.text
    score = (await deal_of(ws, deal["id"]))["score"]
    assert score["points"] == 25 and rule_ids(score) == ["hot-customer"]
    assert score["explanation"][0]["conditions"][0]["actual"] == "hot"
    events = await events_after(ws, cursor, expect=2, types="contact.updated,deal.updated")
    assert [e["type"] for e in events] == ["contact.updated", "deal.updated"]
    assert events[1]["before"]["score_points"] == 0 and events[1]["after"]["score_points"] == 25
    # A change that does not move any score writes no deal event.
    cursor = await cursor_now(ws)
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"first_name": "Borya"})
    await ws.patch(f"/api/v1/contacts/{second['id']}", json={"status": "cold"})
    events = await events_after(ws, cursor, expect=2, types="contact.updated,deal.updated")
    assert [e["type"] for e in events] == ["contact.updated", "contact.updated"]

    response = await ws.patch(f"/api/v1/companies/{company['id']}", json={"kind": "partner"})
    assert response.status_code == 200, response.text
    score = (await deal_of(ws, deal["id"]))["score"]
    assert score["points"] == 5 and rule_ids(score) == ["hot-customer", "partner"]
    # Deleting the primary contact leaves the next one as primary.
    assert (await ws.delete(f"/api/v1/contacts/{contact['id']}")).status_code == 204
    assert (await deal_of(ws, deal["id"]))["score"]["points"] == -20


async def test_maximum_value_and_drop_after_the_amount_falls(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    deal = await new_deal(ws, amount="20000")
    assert deal["score"]["expected_amount"] == "12000.00"
    response = await ws.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "10000"})
    assert response.status_code == 200, response.text
    score = response.json()["score"]
    assert score["expected_amount"] == "6000.00"
    assert score["max_expected_amount"] == "12000.00"
    assert score["drop_from_max"] == "6000.00"
    drop = score["explanation"][-1]
    assert drop["kind"] == "drop_from_max"
    assert drop["text"] == "Down 6000.00 EUR from its highest expected amount, 12000.00 EUR."
    # Higher again: the maximum follows, the drop is gone.
    response = await ws.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "30000"})
    score = response.json()["score"]
    assert score["max_expected_amount"] == "18000.00" and score["drop_from_max"] == "0.00"
    # Lost: nothing expected any more, the whole maximum is the drop.
    stages = await stage_ids(ws)
    response = await ws.post(f"/api/v1/deals/{deal['id']}/move",
                             json={"stage_id": stages["Lost"], "lost_reason": "price"})
    assert response.status_code == 200, response.text
    score = response.json()["score"]
    assert score["probability"] == 0 and score["expected_amount"] == "0.00"
    assert score["drop_from_max"] == "18000.00"


async def test_won_deal_has_full_probability(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    deal = await new_deal(ws, amount="100")
    response = await ws.post(f"/api/v1/deals/{deal['id']}/move",
                             json={"stage_id": (await stage_ids(ws))["Won"]})
    score = response.json()["score"]
    assert score["class"] == "D" and score["probability"] == 100
    assert score["expected_amount"] == "100.00"
    assert "The deal is won: probability 100%." in [e["text"] for e in score["explanation"]]


async def test_manual_adjustment_by_a_manager(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    manager = await new_user(ws, "manager", "Head of sales")
    head = await act_as(ws, manager)
    deal = await new_deal(ws, amount="15000")  # 40 points: class B
    assert deal["score"]["class"] == "B"
    url = f"/api/v1/deals/{deal['id']}/score-adjustment"
    cursor = await cursor_now(ws)
    response = await head.post(url, json={"adjustment": 1, "note": "signed a letter of intent"})
    assert response.status_code == 200, response.text
    up = response.json()
    assert up["class"] == "A" and up["probability"] == 72 and up["points"] == 40
    assert up["adjustment"] == 1 and up["adjusted_by"] == f"user:{manager['id']}"
    assert up["adjusted_at"] is not None
    assert up["version"] == deal["version"] + 1
    assert response.headers["etag"] == f'"{up["version"]}"'
    entry = next(e for e in up["explanation"] if e["kind"] == "adjustment")
    assert entry["from_class"] == "B" and entry["class"] == "A"
    assert entry["note"] == "signed a letter of intent"
    assert entry["text"].startswith(f"Class manually raised one step from B to A by "
                                    f"user:{manager['id']} on ")
    events = await events_after(ws, cursor, expect=1, types="deal.updated")
    assert events[0]["type"] == "deal.updated" and events[0]["actor"] == f"user:{manager['id']}"
    assert {"score_adjustment", "score_class", "version"} <= set(events[0]["changed"])
    # The adjustment (and its note) survive a re-score from another change.
    response = await ws.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "16000"})
    score = response.json()["score"]
    assert score["class"] == "A" and score["adjustment"] == 1
    assert next(e for e in score["explanation"]
                if e["kind"] == "adjustment")["note"] == "signed a letter of intent"
    # A stale If-Match is refused; -1 lowers below the computed class.
    stale = await head.post(url, json={"adjustment": -1}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    current = response.json()["version"]
    down = await head.post(url, json={"adjustment": -1}, headers={"If-Match": f'"{current}"'})
    assert down.status_code == 200, down.text
    assert down.json()["class"] == "C" and down.json()["probability"] == 48
    cleared = (await head.post(url, json={"adjustment": 0})).json()
    assert cleared["class"] == "B" and cleared["adjustment"] == 0
    assert not [e for e in cleared["explanation"] if e["kind"] == "adjustment"]
    assert (await deal_of(ws, deal["id"]))["score"]["class"] == "B"


async def test_adjustment_input_is_validated(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    deal = await new_deal(ws, amount="1")
    url = f"/api/v1/deals/{deal['id']}/score-adjustment"
    for body, loc in [({"adjustment": 2}, ["body", "adjustment"]),
                      ({"adjustment": "+1"}, ["body", "adjustment"]),
                      ({"adjustment": 1, "by": "me"}, ["body", "by"]),
                      ({"adjustment": 1, "note": "x" * 501}, ["body", "note"]),
                      ({"adjustment": 1, "note": "a\x00b"}, ["body", "note"])]:
        response = await ws.post(url, json=body)
        assert_problem(response, 422)
        assert loc in error_locs(response), (body, response.text)


async def test_agents_may_read_but_not_configure_or_adjust(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    agent = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent)
    assert (await as_agent.get(URL)).status_code == 200
    refused = await as_agent.client.put(URL, json={"rules": []}, headers=as_agent.auth)
    assert_problem(refused, 403)
    own = await new_deal(as_agent, amount="100")
    response = await as_agent.post(f"/api/v1/deals/{own['id']}/score-adjustment",
                                   json={"adjustment": 1})
    assert_problem(response, 403)
    assert (await deal_of(ws, own["id"]))["score"]["adjustment"] == 0
    preview = await as_agent.post(f"{URL}/preview", json={"deal_id": own["id"]})
    assert preview.status_code == 200, preview.text


async def test_another_workspace_sees_nothing(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    other = await make_workspace(client, name="Other")
    deal = await new_deal(ws, amount="100")
    for response in [
        await other.post(f"/api/v1/deals/{deal['id']}/score-adjustment", json={"adjustment": 1}),
        await other.post(f"{URL}/preview", json={"deal_id": deal["id"]}),
        await other.get(f"/api/v1/deals/{deal['id']}/score"),
    ]:
        assert_problem(response, 404)
    # And an agent does not see another agent's deal.
    agent = await act_as(ws, await new_user(ws, "agent"))
    foreign = await new_deal(await act_as(ws, await new_user(ws, "agent")), amount="5")
    assert_problem(await agent.post(f"{URL}/preview", json={"deal_id": foreign["id"]}), 404)


async def test_if_match_on_the_configuration(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    response = await put_config(ws, {"rules": RULES}, **{"If-Match": '"0"'})
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    stale = await put_config(ws, {"rules": []}, **{"If-Match": '"0"'})
    body = assert_problem(stale, 412)
    assert body["current_version"] == 1
    assert len((await ws.get(URL)).json()["rules"]) == len(RULES)


async def test_configuration_is_validated_strictly(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await new_custom_field(ws, "floors", "number", object_type="deal")
    stages = await stage_ids(ws)

    def rule(*conditions: dict[str, Any], id_: str = "r1") -> dict[str, Any]:
        return {"id": id_, "name": "Rule", "points": 5, "conditions": list(conditions)}

    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"rules": [rule({"field": "deal.nope", "op": "eq", "value": 1})]},
         ["body", "rules", 0, "conditions", 0, "field"]),
        ({"rules": [rule({"field": "deal.amount", "op": "like", "value": 1})]},
         ["body", "rules", 0, "conditions", 0, "op"]),
        ({"rules": [rule({"field": "deal.amount", "op": "has", "value": 1})]},
         ["body", "rules", 0, "conditions", 0, "op"]),
        ({"rules": [rule({"field": "deal.amount", "op": "gte", "value": "lots"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.tags", "op": "has", "value": 7})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.source", "op": "in", "value": []})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.source", "op": "exists", "value": "x"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "contact.status", "op": "eq", "value": "hott"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.currency", "op": "eq", "value": "EUX"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.stage_id", "op": "eq",
                          "value": "01a20986-e582-7366-8a71-2a8faf6bf60c"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.custom_fields.rooms", "op": "gte", "value": 1})]},
         ["body", "rules", 0, "conditions", 0, "field"]),
        ({"rules": [rule({"field": "deal.custom_fields.floors", "op": "gte", "value": "x"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [rule({"field": "deal.amount", "op": "gt", "value": 1}),
                    rule({"field": "deal.amount", "op": "gt", "value": 2})]},
         ["body", "rules", 1, "id"]),
        ({"rules": [rule()]}, ["body", "rules", 0, "conditions"]),
        ({"rules": [{**rule({"field": "deal.amount", "op": "gt", "value": 1}),
                     "points": 10**6}]}, ["body", "rules", 0, "points"]),
        ({"rules": [], "thresholds": {"A": 10, "B": 20, "C": 0}}, ["body", "thresholds"]),
        ({"rules": [], "class_factors": {"A": 1, "B": 1, "C": 1}},
         ["body", "class_factors", "D"]),
        ({"rules": [], "version": 3}, ["body", "version"]),
        ({"rules": [rule({"field": "deal.source", "op": "eq", "value": "a\x00"})]},
         ["body", "rules", 0, "conditions", 0, "value"]),
        ({"rules": [{**rule({"field": "deal.amount", "op": "gt", "value": 1}),
                     "name": "a\x00"}]}, ["body", "rules", 0, "name"]),
    ]
    for body, loc in cases:
        response = await put_config(ws, body)
        assert_problem(response, 422)
        assert loc in error_locs(response), (body, response.text)
    assert (await ws.get(URL)).json()["version"] == 0
    ok = await put_config(ws, {"rules": [
        rule({"field": "deal.stage_id", "op": "in", "value": [stages["Pricing"]]},
             {"field": "deal.custom_fields.floors", "op": "gte", "value": 3},
             {"field": "contact.status", "op": "in", "value": ["HOT", "vip"]})]})
    assert ok.status_code == 200, ok.text


async def test_custom_field_rules(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await new_custom_field(ws, "floors", "number", object_type="deal")
    await configure(ws, [{"id": "tall", "name": "Tall house", "points": 80, "conditions": [
        {"field": "deal.custom_fields.floors", "op": "gte", "value": 3}]}])
    tall = await new_deal(ws, amount="100", custom_fields={"floors": 4})
    low = await new_deal(ws, amount="100", custom_fields={"floors": 1})
    assert tall["score"]["class"] == "A" and low["score"]["class"] == "D"
    assert tall["score"]["explanation"][0]["text"] == (
        "Rule “Tall house” +80 points: deal field “floors” ≥ 3 (it is 4).")


async def test_preview_with_current_and_proposed_rules(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    deal = await new_deal(ws, amount="20000", source="ads")
    response = await ws.post(f"{URL}/preview", json={"deal_id": deal["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == response.json()["current"] == deal["score"]
    proposed = {"rules": [{"id": "ads", "name": "Ads are weak", "points": -50, "conditions": [
        {"field": "deal.source", "op": "eq", "value": "ads"}]}], "thresholds": THRESHOLDS}
    response = await ws.post(f"{URL}/preview", json={"deal_id": deal["id"], "config": proposed})
    preview = response.json()
    assert preview["score"]["class"] == "D" and preview["score"]["points"] == -50
    assert preview["score"]["probability"] == 30
    assert preview["current"]["class"] == "A"
    after = await deal_of(ws, deal["id"])
    assert after["score"] == deal["score"] and after["version"] == deal["version"]
    assert (await ws.get(URL)).json()["version"] == 1
    bad = await ws.post(f"{URL}/preview", json={"deal_id": deal["id"], "config": {"rules": [
        {"id": "x", "name": "X", "points": 1,
         "conditions": [{"field": "deal.colour", "op": "eq", "value": 1}]}]}})
    assert_problem(bad, 422)
    assert ["body", "config", "rules", 0, "conditions", 0, "field"] in error_locs(bad)
    missing = await ws.post(f"{URL}/preview",
                            json={"deal_id": "01a20986-e582-7366-8a71-2a8faf6bf60c"})
    assert_problem(missing, 404)


async def test_fields_catalog(client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await new_custom_field(ws, "segment", "select", object_type="company",
                           options=["smb", "enterprise"])
    response = await ws.get(f"{URL}/fields")
    assert response.status_code == 200
    fields = {f["field"]: f for f in response.json()["data"]}
    assert fields["deal.amount"]["ops"] == ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin",
                                            "exists", "not_exists"]
    assert fields["contact.tags"]["kind"] == "array" and "has" in fields["contact.tags"]["ops"]
    assert fields["company.custom_fields.segment"]["kind"] == "str"


async def test_config_change_rescores_in_batched_queries(
        client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new configuration re-scores every open deal with a few queries per chunk of deals,
    not a few per deal."""
    ws = await make_workspace(client)
    hot = await new_contact(ws, first_name="Hot", status="hot")
    cold = await new_contact(ws, first_name="Cold", status="cold")
    partner = await new_company(ws, kind="partner")
    stage = (await stage_ids(ws))["Proposal"]
    items = [{"title": f"Deal {i}", "amount": "1000", "currency": "EUR", "stage_id": stage,
              "contact_ids": [(hot if i % 2 else cold)["id"]],
              **({"company_id": partner["id"]} if i % 3 == 0 else {})} for i in range(40)]
    response = await ws.post("/api/v1/deals/batch", json={"items": items})
    assert response.status_code == 200, response.text
    ids = [r["id"] for r in response.json()["results"]]
    assert len(ids) == 40
    monkeypatch.setattr(scoring, "CHUNK", 16)
    with count_statements(app) as statements:
        stored = await configure(ws)
    # Every score moves: 0 points was class B under the defaults, and is D with THRESHOLDS.
    assert stored["rescored_deals"] == 40
    # Per chunk of 16: deals, stages, primary contacts, companies, one UPDATE, one INSERT of
    # events; plus the transaction's own few. One query per deal would be 40 or more.
    assert len(statements) <= 3 * 6 + 6, statements
    for i, deal_id in enumerate(ids):
        points = (25 if i % 2 else 0) + (-20 if i % 3 == 0 else 0)
        assert (await deal_of(ws, deal_id))["score"]["points"] == points, i


async def test_a_plain_move_is_one_read_and_one_write(client: httpx.AsyncClient, app: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A board drag is the most frequent write a frontend makes: a plain move re-scores from
    the primary contact and answers with the deal's contacts, with one read and one write on
    the driver connection and no ORM session at all (decisions 0062, 0063)."""
    ws = await make_workspace(client)
    await configure(ws)
    cold = await new_contact(ws, first_name="Cold", status="cold")
    hot = await new_contact(ws, first_name="Hot", status="hot")
    deal = await new_deal(ws, stage="Clarified", contact_ids=[hot["id"], cold["id"]])
    assert deal["score"]["points"] == 25
    proposal = (await stage_ids(ws))["Proposal"]
    driver: list[str] = []
    real = moves.plain_move_on

    async def logged(conn: Any, *args: Any, **kwargs: Any) -> Any:
        assert conn.is_in_transaction()  # begun, with the workspace set
        conn.add_query_logger(lambda record: driver.append(" ".join(record.query.split())))
        return await real(conn, *args, **kwargs)

    monkeypatch.setattr(moves, "plain_move_on", logged)
    with count_statements(app) as orm:
        moved = await ws.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": proposal})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["contact_ids"] == [hot["id"], cold["id"]] and body["version"] == 2
    assert body["score"]["points"] == 25 and rule_ids(body["score"]) == ["hot-customer"]
    assert orm == []
    # (asyncpg's own introspection of a type the first time a connection meets it aside)
    driver = [s for s in driver if "typeinfo_tree" not in s and "'jit'" not in s]
    assert [s.split()[0] for s in driver] == ["SELECT", "WITH"], driver
    assert "FOR UPDATE OF d" in driver[0] and "INSERT INTO events" in driver[1]
    events = (await ws.get(f"/api/v1/deals/{deal['id']}/history")).json()["data"]
    change = next(e for e in events if e["type"] == "deal.stage_changed")
    assert (change["before"]["stage_name"], change["after"]["stage_name"]) == (
        "Clarified", "Proposal")


async def test_a_deal_the_session_holds_is_moved_through_the_orm(
        client: httpx.AsyncClient, app: Any) -> None:
    """An in-process caller (a rule's actions share one transaction) that has loaded the
    deal sees the move on the object it holds: the plain move leaves such a deal alone."""
    ws = await make_workspace(client)
    deal = await new_deal(ws, stage="Clarified")
    proposal = (await stage_ids(ws))["Proposal"]
    workspace_id = uuid.UUID(ws.id)
    sessions = app.state.resources.sessions
    async with unit_of_work(sessions, workspace_id) as session:
        held = await session.get(Deal, (workspace_id, uuid.UUID(deal["id"])))
        moved = await deals_service.move_deal(session, system_principal(workspace_id),
                                              held.id, DealMove(stage_id=uuid.UUID(proposal)))
        assert (str(held.stage_id), held.version) == (proposal, 2) == (
            str(moved.stage_id), moved.version)
    assert (await deal_of(ws, deal["id"]))["stage_id"] == proposal


def _same_shape(record: dict[str, Any], *ids: str) -> dict[str, Any]:
    """A response or an event with its own ids and its deal's id taken out."""
    out = {k: v for k, v in record.items() if k not in ("id", "entity_id", "seq", "cursor")}
    for key in ("before", "after"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if v not in ids}
    return out


async def test_a_plain_move_writes_what_a_move_through_the_orm_writes(
        client: httpx.AsyncClient) -> None:
    """Twin deals, one moved with POST …/move (below the ORM), the other with a PATCH of its
    stage_id (through the ORM): open → open, → won, and back (reopened). The answers, the
    events, the stage history and the scores are the same but for the deals' ids."""
    ws = await make_workspace(client)
    await configure(ws)
    hot = await new_contact(ws, first_name="Hot", status="hot")
    partner = await new_company(ws, name="Partner", kind="partner")
    stages = await stage_ids(ws)
    cursor = await cursor_now(ws)
    try:
        clock.freeze(datetime(2026, 11, 30, 9, tzinfo=UTC))
        twins = [await new_deal(ws, stage="Clarified", contact_ids=[hot["id"]], source="ads",
                                company_id=partner["id"], amount="12000") for _ in range(2)]
        for step, name in enumerate(("Proposal", "Won", "Clarified")):
            clock.freeze(datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(hours=step))
            plain = await ws.post(f"/api/v1/deals/{twins[0]['id']}/move",
                                  json={"stage_id": stages[name]})
            patched = await ws.patch(f"/api/v1/deals/{twins[1]['id']}",
                                     json={"stage_id": stages[name]})
            assert plain.status_code == patched.status_code == 200, (plain.text, patched.text)
            assert plain.headers["etag"] == patched.headers["etag"] == f'"{step + 2}"'
            assert _same_shape(plain.json()) == _same_shape(patched.json()), name
    finally:
        clock.freeze(None)
    body = plain.json()
    assert body["status"] == "open" and body["score"]["points"] == 75
    assert rule_ids(body["score"]) == ["big-order", "hot-customer", "from-ads", "partner"]
    events = (await ws.get("/api/v1/events", params={"after": cursor, "limit": 100})).json()
    ours = [e for e in events["data"] if e["entity_id"] == twins[0]["id"]]
    theirs = [e for e in events["data"] if e["entity_id"] == twins[1]["id"]]
    assert [e["type"] for e in ours] == [
        "deal.created", "deal.stage_changed", "deal.stage_changed", "deal.won", "deal.stage_changed",
        "deal.reopened"]
    ids = (twins[0]["id"], twins[1]["id"])
    assert [_same_shape(e, *ids) for e in ours] == [_same_shape(e, *ids) for e in theirs]
    histories = [(await ws.get(f"/api/v1/deals/{t['id']}/stage-history")).json()["data"]
                 for t in twins]
    assert len(histories[0]) == 4
    assert [_same_shape(h) for h in histories[0]] == [_same_shape(h) for h in histories[1]]


async def test_time_in_stage_rules_are_rescored_by_the_sweep(client: httpx.AsyncClient,
                                                             app: Any) -> None:
    """Time passing is an input when a rule reads deal.days_in_stage: the sweep re-scores the
    deals that just reached a day the rules care about, and no others."""
    ws = await make_workspace(client)
    workspace_id = uuid.UUID(ws.id)
    sessions = app.state.resources.sessions
    start = datetime.now(UTC)
    clock.freeze(start)
    try:
        await configure(ws, [{"id": "stuck", "name": "Stuck in stage", "points": -40,
                              "conditions": [{"field": "deal.days_in_stage", "op": "gt",
                                              "value": 14}]}], thresholds={"A": 10, "B": 0,
                                                                           "C": -10})
        deal = await new_deal(ws, amount="1000")
        assert deal["score"]["class"] == "B"
        cursor = await cursor_now(ws)
        for moment, expected in [(start + timedelta(days=14, hours=23), 0),
                                 (start + timedelta(days=15, minutes=1), 1),
                                 (start + timedelta(days=15, minutes=2), 0)]:
            clock.freeze(moment)
            async with unit_of_work(sessions, workspace_id) as session:
                assert await scoring.rescore_aged_deals(session, workspace_id,
                                                        moment) == expected, moment
    finally:
        clock.freeze(None)
    score = (await deal_of(ws, deal["id"]))["score"]
    assert score["class"] == "D" and score["points"] == -40
    assert score["explanation"][0]["conditions"][0]["actual"] == 15
    events = await events_after(ws, cursor, expect=1, types="deal.updated")
    assert [(e["entity_id"], e["actor"]) for e in events] == [(deal["id"], "system")]


async def test_deal_edits_rescore_with_the_new_primary_contact_and_currency(
        client: httpx.AsyncClient) -> None:
    ws = await make_workspace(client)
    await configure(ws)
    hot = await new_contact(ws, first_name="Hot", status="hot")
    cold = await new_contact(ws, first_name="Cold", status="cold")
    deal = await new_deal(ws, amount="20000", contact_ids=[cold["id"], hot["id"]])
    assert rule_ids(deal["score"]) == ["big-order"]
    response = await ws.patch(f"/api/v1/deals/{deal['id']}",
                              json={"contact_ids": [hot["id"], cold["id"]]})
    assert response.status_code == 200, response.text
    score = response.json()["score"]
    assert rule_ids(score) == ["big-order", "hot-customer"] and score["class"] == "A"
    assert score["max_expected_amount"] == "14400.00"
    # A maximum in another currency means nothing: it restarts with the new one.
    response = await ws.patch(f"/api/v1/deals/{deal['id']}",
                              json={"currency": "JPY", "amount": "100000"})
    assert response.status_code == 200, response.text
    score = response.json()["score"]
    assert score["expected_amount"] == "72000" and score["max_expected_amount"] == "72000"
    assert score["drop_from_max"] == "0"
