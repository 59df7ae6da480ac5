"""The deal scoring engine (S8): rules evaluated on facts. PURE — no I/O, no clock.

`facts_for()` turns a deal, its primary contact and its company (plain objects, already
loaded) into a flat mapping of facts ("deal.amount", "contact.status", ...); `score()` sums
the points of every enabled rule whose conditions all hold, picks the class from the
thresholds, applies the manual adjustment, and derives the probability and expected amount.
Every step is written to the explanation, a list of entries with a `kind` and a `text` a
head of sales can read.

Comparison semantics (documented in docs/scoring.md):
- strings compare case-insensitively; numbers (and money custom fields) as decimals;
  ISO dates and times as dates and times;
- a missing value (no contact, an empty field) fails every condition except `ne`, `nin`
  and `not_exists`;
- on list fields (tags, multiselect) `in` means "has any of", `nin` "has none of".
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from app.domain.shared.money import quantize

CLASSES = ("A", "B", "C", "D")
DEFAULT_THRESHOLDS = {"A": 50, "B": 0, "C": -50}
DEFAULT_CLASS_FACTORS = {"A": 1.2, "B": 1.0, "C": 0.8, "D": 0.5}

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "has", "exists", "not_exists",
       "contains")
_ORDERED = {"gt", "gte", "lt", "lte"}
PRESENCE = frozenset({"exists", "not_exists"})
LIST_VALUED = frozenset({"in", "nin"})
MAX_LIST_VALUES = 100
MAX_STRING_VALUE = 200

# The kind of value a field holds decides which operators make sense on it.
FIELD_KINDS: dict[str, str] = {
    "deal.amount": "number",
    "deal.currency": "str",
    "deal.source": "str",
    "deal.tags": "array",
    "deal.stage_id": "uuid",
    "deal.pipeline_id": "uuid",
    "deal.owner_id": "uuid",
    "deal.expected_close_date": "date",
    "deal.line_items_count": "number",
    "deal.has_line_items": "bool",
    "deal.days_in_stage": "number",
    "contact.status": "str",
    "contact.kind": "str",
    "contact.source": "str",
    "contact.tags": "array",
    "company.kind": "str",
    "company.tags": "array",
}
CUSTOM_FIELD_PREFIXES = {"deal.custom_fields.": "deal", "contact.custom_fields.": "contact",
                         "company.custom_fields.": "company"}
# Custom field definition type -> the kind its values are compared as.
CUSTOM_FIELD_KINDS = {"text": "str", "phone": "str", "email": "str", "url": "str",
                      "select": "str", "user": "uuid", "number": "number", "money": "number",
                      "date": "date", "datetime": "datetime", "boolean": "bool",
                      "multiselect": "array"}
OPS_BY_KIND: dict[str, frozenset[str]] = {
    "number": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", *PRESENCE}),
    "date": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", *PRESENCE}),
    "datetime": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", *PRESENCE}),
    "str": frozenset({"eq", "ne", "in", "nin", "contains", *PRESENCE}),
    "uuid": frozenset({"eq", "ne", "in", "nin", *PRESENCE}),
    "array": frozenset({"has", "in", "nin", "contains", *PRESENCE}),
    "bool": frozenset({"eq", "ne", *PRESENCE}),
}

_OP_WORDS = {"eq": "is", "ne": "is not", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
             "in": "is one of", "nin": "is none of", "has": "has", "exists": "is set",
             "not_exists": "is not set", "contains": "contains"}
_ARRAY_OP_WORDS = {"in": "has any of", "nin": "has none of"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


# --- configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    conditions: tuple[Condition, ...]
    points: int
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    rules: tuple[Rule, ...] = ()
    thresholds: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    class_factors: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CLASS_FACTORS))

    def uses(self, entity: str) -> bool:
        """Whether any enabled rule reads a field of `entity` ("contact", "company"): the
        caller loads that record only then."""
        prefix = entity + "."
        return any(c.field.startswith(prefix) for r in self.rules if r.enabled
                   for c in r.conditions)


def day_marks(config: Config) -> set[int]:
    """The days in stage at which some enabled condition on `deal.days_in_stage` can change
    its answer: a deal that reaches one of them must be re-scored although nothing else
    changed (the daily re-score uses them to pick those deals alone)."""
    marks: set[int] = set()
    for rule in config.rules:
        for c in rule.conditions if rule.enabled else ():
            if c.field != "deal.days_in_stage" or c.op in PRESENCE:
                continue
            for value in c.value if isinstance(c.value, list) else [c.value]:
                try:
                    number = Decimal(str(value))
                except InvalidOperation:
                    continue
                if number.is_finite() and -1 <= number <= 100_000:
                    floor = int(number.to_integral_value(rounding="ROUND_FLOOR"))
                    marks |= {m for m in (floor, floor + 1, math.ceil(number)) if m >= 0}
    return marks


def config_from_dict(data: Mapping[str, Any] | None) -> Config:
    """The stored configuration (validated when it was written) as engine objects."""
    if not data:
        return Config()
    rules = tuple(
        Rule(id=str(r["id"]), name=str(r["name"]), points=int(r["points"]),
             enabled=bool(r.get("enabled", True)),
             conditions=tuple(Condition(field=c["field"], op=c["op"], value=c.get("value"))
                              for c in r.get("conditions", [])))
        for r in data.get("rules", []))
    return Config(rules=rules,
                  thresholds={**DEFAULT_THRESHOLDS, **(data.get("thresholds") or {})},
                  class_factors={**DEFAULT_CLASS_FACTORS, **(data.get("class_factors") or {})})


# --- facts ----------------------------------------------------------------------------------

def facts_for(deal: Any, contact: Any | None, company: Any | None, *,
              days_in_stage: int) -> dict[str, Any]:
    """The values conditions read. `days_in_stage` is computed by the caller (it needs the
    clock); a missing contact or company leaves its facts None."""
    line_items = getattr(deal, "line_items", None) or []
    facts: dict[str, Any] = {
        "deal.amount": deal.amount,
        "deal.currency": deal.currency,
        "deal.source": deal.source,
        "deal.tags": list(deal.tags or []),
        "deal.stage_id": deal.stage_id,
        "deal.pipeline_id": deal.pipeline_id,
        "deal.owner_id": deal.owner_id,
        "deal.expected_close_date": deal.expected_close_date,
        "deal.line_items_count": len(line_items),
        "deal.has_line_items": bool(line_items),
        "deal.days_in_stage": days_in_stage,
        "deal.custom_fields": dict(deal.custom_fields or {}),
    }
    for prefix, record, names in (("contact", contact, ("status", "kind", "source", "tags")),
                                  ("company", company, ("kind", "tags"))):
        for name in names:
            facts[f"{prefix}.{name}"] = getattr(record, name) if record is not None else None
        facts[f"{prefix}.custom_fields"] = dict(record.custom_fields or {}) \
            if record is not None else None
    return facts


def actual_value(facts: Mapping[str, Any], name: str) -> Any:
    for prefix in CUSTOM_FIELD_PREFIXES:
        if name.startswith(prefix):
            values = facts.get(prefix[:-1])
            return values.get(name[len(prefix):]) if values else None
    return facts.get(name)


# --- evaluation -----------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """A value in its comparable form: decimals, dates, times, case-folded strings."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, dict) and "amount" in value:  # a money custom field
        try:
            return Decimal(str(value["amount"]))
        except InvalidOperation:
            return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        if _DATE_RE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        elif _DATETIME_RE.match(value):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        return value.strip().casefold()
    return value


