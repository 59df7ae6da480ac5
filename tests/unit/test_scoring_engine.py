"""The pure scoring engine: operators, classes, factors, clamping, adjustment, explanation."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from app.domain.deals import scoring_engine as engine
from app.domain.deals import scoring_schemas as schemas
from app.domain.deals.scoring_engine import Adjustment, Condition, Config, Rule, Stage

STAGE_ID = uuid.uuid4()
PROPOSAL = Stage(id=STAGE_ID, name="Proposal", probability=60)


def deal(**fields: Any) -> SimpleNamespace:
    base = {"amount": Decimal("15000.00"), "currency": "EUR", "source": "Website",
            "tags": ["windows", "urgent"], "stage_id": STAGE_ID, "pipeline_id": uuid.uuid4(),
            "owner_id": None, "expected_close_date": date(2026, 3, 31), "line_items": [],
            "custom_fields": {"floors": 3, "budget": {"amount": "900.50", "currency": "EUR"},
                              "visit": "2026-02-01", "extras": ["sill", "net"]}}
    return SimpleNamespace(**{**base, **fields})


def facts(**fields: Any) -> dict[str, Any]:
    contact = SimpleNamespace(status="hot", kind="customer", source=None, tags=["vip"],
                              custom_fields={"avg_bill": 120})
    company = SimpleNamespace(kind="partner", tags=[], custom_fields={})
    return engine.facts_for(deal(**fields), contact, company, days_in_stage=4)


def holds(field: str, op: str, value: Any = None, **fields: Any) -> bool:
    f = facts(**fields)
    return engine.holds(Condition(field, op, value), engine.actual_value(f, field))


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("deal.amount", "eq", 15000, True),
    ("deal.amount", "eq", "15000.00", True),
    ("deal.amount", "ne", 15000, False),
    ("deal.amount", "gt", 14999.99, True),
    ("deal.amount", "gt", 15000, False),
    ("deal.amount", "gte", 15000, True),
    ("deal.amount", "lt", 15000, False),
    ("deal.amount", "lte", 15000, True),
    ("deal.amount", "in", [1, 15000], True),
    ("deal.amount", "nin", [1, 15000], False),
    ("deal.source", "eq", "website", True),  # strings compare case-insensitively
    ("deal.source", "ne", "ads", True),
    ("deal.source", "contains", "SITE", True),
    ("deal.source", "in", ["ads", "Website"], True),
    ("deal.source", "nin", ["ads", "call"], True),
    ("deal.tags", "has", "urgent", True),
    ("deal.tags", "has", "vip", False),
    ("deal.tags", "in", ["vip", "windows"], True),  # has any of
    ("deal.tags", "nin", ["vip", "windows"], False),  # has none of
    ("deal.tags", "contains", "wind", True),
    ("deal.expected_close_date", "lt", "2026-04-01", True),
    ("deal.expected_close_date", "gte", "2026-04-01", False),
    ("deal.expected_close_date", "eq", "2026-03-31", True),
    ("deal.days_in_stage", "gte", 4, True),
    ("deal.days_in_stage", "gt", 4, False),
    ("deal.line_items_count", "eq", 0, True),
    ("deal.has_line_items", "eq", False, True),
    ("deal.owner_id", "not_exists", None, True),
    ("deal.owner_id", "exists", None, False),
    ("deal.source", "exists", None, True),
    ("contact.status", "eq", "HOT", True),
    ("contact.tags", "has", "vip", True),
    ("contact.source", "not_exists", None, True),
    ("contact.custom_fields.avg_bill", "gte", 100, True),
    ("company.kind", "in", ["partner", "supplier"], True),
    ("company.tags", "exists", None, False),  # an empty list is not set
    ("deal.custom_fields.floors", "gt", 2, True),
    ("deal.custom_fields.budget", "lt", 1000, True),  # money compares its amount
    ("deal.custom_fields.visit", "lt", "2026-03-01", True),  # ISO dates as dates
    ("deal.custom_fields.extras", "has", "net", True),
    ("deal.custom_fields.missing", "not_exists", None, True),
    ("deal.custom_fields.missing", "eq", 1, False),
])
def test_each_operator(field: str, op: str, value: Any, expected: bool) -> None:
    assert holds(field, op, value) is expected


def test_uuid_fields_compare_as_ids() -> None:
    assert holds("deal.stage_id", "eq", str(STAGE_ID).upper())
    assert holds("deal.stage_id", "in", [str(uuid.uuid4()), str(STAGE_ID)])
    assert not holds("deal.stage_id", "eq", str(uuid.uuid4()))


def test_missing_values_fail_all_but_negations() -> None:
    no_contact = engine.facts_for(deal(), None, None, days_in_stage=0)
    for op, value, expected in [("eq", "hot", False), ("ne", "hot", True),
                                ("in", ["hot"], False), ("nin", ["hot"], True),
                                ("contains", "h", False), ("exists", None, False),
                                ("not_exists", None, True)]:
        actual = engine.actual_value(no_contact, "contact.status")
        assert engine.holds(Condition("contact.status", op, value), actual) is expected, op
    assert engine.actual_value(no_contact, "contact.custom_fields.avg_bill") is None
    assert not holds("deal.amount", "gt", 0, amount=None)


def test_mismatched_types_never_match() -> None:
    assert not holds("deal.source", "gt", 5)
    assert not holds("deal.expected_close_date", "lt", 5)
    assert not holds("deal.amount", "eq", "lots")


def test_class_thresholds() -> None:
    thresholds = {"A": 60, "B": 30, "C": 10}
    assert [engine.class_for(p, thresholds) for p in (75, 60, 59, 30, 10, 9, -5)] == \
        ["A", "A", "B", "B", "C", "D", "D"]


def test_adjustment_shifts_one_class_and_clamps() -> None:
    assert engine.shift_class("B", 1) == "A"
    assert engine.shift_class("B", -1) == "C"
    assert engine.shift_class("A", 1) == "A"
    assert engine.shift_class("D", -1) == "D"
    assert engine.shift_class("C", 0) == "C"


def test_probability_factor_rounds_half_up_and_clamps() -> None:
    assert engine.adjusted_probability(60, 1.2) == 72
    assert engine.adjusted_probability(45, 0.5) == 23  # 22.5 rounds up
    assert engine.adjusted_probability(90, 1.2) == 100  # 108 clamps to 100
    assert engine.adjusted_probability(50, 0) == 0


def test_max_never_decreases() -> None:
    assert engine.next_max(None, Decimal(10)) == Decimal(10)
    assert engine.next_max(Decimal(10), Decimal(4)) == Decimal(10)
    assert engine.next_max(Decimal(10), Decimal(12)) == Decimal(12)
    assert engine.next_max(Decimal(10), None) == Decimal(10)


CONFIG = Config(
    rules=(
        Rule("big", "Big order", (Condition("deal.amount", "gte", 10000),), 40),
        Rule("hot", "Hot customer", (Condition("contact.status", "eq", "hot"),
                                     Condition("contact.tags", "has", "vip")), 25),
        Rule("ads", "From ads", (Condition("deal.source", "eq", "ads"),), 30),
        Rule("off", "Disabled", (Condition("deal.amount", "gt", 0),), 100, enabled=False),
        Rule("slow", "Slow", (Condition("deal.days_in_stage", "gte", 3),), -5),
    ),
    thresholds={"A": 60, "B": 30, "C": 10},
    class_factors={"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.5},
)


NO_ADJUSTMENT = Adjustment()


def run(config: Config = CONFIG, *, status: str = "open", amount: Decimal | None =
        Decimal("15000.00"), adjustment: Adjustment = NO_ADJUSTMENT,
        previous_max: Decimal | None = None) -> engine.Score:
    return engine.score(config, facts(amount=amount), stage=PROPOSAL, status=status,
                        amount=amount, currency="EUR", adjustment=adjustment,
                        previous_max=previous_max)


def test_score_sums_matching_enabled_rules() -> None:
    result = run()
    assert result.points == 40 + 25 - 5
    assert result.computed_class == result.score_class == "A"
    assert result.probability == 72
    assert result.expected_amount == Decimal("10800.00")
    assert result.max_expected_amount == Decimal("10800.00")
    assert engine.matching_rules(CONFIG, facts()) == ["big", "hot", "slow"]


def test_explanation_lists_rules_and_base() -> None:
    explanation = run().explanation
    kinds = [e["kind"] for e in explanation]
    assert kinds == ["rule", "rule", "rule", "class", "stage", "probability", "expected_amount"]
    hot = explanation[1]
    assert hot["rule_id"] == "hot" and hot["rule"] == "Hot customer" and hot["points"] == 25
    assert hot["conditions"] == [
        {"field": "contact.status", "op": "eq", "value": "hot", "actual": "hot"},
        {"field": "contact.tags", "op": "has", "value": "vip", "actual": ["vip"]}]
    assert hot["text"] == ("Rule “Hot customer” +25 points: contact status is “hot” (it is "
                           "“hot”); contact tags has “vip” (it is [“vip”]).")
    assert explanation[0]["conditions"][0]["actual"] == "15000.00"
    assert explanation[2]["text"].startswith("Rule “Slow” -5 points: deal days in stage ≥ 3")
    assert explanation[3]["text"] == ("60 points from 3 matching rules: class A (A from 60, "
                                      "B from 30, C from 10, D below).")
    assert explanation[4]["text"] == "Stage “Proposal” wins 60% of deals."
    assert explanation[5]["text"] == "Class A weighs the stage probability ×1.2: 60% → 72%."
    assert explanation[6]["text"] == "Expected amount 15000.00 EUR × 72% = 10800.00 EUR."
    assert all(isinstance(e["text"], str) for e in explanation)


def test_no_rules_follow_points_with_neutral_defaults() -> None:
    result = run(Config())
    assert result.points == 0 and result.score_class == "B"  # B is neutral by default
    assert result.probability == 60
    assert "(no rule matched)" in result.explanation[0]["text"]


def test_manual_adjustment_shifts_the_class_and_is_explained() -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    down = run(adjustment=Adjustment(-1, by="user:42", at=at, note="budget frozen"))
    assert down.computed_class == "A" and down.score_class == "B"
    assert down.probability == 60  # class B factor 1.0
    entry = next(e for e in down.explanation if e["kind"] == "adjustment")
    assert entry["from_class"] == "A" and entry["class"] == "B" and entry["by"] == "user:42"
    assert entry["text"] == ("Class manually lowered one step from A to B by user:42 on "
                             "2026-03-02: “budget frozen”.")
    up = run(adjustment=Adjustment(1, by="user:42", at=at))
    assert up.score_class == "A"  # clamped
    assert "already the best" in next(e for e in up.explanation
                                      if e["kind"] == "adjustment")["text"]


def test_won_and_lost_override_the_probability() -> None:
    assert run(status="won").probability == 100
    assert run(status="won").expected_amount == Decimal("15000.00")
    lost = run(status="lost", previous_max=Decimal("10800.00"))
    assert lost.probability == 0 and lost.expected_amount == Decimal("0.00")
    assert lost.max_expected_amount == Decimal("10800.00")
    drop = lost.explanation[-1]
    assert drop["kind"] == "drop_from_max" and drop["drop_from_max"] == "10800.00"
    assert drop["text"] == ("Down 10800.00 EUR from its highest expected amount, "
                            "10800.00 EUR.")


def test_no_amount_means_no_expected_amount() -> None:
    result = run(amount=None, previous_max=Decimal("500.00"))
    assert result.expected_amount is None
    assert result.max_expected_amount == Decimal("500.00")
    assert any(e["text"] == "No amount yet, so no expected amount." for e in result.explanation)


def test_expected_amount_uses_the_currency_minor_unit() -> None:
    result = engine.score(Config(), facts(), stage=Stage(STAGE_ID, "Pricing", 33),
                          status="open",
                          amount=Decimal(1001), currency="JPY", adjustment=Adjustment(),
                          previous_max=None)
    assert result.expected_amount == Decimal(330)  # 330.33 rounded to whole yen


@pytest.mark.parametrize(("kind", "op", "value", "error"), [
    ("number", "gte", 10, None),
    ("number", "gte", "12.5", None),
    ("number", "gte", "lots", "must be a number"),
    ("number", "gte", True, "must be a number"),
    ("number", "gte", float("nan"), "must be a number"),
    ("number", "has", 1, "does not apply"),
    ("str", "gt", "a", "does not apply"),
    ("str", "in", [], "non-empty list"),
    ("str", "in", "hot", "non-empty list"),
    ("str", "in", ["hot", 5], "must be a string"),
    ("str", "exists", None, None),
    ("str", "exists", "x", "takes no value"),
    ("uuid", "eq", "not-an-id", "must be an id"),
    ("date", "lt", "2026-13-01", "must be a date"),
    ("datetime", "gt", "2026-01-01T10:00:00", "must have a UTC offset"),
    ("datetime", "gt", "2026-01-01T10:00:00Z", None),
    ("bool", "eq", "yes", "true or false"),
    ("array", "has", "vip", None),
    ("array", "eq", "vip", "does not apply"),
    ("str", "eq", "x" * 201, "at most 200"),
])
def test_value_errors(kind: str, op: str, value: Any, error: str | None) -> None:
    problem = schemas.value_error(kind, op, value)
    if error is None:
        assert problem is None
    else:
        assert problem is not None and error in problem


def test_field_kinds() -> None:
    assert schemas.field_kind("deal.amount") == "number"
    assert schemas.field_kind("deal.nope") is None
    assert schemas.field_kind("deal.custom_fields.floors") is None  # not defined
    assert schemas.field_kind("deal.custom_fields.floors", {"deal": {"floors": "number"}}) \
        == "number"
    assert schemas.field_kind("contact.custom_fields.x", {"contact": {"x": "multiselect"}}) \
        == "array"


def test_stored_config_round_trip_and_uses() -> None:
    config = engine.config_from_dict({
        "rules": [{"id": "r", "name": "R", "points": 5, "enabled": True,
                   "conditions": [{"field": "company.kind", "op": "exists"}]}],
        "thresholds": {"A": 9, "B": 5, "C": 1}})
    assert config.rules[0].conditions[0] == Condition("company.kind", "exists", None)
    assert config.thresholds == {"A": 9, "B": 5, "C": 1}
    assert config.class_factors == engine.DEFAULT_CLASS_FACTORS
    assert config.uses("company") and not config.uses("contact")
    assert engine.config_from_dict(None) == Config()


def test_day_marks_are_the_days_a_condition_can_flip() -> None:
    def marks(*conditions: Condition, enabled: bool = True) -> set[int]:
        return engine.day_marks(Config(rules=(Rule("r", "R", conditions, 1, enabled),)))

    assert marks(Condition("deal.days_in_stage", "gt", 14)) == {14, 15}
    assert marks(Condition("deal.days_in_stage", "lte", 2.5)) == {2, 3}
    assert marks(Condition("deal.days_in_stage", "in", [1, 7])) == {1, 2, 7, 8}
    assert marks(Condition("deal.days_in_stage", "exists")) == set()
    assert marks(Condition("deal.amount", "gt", 14)) == set()
    assert marks(Condition("deal.days_in_stage", "gt", 14), enabled=False) == set()
