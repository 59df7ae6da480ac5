"""S8. Sales funnel and deal scoring.

A window company opens a second funnel for corporate clients, next to its default "Sales".
Irina, the administrator, sets it up with its own stages and win probabilities, the company's
lost reasons, and the scoring rules: +30 when the customer is hot, +20 for an order of 1000 or
more, −10 for a cold call. Oleg, an agent in Elena's team, works three deals whose amounts come
from line items (windows × quantity − discount, plus tax), computed exactly in decimals. Each
deal shows its class, points, probability and expected amount, with an explanation a person can
read. A customer warming up re-scores his deal; Elena, the head, lifts one deal by a class
(+1) and lowers another (−1), and the system records that she did; an order that shrinks shows
how much value is at risk (the drop from its maximum); one deal is won, one is lost for a
reason from the company's list. Stage history gives the time spent in each stage, the board
the counts, totals and weighted totals per stage, and GraphQL reads the same scores.

Everything goes through the public API on a server clock stepped through one working week."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.graphql.helpers import ok as gql_ok
from tests.api.rest.conftest import act_as, assert_problem, new_user
from tests.conftest import Workspace

T0 = datetime(2027, 4, 5, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow

RULES = [
    {"id": "hot", "name": "Hot customer", "points": 30,
     "conditions": [{"field": "contact.status", "op": "eq", "value": "hot"}]},
    {"id": "big", "name": "Big order", "points": 20,
     "conditions": [{"field": "deal.amount", "op": "gte", "value": 1000}]},
    {"id": "cold-call", "name": "Cold call", "points": -10,
     "conditions": [{"field": "deal.source", "op": "eq", "value": "cold_call"}]},
]
THRESHOLDS = {"A": 50, "B": 20, "C": 0}
LOST_REASONS = ["price", "competitor", "budget_cut", "no_answer"]

SCORE = """
  dealId version class points probability expectedAmount maxExpectedAmount dropFromMax
  currency adjustment adjustedBy adjustedAt explanation