def _pair(actual: Any, value: Any) -> tuple[Any, Any] | None:
    a, v = _norm(actual), _norm(value)
    if isinstance(a, Decimal) and isinstance(v, str):
        try:
            v = Decimal(v)
        except InvalidOperation:
            return None
    if isinstance(a, datetime) != isinstance(v, datetime):
        return None  # a date never equals a time, and they do not order
    if type(a) is not type(v) and not (isinstance(a, date) and isinstance(v, date)):
        return None
    if isinstance(a, datetime) and (a.tzinfo is None) != (v.tzinfo is None):
        return None
    return a, v


def _equal(actual: Any, value: Any) -> bool:
    pair = _pair(actual, value)
    return pair is not None and pair[0] == pair[1]


def _missing(actual: Any) -> bool:
    return actual is None or actual == "" or actual == [] or actual == {}


def holds(condition: Condition, actual: Any) -> bool:
    """Whether one condition holds for the actual value."""
    op, value = condition.op, condition.value
    if op == "exists":
        return not _missing(actual)
    if op == "not_exists":
        return _missing(actual)
    if _missing(actual):
        return op in ("ne", "nin")
    is_list = isinstance(actual, list | tuple)
    items = list(actual) if is_list else [actual]
    if op == "eq":
        return not is_list and _equal(actual, value)
    if op == "ne":
        return is_list or not _equal(actual, value)
    if op in _ORDERED:
        pair = None if is_list else _pair(actual, value)
        if pair is None:
            return False
        a, v = pair
        try:
            return {"gt": a > v, "gte": a >= v, "lt": a < v, "lte": a <= v}[op]
        except TypeError:
            return False
    if op == "in":
        return any(_equal(item, v) for item in items for v in value or [])
    if op == "nin":
        return not any(_equal(item, v) for item in items for v in value or [])
    if op == "has":
        return is_list and any(_equal(item, value) for item in items)
    if op == "contains":
        needle = str(value).strip().casefold()
        return any(isinstance(item, str) and needle in item.casefold() for item in items)
    return False


