"""Deal scoring over GraphQL: the configuration, the manual adjustment and the preview, with
the same results as REST."""

from __future__ import annotations

from typing import Any

from tests.api.graphql.helpers import ERRORS, mutate, ok
from tests.api.rest.conftest import act_as, new_contact, new_user
from tests.conftest import Workspace, make_workspace

CONFIG_FIELDS = """
  rules { id name points enabled conditions { field op value } }
  thresholds { A B C } classFactors { A B C D } version updatedBy
"""
SCORE_FIELDS = """
  dealId version class points probability expectedAmount maxExpectedAmount dropFromMax
  currency adjustment adjustedBy adjustedAt explanation
"""
GET_CONFIG = f"query {{ dealScoring {{ {CONFIG_FIELDS} }} }}"
UPDATE_CONFIG = f"""
mutation($input: DealScoringInput!, $version: Int) {{
  updateDealScoring(input: $input, version: $version) {{
    {ERRORS} ... on DealScoringConfig {{ {CONFIG_FIELDS} rescoredDeals }}
  }}
}}
"""
ADJUST = f"""
mutation($dealId: ID!, $adjustment: Int!, $note: String, $version: Int) {{
  adjustDealScore(dealId: $dealId, adjustment: $adjustment, note: $note, version: $version) {{
    {ERRORS} ... on DealScore {{ {SCORE_FIELDS} }}
  }}
}}
"""
PREVIEW = f"""
mutation($dealId: ID!, $input: DealScoringInput) {{
  previewDealScore(dealId: $dealId, input: $input) {{
    {ERRORS} ... on DealScorePreview {{ score {{ {SCORE_FIELDS} }} current {{ class points }} }}
  }}
}}
"""
DEAL_SCORE = f"query($dealId: ID!) {{ dealScore(dealId: $dealId) {{ {SCORE_FIELDS} }} }}"
FIELDS = "query { dealScoringFields { field kind ops } }"

HOT_RULE = {"id": "hot", "name": "Hot customer", "points": 40,
            "conditions": [{"field": "contact.status", "op": "eq", "value": "hot"}]}
BIG_RULE = {"id": "big", "name": "Big order", "points": 25,
            "conditions": [{"field": "deal.amount", "op": "gte", "value": "10000"}]}
THRESHOLDS = {"A": 60, "B": 30, "C": 10}