"""
DEAL_SCORE = f"query($id: ID!) {{ dealScore(dealId: $id) {{ {SCORE} }} }}"
ADJUST = f"""
mutation($id: ID!, $adjustment: Int!, $note: String) {{
  adjustDealScore(dealId: $id, adjustment: $adjustment, note: $note) {{
    __typename
    ... on DealScore {{ {SCORE} }}
    ... on ForbiddenError {{ message }}
  }}
}}
"""
DEAL = f"""
query($id: ID!) {{
  deal(id: $id) {{
    title status amount currency closedAt lostReason
    lineItems {{ name quantity unitPrice discount taxRate total }}
    score {{ {SCORE} }}
    stage {{ name kind probability }} pipeline {{ name }}
    stageHistory {{ stageName enteredAt leftAt durationSeconds enteredBy }}
  }}
}}
"""
BOARD = """
query($id: ID!) {
  board(pipelineId: $id) {
    currency
    stages { stage { name } count totalAmount weightedAmount deals { title } }
  }
}
"""


async def body(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def texts(score: dict[str, Any]) -> list[str]:
    """The explanation as a person reads it."""
    return [entry["text"] for entry in score["explanation"]]


def rules_matched(score: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["rule_id"], e["points"]) for e in score["explanation"] if e["kind"] == "rule"]


def summary(score: dict[str, Any]) -> tuple[Any, ...]:
    return (score["class"], score["points"], score["probability"], score["expected_amount"],
            score["max_expected_amount"], score["drop_from_max"])


async def board(who: Workspace, pipeline_id: str) -> dict[str, tuple[int, str, str]]:
    """Per stage: how many deals, their total and their weighted total."""
    columns = (await body(await who.get(f"/api/v1/pipelines/{pipeline_id}/board")))["stages"]
    return {c["stage"]["name"]: (c["count"], c["total_amount"], c["weighted_amount"])
            for c in columns}


async def test_s8_a_second_funnel_with_scored_deals(
        ws: Workspace, frozen: Callable[[datetime | None], None]) -> None:
    irina = await new_user(ws, "admin", "Irina Admin")
    elena = await new_user(ws, "manager", "Elena Sokolova")
    oleg = await new_user(ws, "agent", "Oleg Ivanov")
    boris = await new_user(ws, "agent", "Boris Petrov")
    await body(await ws.post("/api/v1/teams", json={
        "name": "Corporate sales", "head_id": elena["id"],
        "member_ids": [oleg["id"], boris["id"]]}), 201)
    as_irina, as_elena, as_oleg, as_boris = (
        await act_as(ws, irina), await act_as(ws, elena), await act_as(ws, oleg),
        await act_as(ws, boris))

    def at(hours: float) -> datetime:
        moment = T0 + timedelta(hours=hours)
        frozen(moment)
        return moment

    # --- Step 1. Irina sets up the corporate funnel, its lost reasons and the scoring rules.
    at(0)
    settings = await body(await as_irina.patch("/api/v1/workspaces/current", json={
        "settings": {"lost_reasons": LOST_REASONS}}))
    assert settings["settings"]["lost_reasons"] == LOST_REASONS
    corporate = await body(await as_irina.post("/api/v1/pipelines", json={
        "name": "Corporate", "stages": [
            {"name": "Lead", "probability": 10},
            {"name": "Qualified", "probability": 30},
            {"name": "Proposal", "probability": 50},
            {"name": "Negotiation", "probability": 70},
            {"name": "Won", "kind": "won"}, {"name": "Lost", "kind": "lost"}]}), 201)
    assert [(s["name"], s["position"], s["kind"], s["probability"])
            for s in corporate["stages"]] == [
        ("Lead", 0, "open", 10), ("Qualified", 1, "open", 30), ("Proposal", 2, "open", 50),
        ("Negotiation", 3, "open", 70), ("Won", 4, "won", 100), ("Lost", 5, "lost", 0)]
    assert corporate["is_default"] is False
    pipelines = (await body(await as_oleg.get("/api/v1/pipelines")))["data"]
    assert [(p["name"], p["is_default"]) for p in pipelines] == [("Sales", True),
                                                                 ("Corporate", False)]
    stage = {s["name"]: s["id"] for s in corporate["stages"]}

    assert_problem(await as_oleg.client.put("/api/v1/deal-scoring", headers=as_oleg.auth,
                                            json={"rules": RULES}), 403)
    config = await body(await as_irina.client.put(
        "/api/v1/deal-scoring", json={"rules": RULES, "thresholds": THRESHOLDS},
        headers={**as_irina.auth, "If-Match": '"0"'}))
    assert (config["version"], config["rescored_deals"]) == (1, 0)
    assert config["updated_by"] == f"user:{irina['id']}"
    assert config["thresholds"] == THRESHOLDS
    assert config["class_factors"] == {"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.5}
    assert [r["enabled"] for r in config["rules"]] == [True, True, True]

    # --- Step 2. Oleg's customers and three deals in the corporate funnel.
    olga = await body(await as_oleg.post("/api/v1/contacts", json={
        "full_name": "Olga Kuznetsova", "status": "hot", "phones": ["+7 495 700-10-20"]}), 201)
    ivan = await body(await as_oleg.post("/api/v1/contacts", json={
        "full_name": "Ivan Belov", "status": "warm", "phones": ["+7 812 300-40-50"]}), 201)

    # Office glazing: 6 windows at 199.99 − 50 off, +20 % VAT; installation 2 × 150.
    office = await body(await as_oleg.post("/api/v1/deals", json={
        "title": "Office glazing", "pipeline_id": corporate["id"],
        "stage_id": stage["Proposal"], "contact_ids": [olga["id"]], "source": "website",
        "line_items": [
            {"name": "PVC window 1200×1400", "sku": "WIN-1214", "quantity": "6",
             "unit_price": "199.99", "discount": "50", "tax_rate": "20"},
            {"name": "Installation", "quantity": "2", "unit_price": "150"}]}), 201)
    assert [li["total"] for li in office["line_items"]] == ["1379.93", "300.00"]
    assert (office["amount"], office["currency"]) == ("1679.93", "USD")
    assert office["owner_id"] == oleg["id"] and office["pipeline_id"] == corporate["id"]
    # 30 + 20 = 50 points: class A; Proposal 50 % × 1.2 = 60 %; 1679.93 × 60 % = 1007.958.
    assert summary(office["score"]) == ("A", 50, 60, "1007.96", "1007.96", "0.00")
    assert rules_matched(office["score"]) == [("hot", 30), ("big", 20)]
    assert texts(office["score"]) == [
        "Rule “Hot customer” +30 points: contact status is “hot” (it is “hot”).",
        "Rule “Big order” +20 points: deal amount ≥ 1000 (it is 1679.93).",
        "50 points from 2 matching rules: class A (A from 50, B from 20, C from 0, D below).",
        "Stage “Proposal” wins 50% of deals.",
        "Class A weighs the stage probability ×1.2: 50% → 60%.",
        "Expected amount 1679.93 USD × 60% = 1007.96 USD.",
    ]

    # Warehouse doors, a cold call: 2 doors at 440.50 − 0.99 off, and 3 handles at 3.65, each
    # line +10 % tax. 10.95 × 1.1 = 12.045 exactly: rounded half-up to 12.05 (in floats, or
    # rounding half to even, it would be 12.04).
    doors = await body(await as_oleg.post("/api/v1/deals", json={
        "title": "Warehouse doors", "pipeline_id": corporate["id"],
        "stage_id": stage["Qualified"], "contact_ids": [ivan["id"]], "source": "cold_call",
        "line_items": [
            {"name": "Steel door", "quantity": "2", "unit_price": "440.50", "discount": "0.99",
             "tax_rate": "10"},
            {"name": "Door handle", "quantity": "3", "unit_price": "3.65", "tax_rate": "10"}]}),
        201)
    assert [li["total"] for li in doors["line_items"]] == ["968.01", "12.05"]
    assert doors["amount"] == "980.06"
    # −10 points: class D; Qualified 30 % × 0.5 = 15 %; 980.06 × 15 % = 147.009.
    assert summary(doors["score"]) == ("D", -10, 15, "147.01", "147.01", "0.00")
    assert rules_matched(doors["score"]) == [("cold-call", -10)]

    # Cottage windows, amount typed in, a fresh lead.
    cottage = await body(await as_oleg.post("/api/v1/deals", json={
        "title": "Cottage windows", "pipeline_id": corporate["id"], "stage_id": stage["Lead"],
        "contact_ids": [olga["id"]], "amount": "2500"}), 201)
    assert summary(cottage["score"]) == ("A", 50, 12, "300.00", "300.00", "0.00")

    # --- Step 3. Two hours later Ivan is hot: his deal is re-scored at once.
    at(2)
    await body(await as_oleg.patch(f"/api/v1/contacts/{ivan['id']}", json={"status": "hot"}))
    doors_now = await body(await as_oleg.get(f"/api/v1/deals/{doors['id']}"))
    # 30 − 10 = 20 points: class B; 30 % × 1.0; 980.06 × 30 % = 294.018.
    assert summary(doors_now["score"]) == ("B", 20, 30, "294.02", "294.02", "0.00")
    assert rules_matched(doors_now["score"]) == [("hot", 30), ("cold-call", -10)]
    assert doors_now["version"] == doors["version"], "a derived score is not an edit"
    rescored = [e for e in (await body(await ws.get(
        f"/api/v1/deals/{doors['id']}/history")))["data"] if e["type"] == "deal.updated"]
    assert [(e["before"]["score_class"], e["after"]["score_class"]) for e in rescored] == [
        ("D", "B")]

    # --- Step 4. Tuesday: the cottage lead moves to Proposal. The board, as Elena sees it.
    at(24)
    moved = await body(await as_oleg.post(f"/api/v1/deals/{cottage['id']}/move",
                                          json={"stage_id": stage["Proposal"]}))
    assert summary(moved["score"]) == ("A", 50, 60, "1500.00", "1500.00", "0.00")
    assert await board(as_elena, corporate["id"]) == {
        "Lead": (0, "0.00", "0.00"),
        "Qualified": (1, "980.06", "294.02"),
        "Proposal": (2, "4179.93", "2507.96"),  # 1007.958 + 1500.00
        "Negotiation": (0, "0.00", "0.00"),
        "Won": (0, "0.00", "0.00"),
        "Lost": (0, "0.00", "0.00"),
    }
    # Oleg's board is the same (they are his deals); Boris, another agent, sees none of them.
    assert await board(as_oleg, corporate["id"]) == await board(as_elena, corporate["id"])
    assert {name: column[0] for name, column in (await board(as_boris, corporate[
        "id"])).items()} == dict.fromkeys(stage, 0)

    # --- Step 5. Elena overrules the score: the warehouse deal is one class better.
    adjusted_at = at(25)
    url = f"/api/v1/deals/{doors['id']}/score-adjustment"
    assert_problem(await as_oleg.post(url, json={"adjustment": 1}), 403)
    lifted = await body(await as_elena.post(url, json={
        "adjustment": 1, "note": "signed a letter of intent"}))
    # B → A: 30 % × 1.2 = 36 %; 980.06 × 36 % = 352.8216.
    assert summary(lifted) == ("A", 20, 36, "352.82", "352.82", "0.00")
    assert (lifted["adjustment"], lifted["adjusted_by"], lifted["adjusted_at"]) == (
        1, f"user:{elena['id']}", adjusted_at.isoformat().replace("+00:00", "Z"))
    assert lifted["version"] == doors["version"] + 1
    assert (f"Class manually raised one step from B to A by user:{elena['id']} on 2027-04-06: "
            "“signed a letter of intent”.") in texts(lifted)
    history = (await body(await ws.get(f"/api/v1/deals/{doors['id']}/history")))["data"]
    assert (history[-1]["type"], history[-1]["actor"]) == ("deal.updated",
                                                           f"user:{elena['id']}")
    assert (history[-1]["before"]["score_adjustment"],
            history[-1]["after"]["score_adjustment"]) == (0, 1)
    told = await body(await as_oleg.get(f"/api/v1/deals/{doors['id']}/timeline"))
    assert [(e["kind"], e["summary"], e["actor_name"]) for e in told["data"]] == [
        ("change", "Score adjustment: 0 → 1", "Elena Sokolova"),
        ("created", "Deal created", "Oleg Ivanov")]

    # --- Step 6. Wednesday: Olga halves the office order. The drop from the maximum shows.
    at(48)
    shrunk_lines = [
        {"name": "PVC window 1200×1400", "sku": "WIN-1214", "quantity": "3",
         "unit_price": "199.99", "discount": "50", "tax_rate": "20"},
        {"name": "Installation", "quantity": "2", "unit_price": "150"}]
    conflict = await as_oleg.patch(f"/api/v1/deals/{office['id']}",
                                   json={"line_items": shrunk_lines, "amount": "1000"})
    assert assert_problem(conflict, 422)["errors"][0]["loc"] == ["body", "amount"]
    shrunk = await body(await as_oleg.patch(f"/api/v1/deals/{office['id']}",
                                            json={"line_items": shrunk_lines}))
    assert ([li["total"] for li in shrunk["line_items"]], shrunk["amount"]) == (
        ["659.96", "300.00"], "959.96")
    # No longer a big order: 30 points, class B, 50 %; 959.96 × 50 % = 479.98.
    assert summary(shrunk["score"]) == ("B", 30, 50, "479.98", "1007.96", "527.98")
    assert rules_matched(shrunk["score"]) == [("hot", 30)]
    assert texts(shrunk["score"])[-1] == (
        "Down 527.98 USD from its highest expected amount, 1007.96 USD.")
    # Elena, from her dashboard (GraphQL), lowers it one class: the budget is frozen.
    # B → C: 50 % × 0.8 = 40 %; 959.96 × 40 % = 383.984; 1007.96 − 383.98 at risk.
    refused = gql_ok(await as_oleg.gql(ADJUST, {"id": office["id"], "adjustment": -1}))
    assert refused["adjustDealScore"] == {
        "__typename": "ForbiddenError",
        "message": "only managers, admins and owners may adjust a deal's score"}
    lowered = gql_ok(await as_elena.gql(ADJUST, {
        "id": office["id"], "adjustment": -1, "note": "budget frozen"}))["adjustDealScore"]
    assert lowered["__typename"] == "DealScore", lowered
    assert (lowered["class"], lowered["points"], lowered["probability"],
            lowered["expectedAmount"], lowered["maxExpectedAmount"], lowered["dropFromMax"],
            lowered["adjustment"], lowered["adjustedBy"]) == (
        "C", 30, 40, "383.98", "1007.96", "623.98", -1, f"user:{elena['id']}")
    assert (f"Class manually lowered one step from B to C by user:{elena['id']} on "
            "2027-04-07: “budget frozen”.") in texts(lowered)
    rest_office = await body(await as_oleg.get(f"/api/v1/deals/{office['id']}/score"))
    assert rest_office["explanation"] == lowered["explanation"]

    # --- Step 7. The cottage deal is negotiated and won.
    at(51)
    await body(await as_oleg.post(f"/api/v1/deals/{cottage['id']}/move",
                                  json={"stage_id": stage["Negotiation"]}))
    won_at = at(56)
    won = await body(await as_oleg.post(f"/api/v1/deals/{cottage['id']}/move",
                                        json={"stage_id": stage["Won"]}))
    assert (won["status"], won["closed_at"]) == ("won", won_at.isoformat().replace("+00:00",
                                                                                   "Z"))
    assert summary(won["score"])[2:] == (100, "2500.00", "2500.00", "0.00")
    assert "The deal is won: probability 100%." in texts(won["score"])

    # --- Step 8. Thursday: the office deal is lost — only for a reason from the list.
    lost_at = at(72)
    move_url = f"/api/v1/deals/{office['id']}/move"
    no_reason = await as_oleg.post(move_url, json={"stage_id": stage["Lost"]})
    assert assert_problem(no_reason, 422)["detail"] == (
        "a lost deal needs a lost reason, one of: price, competitor, budget_cut, no_answer")
    assert_problem(await as_oleg.post(move_url, json={"stage_id": stage["Lost"],
                                                      "lost_reason": "weather"}), 422)
    lost = await body(await as_oleg.post(move_url, json={"stage_id": stage["Lost"],
                                                         "lost_reason": "budget_cut"}))
    assert (lost["status"], lost["lost_reason"], lost["closed_at"]) == (
        "lost", "budget_cut", lost_at.isoformat().replace("+00:00", "Z"))
    # Nothing is expected any more: the whole maximum is lost.
    assert summary(lost["score"])[2:] == (0, "0.00", "1007.96", "1007.96")

    # --- Step 9. An hour later: the stage history with the time spent in each stage.
    at(73)
    history = (await body(await as_elena.get(
        f"/api/v1/deals/{cottage['id']}/stage-history")))["data"]
    assert [(h["stage_name"], h["duration_seconds"], h["entered_by"]) for h in history] == [
        ("Lead", 24 * 3600, f"user:{oleg['id']}"),
        ("Proposal", 27 * 3600, f"user:{oleg['id']}"),
        ("Negotiation", 5 * 3600, f"user:{oleg['id']}"),
        ("Won", 17 * 3600, f"user:{oleg['id']}"),  # still there, counted until now
    ]
    assert [h["left_at"] is None for h in history] == [False, False, False, True]
    assert [h["from_stage_id"] for h in history] == [
        None, stage["Lead"], stage["Proposal"], stage["Negotiation"]]
    office_history = (await body(await as_elena.get(
        f"/api/v1/deals/{office['id']}/stage-history")))["data"]
    assert [(h["stage_name"], h["stage_kind"], h["duration_seconds"])
            for h in office_history] == [("Proposal", "open", 72 * 3600),
                                         ("Lost", "lost", 3600)]
    assert [e["type"] for e in (await body(await ws.get(
        f"/api/v1/deals/{cottage['id']}/history")))["data"]].count("deal.won") == 1

    # Qualified deals win more often than Irina thought: 30 % → 40 %. The open deal in that
    # stage is re-scored at once (A: 40 % × 1.2 = 48 %; 980.06 × 48 % = 470.4288), and since
    # the score is derived, its version (and any ETag a client holds) stays.
    tuned = await body(await as_irina.patch(
        f"/api/v1/pipelines/{corporate['id']}/stages/{stage['Qualified']}",
        json={"probability": 40}))
    assert [s["probability"] for s in tuned["stages"]] == [10, 40, 50, 70, 100, 0]
    retuned = await body(await as_oleg.get(f"/api/v1/deals/{doors['id']}"))
    assert summary(retuned["score"]) == ("A", 20, 48, "470.43", "470.43", "0.00")
    assert retuned["version"] == lifted["version"]
    assert retuned["score"]["adjustment"] == 1, "the head's adjustment stays"

    # The board at the end of the week.
    assert await board(as_elena, corporate["id"]) == {
        "Lead": (0, "0.00", "0.00"),
        "Qualified": (1, "980.06", "470.43"),
        "Proposal": (0, "0.00", "0.00"),
        "Negotiation": (0, "0.00", "0.00"),
        "Won": (1, "2500.00", "2500.00"),
        "Lost": (1, "959.96", "0.00"),
    }

    # --- Step 10. GraphQL reads the same scores and the same history.
    rest_doors = await body(await as_elena.get(f"/api/v1/deals/{doors['id']}/score"))
    gql_doors = gql_ok(await as_elena.gql(DEAL_SCORE, {"id": doors["id"]}))["dealScore"]
    assert (gql_doors["class"], gql_doors["points"], gql_doors["probability"],
            gql_doors["expectedAmount"], gql_doors["maxExpectedAmount"],
            gql_doors["dropFromMax"], gql_doors["currency"]) == (
        "A", 20, 48, "470.43", "470.43", "0.00", "USD")
    assert (gql_doors["adjustment"], gql_doors["adjustedBy"]) == (1, f"user:{elena['id']}")
    assert gql_doors["explanation"] == rest_doors["explanation"]
    assert gql_doors["version"] == rest_doors["version"]

    gql_office = gql_ok(await as_oleg.gql(DEAL, {"id": office["id"]}))["deal"]
    assert (gql_office["status"], gql_office["lostReason"], gql_office["amount"]) == (
        "lost", "budget_cut", "959.96")
    assert gql_office["lineItems"][0] == {
        "name": "PVC window 1200×1400", "quantity": "3", "unitPrice": "199.99",
        "discount": "50", "taxRate": "20", "total": "659.96"}
    assert (gql_office["score"]["maxExpectedAmount"], gql_office["score"]["dropFromMax"]) == (
        "1007.96", "1007.96")
    assert gql_office["score"]["explanation"] == lost["score"]["explanation"]
    assert (gql_office["stage"], gql_office["pipeline"]) == (
        {"name": "Lost", "kind": "lost", "probability": 0}, {"name": "Corporate"})
    gql_cottage = gql_ok(await as_oleg.gql(DEAL, {"id": cottage["id"]}))["deal"]
    assert [(h["stageName"], h["durationSeconds"]) for h in gql_cottage["stageHistory"]] == [
        ("Lead", 86400), ("Proposal", 97200), ("Negotiation", 18000), ("Won", 61200)]

    columns = gql_ok(await as_elena.gql(BOARD, {"id": corporate["id"]}))["board"]["stages"]
    assert [(c["stage"]["name"], c["count"], c["totalAmount"], c["weightedAmount"],
             [d["title"] for d in c["deals"]]) for c in columns] == [
        ("Lead", 0, "0.00", "0.00", []),
        ("Qualified", 1, "980.06", "470.43", ["Warehouse doors"]),
        ("Proposal", 0, "0.00", "0.00", []),
        ("Negotiation", 0, "0.00", "0.00", []),
        ("Won", 1, "2500.00", "2500.00", ["Cottage windows"]),
        ("Lost", 1, "959.96", "0.00", ["Office glazing"]),
    ]