@dataclass(frozen=True)
class Stage:
    """What the engine needs of the deal's stage."""

    id: Any
    name: str
    probability: int
    kind: str = "open"


@dataclass(frozen=True)
class Adjustment:
    value: int = 0  # +1 raises the class by one (D -> C), -1 lowers it
    by: str | None = None
    at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class Score:
    points: int
    computed_class: str
    score_class: str
    probability: int
    expected_amount: Decimal | None
    max_expected_amount: Decimal | None
    explanation: list[dict[str, Any]]


def class_for(points: int, thresholds: Mapping[str, int]) -> str:
    for name in ("A", "B", "C"):
        if points >= thresholds[name]:
            return name
    return "D"


def shift_class(score_class: str, adjustment: int) -> str:
    """+1 is one class better (towards A), -1 one worse; clamped to A..D."""
    index = CLASSES.index(score_class) - adjustment
    return CLASSES[max(0, min(len(CLASSES) - 1, index))]


def adjusted_probability(stage_probability: int, factor: float | Decimal) -> int:
    raw = (Decimal(stage_probability) * Decimal(str(factor))).quantize(Decimal(1),
                                                                        ROUND_HALF_UP)
    return max(0, min(100, int(raw)))


def next_max(previous: Decimal | None, expected: Decimal | None) -> Decimal | None:
    """The highest expected amount the deal has reached: it never decreases."""
    if expected is None:
        return previous
    return expected if previous is None or expected > previous else previous


def json_value(value: Any) -> Any:
    """A fact as JSON for the stored explanation."""
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]" if value else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f"“{value}”"
    return str(json_value(value))


def _label(name: str) -> str:
    for prefix, entity in CUSTOM_FIELD_PREFIXES.items():
        if name.startswith(prefix):
            return f"{entity} field “{name[len(prefix):]}”"
    entity, _, attr = name.partition(".")
    return f"{entity} {attr.replace('_', ' ')}"


def condition_text(condition: Condition, actual: Any) -> str:
    is_list = FIELD_KINDS.get(condition.field) == "array" or isinstance(actual, list)
    word = (_ARRAY_OP_WORDS if is_list else {}).get(condition.op) or _OP_WORDS[condition.op]
    value = "" if condition.op in PRESENCE else " " + _show(condition.value)
    return f"{_label(condition.field)} {word}{value} (it is {_show(actual)})"


def _sign(points: int) -> str:
    return f"+{points}" if points >= 0 else str(points)


def _rule_entry(rule: Rule, facts: Mapping[str, Any]) -> dict[str, Any] | None:
    checked = []
    for condition in rule.conditions:
        actual = actual_value(facts, condition.field)
        if not holds(condition, actual):
            return None
        checked.append((condition, actual))
    reasons = "; ".join(condition_text(c, a) for c, a in checked) or "always applies"
    return {
        "kind": "rule", "rule_id": rule.id, "rule": rule.name, "points": rule.points,
        "conditions": [{"field": c.field, "op": c.op, "value": c.value,
                        "actual": json_value(a)} for c, a in checked],
        "text": f"Rule “{rule.name}” {_sign(rule.points)} points: {reasons}.",
    }