async def new_deal(ws: Workspace, **fields: Any) -> dict[str, Any]:
    pipeline = (await ws.get("/api/v1/pipelines")).json()["data"][0]
    stage = next(s for s in pipeline["stages"] if s["name"] == "Proposal")
    response = await ws.post("/api/v1/deals", json={"title": "Balcony", "currency": "EUR",
                                                    "stage_id": stage["id"], **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_configuration_round_trip_matches_rest(ws: Workspace) -> None:
    initial = ok(await ws.gql(GET_CONFIG))["dealScoring"]
    assert initial["version"] == 0 and initial["rules"] == []
    assert initial["thresholds"] == {"A": 50, "B": 0, "C": -50}
    contact = await new_contact(ws, first_name="Olga", status="hot")
    deal = await new_deal(ws, amount="20000", contact_ids=[contact["id"]])
    result = await mutate(ws, UPDATE_CONFIG, "updateDealScoring", version=0, input={
        "rules": [HOT_RULE, BIG_RULE], "thresholds": THRESHOLDS})
    assert result["__typename"] == "DealScoringConfig", result
    assert result["version"] == 1 and result["rescoredDeals"] == 1
    assert result["rules"][0] == {**HOT_RULE, "enabled": True}
    assert result["classFactors"] == {"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.5}
    rest = (await ws.get("/api/v1/deal-scoring")).json()
    assert rest["version"] == 1
    assert rest["rules"] == [{**r, "enabled": True} for r in (HOT_RULE, BIG_RULE)]
    score = ok(await ws.gql(DEAL_SCORE, {"dealId": deal["id"]}))["dealScore"]
    assert score["class"] == "A" and score["points"] == 65 and score["probability"] == 72
    assert score["expectedAmount"] == "14400.00"
    rest_score = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["score"]
    assert score["explanation"] == rest_score["explanation"]
    assert [e["rule_id"] for e in score["explanation"] if e["kind"] == "rule"] == ["hot", "big"]
    stale = await mutate(ws, UPDATE_CONFIG, "updateDealScoring", version=0,
                         input={"rules": []})
    assert stale["__typename"] == "PreconditionFailedError" and stale["currentVersion"] == 1


async def test_configuration_errors_point_into_the_input(ws: Workspace) -> None:
    result = await mutate(ws, UPDATE_CONFIG, "updateDealScoring", input={"rules": [
        {**HOT_RULE, "conditions": [{"field": "contact.mood", "op": "eq", "value": "x"}]}]})
    assert result["__typename"] == "ValidationError"
    assert result["errors"][0]["loc"] == ["input", "rules", "0", "conditions", "0", "field"]
    result = await mutate(ws, UPDATE_CONFIG, "updateDealScoring", input={
        "rules": [], "thresholds": {"A": 1, "B": 2, "C": 3}})
    assert result["__typename"] == "ValidationError"
    assert result["errors"][0]["loc"] == ["input", "thresholds"]
    result = await mutate(ws, UPDATE_CONFIG, "updateDealScoring", input={"rules": [
        {**BIG_RULE, "conditions": [{"field": "deal.amount", "op": "near", "value": 1}]}]})
    assert result["errors"][0]["loc"] == ["input", "rules", "0", "conditions", "0", "op"]
    assert ok(await ws.gql(GET_CONFIG))["dealScoring"]["version"] == 0


async def test_adjustment_matches_rest_and_records_who(ws: Workspace) -> None:
    manager = await new_user(ws, "manager")
    head = await act_as(ws, manager)
    deal = await new_deal(ws, amount="1000")  # 0 points: class B by default
    result = await mutate(head, ADJUST, "adjustDealScore", dealId=deal["id"], adjustment=-1,
                          note="customer went quiet")
    assert result["__typename"] == "DealScore", result
    assert result["class"] == "C" and result["probability"] == 48
    assert result["adjustment"] == -1 and result["adjustedBy"] == f"user:{manager['id']}"
    assert result["version"] == deal["version"] + 1
    entry = next(e for e in result["explanation"] if e["kind"] == "adjustment")
    assert entry["note"] == "customer went quiet"
    rest = (await ws.get(f"/api/v1/deals/{deal['id']}/score")).json()
    assert rest["class"] == "C" and rest["adjusted_by"] == f"user:{manager['id']}"
    assert rest["version"] == result["version"]

    stale = await mutate(head, ADJUST, "adjustDealScore", dealId=deal["id"], adjustment=1,
                         version=1)
    assert stale["__typename"] == "PreconditionFailedError"
    bad = await mutate(head, ADJUST, "adjustDealScore", dealId=deal["id"], adjustment=3)
    assert bad["__typename"] == "ValidationError" and bad["errors"][0]["loc"] == ["adjustment"]

    agent = await act_as(ws, await new_user(ws, "agent"))
    refused = await mutate(agent, ADJUST, "adjustDealScore", dealId=deal["id"], adjustment=1)
    assert refused["__typename"] == "ForbiddenError"
    refused = await mutate(agent, UPDATE_CONFIG, "updateDealScoring", input={"rules": []})
    assert refused["__typename"] == "ForbiddenError"

    other = await make_workspace(ws.client, name="Elsewhere")
    missing = await mutate(other, ADJUST, "adjustDealScore", dealId=deal["id"], adjustment=1)
    assert missing["__typename"] == "NotFoundError"
    assert ok(await other.gql(DEAL_SCORE, {"dealId": deal["id"]}))["dealScore"] is None


async def test_preview_writes_nothing(ws: Workspace) -> None:
    deal = await new_deal(ws, amount="20000")
    result = await mutate(ws, PREVIEW, "previewDealScore", dealId=deal["id"],
                          input={"rules": [BIG_RULE], "thresholds": THRESHOLDS})
    assert result["__typename"] == "DealScorePreview", result
    assert result["score"]["points"] == 25 and result["score"]["class"] == "C"
    assert result["score"]["probability"] == 48
    assert result["current"] == {"class": "B", "points": 0}
    after = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert after["score"] == deal["score"] and after["version"] == deal["version"]
    fields = ok(await ws.gql(FIELDS))["dealScoringFields"]
    assert {"field": "deal.tags", "kind": "array",
            "ops": ["in", "nin", "has", "exists", "not_exists", "contains"]} in fields