def _thresholds_text(thresholds: Mapping[str, int]) -> str:
    return (f"A from {thresholds['A']}, B from {thresholds['B']}, C from {thresholds['C']}, "
            "D below")


def score(config: Config, facts: Mapping[str, Any], *, stage: Stage, status: str,
          amount: Decimal | None, currency: str, adjustment: Adjustment,
          previous_max: Decimal | None) -> Score:
    """The deal's score and the explanation of every step that produced it."""
    explanation = [e for e in (_rule_entry(r, facts) for r in config.rules if r.enabled) if e]
    points = sum(e["points"] for e in explanation)
    computed = class_for(points, config.thresholds)
    rules_text = f"from {len(explanation)} matching rule{'s' * (len(explanation) != 1)}" \
        if explanation else "(no rule matched)"
    explanation.append({
        "kind": "class", "points": points, "class": computed,
        "thresholds": dict(config.thresholds),
        "text": f"{points} points {rules_text}: class {computed} "
                f"({_thresholds_text(config.thresholds)}).",
    })
    final = shift_class(computed, adjustment.value)
    if adjustment.value:
        direction = "raised" if adjustment.value > 0 else "lowered"
        who = f" by {adjustment.by}" if adjustment.by else ""
        when = f" on {adjustment.at.date().isoformat()}" if adjustment.at else ""
        note = f": “{adjustment.note}”" if adjustment.note else ""
        change = f"from {computed} to {final}" if final != computed \
            else f"but {computed} is already the {'best' if adjustment.value > 0 else 'worst'}"
        explanation.append({
            "kind": "adjustment", "adjustment": adjustment.value, "from_class": computed,
            "class": final, "by": adjustment.by,
            "at": adjustment.at.isoformat() if adjustment.at else None, "note": adjustment.note,
            "text": f"Class manually {direction} one step {change}{who}{when}{note}.",
        })
    explanation.append({
        "kind": "stage", "stage_id": json_value(stage.id), "stage": stage.name,
        "probability": stage.probability,
        "text": f"Stage “{stage.name}” wins {stage.probability}% of deals.",
    })
    factor = config.class_factors[final]
    if status == "won":
        probability, text = 100, "The deal is won: probability 100%."
    elif status == "lost":
        probability, text = 0, "The deal is lost: probability 0%."
    else:
        probability = adjusted_probability(stage.probability, factor)
        text = (f"Class {final} weighs the stage probability ×{factor}: "
                f"{stage.probability}% → {probability}%.")
    explanation.append({"kind": "probability", "class": final, "factor": factor,
                        "status": status, "probability": probability, "text": text})
    expected = None
    if amount is None:
        explanation.append({"kind": "expected_amount", "amount": None, "expected_amount": None,
                            "text": "No amount yet, so no expected amount."})
    else:
        expected = quantize(Decimal(amount) * probability / 100, currency)
        explanation.append({
            "kind": "expected_amount", "amount": str(amount), "currency": currency,
            "probability": probability, "expected_amount": str(expected),
            "text": f"Expected amount {amount} {currency} × {probability}% = "
                    f"{expected} {currency}."})
    maximum = next_max(previous_max, expected)
    drop = maximum - (expected or Decimal(0)) if maximum is not None else None
    if drop is not None and drop > 0:
        explanation.append({
            "kind": "drop_from_max", "max_expected_amount": str(maximum),
            "drop_from_max": str(drop), "currency": currency,
            "text": f"Down {drop} {currency} from its highest expected amount, "
                    f"{maximum} {currency}."})
    return Score(points=points, computed_class=computed, score_class=final,
                 probability=probability, expected_amount=expected,
                 max_expected_amount=maximum, explanation=explanation)


def matching_rules(config: Config, facts: Mapping[str, Any]) -> Sequence[str]:
    """Ids of the enabled rules that match (for tests and previews)."""
    return [r.id for r in config.rules if r.enabled and _rule_entry(r, facts) is not None]
