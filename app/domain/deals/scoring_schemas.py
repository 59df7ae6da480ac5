"""Request and response shapes of deal scoring: the workspace configuration, a deal's score,
the manual adjustment and the preview, with the pure checks on a condition (field kind,
operator, value type) and the read models. The checks that need the workspace (known custom
fields, stages, statuses) are in scoring.py."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.domain.deals import scoring_engine as engine
from app.domain.deals.models import Deal
from app.domain.deals.scoring_engine import (
    DEFAULT_CLASS_FACTORS,
    DEFAULT_THRESHOLDS,
    OPS,
)
from app.domain.shared.money import AmountOut


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL cannot store it
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Op = Literal[OPS]  # type: ignore[valid-type]
ScoreClass = Literal["A", "B", "C", "D"]
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Points = Annotated[int, Field(ge=-10_000, le=10_000)]
Threshold = Annotated[int, Field(ge=-100_000, le=100_000)]
Factor = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class ScoringCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="deal.amount, contact.status, company.tags, deal.custom_fields.<key>, … "
                    "(GET /api/v1/deal-scoring/fields lists them)",
        examples=["deal.amount"])
    op: Op = Field(examples=["gte"])
    value: Any = Field(default=None, description="A value of the field's type; a list for "
                                                 "in/nin; nothing for exists/not_exists",
                       examples=[10000])


class ScoringRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId = Field(description="Your stable id for the rule; explanations name it",
                       examples=["big-order"])
    name: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=200)] = Field(examples=["Big order"])
    conditions: list[ScoringCondition] = Field(min_length=1, max_length=20,
                                               description="All must hold")
    points: Points = Field(description="Added when the rule matches; may be negative")
    enabled: bool = True


class ScoreThresholds(BaseModel):
    """Points needed for a class: >= A is A, >= B is B, >= C is C, below is D."""

    model_config = ConfigDict(extra="forbid")

    A: Threshold
    B: Threshold
    C: Threshold

    @model_validator(mode="after")
    def _ordered(self) -> ScoreThresholds:
        if not self.A > self.B > self.C:
            raise ValueError("thresholds must be strictly ordered: A > B > C")
        return self


class ScoreClassFactors(BaseModel):
    """What each class multiplies the stage's win probability by."""

    model_config = ConfigDict(extra="forbid")

    A: Factor
    B: Factor
    C: Factor
    D: Factor


class ScoringConfigIn(BaseModel):
    """The whole configuration: PUT replaces it. Omitted thresholds and factors take the
    defaults."""

    model_config = ConfigDict(extra="forbid")

    rules: list[ScoringRule] = Field(default_factory=list, max_length=200)
    thresholds: ScoreThresholds = Field(
        default_factory=lambda: ScoreThresholds(**DEFAULT_THRESHOLDS))
    class_factors: ScoreClassFactors = Field(
        default_factory=lambda: ScoreClassFactors(**DEFAULT_CLASS_FACTORS))


class ScoringConfigRead(ScoringConfigIn):
    version: int = Field(description="0 until the workspace first configures scoring; the "
                                     "ETag")
    updated_at: datetime | None = None
    updated_by: str | None = None


class ScoringConfigUpdated(ScoringConfigRead):
    rescored_deals: int = Field(description="Open deals whose score changed with this "
                                            "configuration (each got a deal.updated event)")


class ScoringField(BaseModel):
    field: str
    kind: str = Field(description="number, str, uuid, date, datetime, bool or array")
    ops: list[str]


class ScoringFields(BaseModel):
    data: list[ScoringField]


class ScoreRead(BaseModel):
    """A deal's score, as the deal shows it under `score`."""

    model_config = ConfigDict(populate_by_name=True)

    class_: ScoreClass | None = Field(alias="class", description="After the manual adjustment")
    points: int
    probability: int = Field(description="Percent: the stage's, weighted by the class")
    expected_amount: AmountOut | None = Field(description="amount × probability")
    max_expected_amount: AmountOut | None = Field(
        description="The highest expected amount the deal has reached")
    drop_from_max: AmountOut | None = Field(
        description="max_expected_amount − expected_amount: value at risk")
    currency: str
    adjustment: int = Field(description="Manual class adjustment: -1, 0 or +1")
    adjusted_by: str | None
    adjusted_at: datetime | None
    explanation: list[dict[str, Any]] = Field(
        description="Each rule that contributed, then the class, adjustment, stage, "
                    "probability and expected amount; every entry has a readable `text`")


class DealScoreRead(ScoreRead):
    deal_id: uuid.UUID
    version: int = Field(description="The deal's version (its ETag)")


class ScoreAdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adjustment: Literal[-1, 0, 1] = Field(description="+1 raises the class one step (C → B), "
                                                      "-1 lowers it, 0 clears the adjustment")
    note: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ScorePreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deal_id: uuid.UUID
    config: ScoringConfigIn | None = Field(
        default=None, description="A configuration to try instead of the current one")


class ScorePreview(BaseModel):
    deal_id: uuid.UUID
    score: ScoreRead = Field(description="What the deal would get (nothing is written)")
    current: ScoreRead = Field(description="What the deal has now")


# --- checks on a configuration (pure) ------------------------------------------------------

def field_kind(name: str, custom_kinds: Mapping[str, Mapping[str, str]] | None = None
               ) -> str | None:
    """The kind of a condition field; custom fields take theirs from the definitions
    (`custom_kinds[entity][key]` is the definition type). None for an unknown field."""
    if name in engine.FIELD_KINDS:
        return engine.FIELD_KINDS[name]
    for prefix, entity in engine.CUSTOM_FIELD_PREFIXES.items():
        if name.startswith(prefix):
            definition_type = (custom_kinds or {}).get(entity, {}).get(name[len(prefix):])
            return engine.CUSTOM_FIELD_KINDS.get(definition_type) if definition_type else None
    return None


def _number_ok(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return Decimal(value).is_finite()
        except InvalidOperation:
            return False
    return False


def _scalar_error(kind: str, value: Any) -> str | None:
    if kind == "number":
        return None if _number_ok(value) else "must be a number"
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > engine.MAX_STRING_VALUE:
        return f"at most {engine.MAX_STRING_VALUE} characters"
    if "\x00" in value:  # PostgreSQL cannot store it
        return "must not contain NUL characters"
    if kind == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            return "must be an id (UUID)"
    elif kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return "must be a date like 2026-03-31"
    elif kind == "datetime":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return "must be an RFC 3339 time with offset"
        if parsed.tzinfo is None:
            return "must have a UTC offset"
    elif kind in ("str", "array") and not value.strip():
        return "must not be empty"
    return None


def value_error(kind: str, op: str, value: Any) -> str | None:
    """Why `value` does not suit `op` on a field of `kind`, or None when it does."""
    if op not in engine.OPS_BY_KIND[kind]:
        allowed = ", ".join(o for o in engine.OPS if o in engine.OPS_BY_KIND[kind])
        return f"operator {op!r} does not apply to this field; use one of: {allowed}"
    if op in engine.PRESENCE:
        return None if value is None else f"{op} takes no value (omit it or send null)"
    if op in engine.LIST_VALUED:
        if not isinstance(value, list) or not value:
            return f"{op} takes a non-empty list of values"
        if len(value) > engine.MAX_LIST_VALUES:
            return f"at most {engine.MAX_LIST_VALUES} values"
        item_kind = "str" if kind == "array" else kind
        errors = [_scalar_error(item_kind, v) for v in value]
        first = next((e for e in errors if e), None)
        return f"every value {first}" if first else None
    item_kind = "str" if kind == "array" or op == "contains" else kind
    return _scalar_error(item_kind, value)


# --- read models ----------------------------------------------------------------------------

def scoring_fields(definitions: Iterable[Any]) -> list[ScoringField]:
    """The fields conditions may use, with their operators (for rule editors)."""
    out = [ScoringField(field=f, kind=k, ops=[o for o in engine.OPS if o in
                                              engine.OPS_BY_KIND[k]])
           for f, k in engine.FIELD_KINDS.items()]
    for d in definitions:
        kind = engine.CUSTOM_FIELD_KINDS.get(d.type)
        if kind and d.object_type in ("deal", "contact", "company"):
            out.append(ScoringField(field=f"{d.object_type}.custom_fields.{d.key}", kind=kind,
                                    ops=[o for o in engine.OPS if o in engine.OPS_BY_KIND[kind]]))
    return out


def _drop(maximum: Decimal | None, expected: Decimal | None) -> Decimal | None:
    return None if maximum is None else maximum - (expected or Decimal(0))


def score_read(deal: Deal) -> ScoreRead:
    """The `score` object of a deal's read model."""
    return ScoreRead.model_validate({
        "class": deal.score_class, "points": deal.score_points,
        "probability": deal.probability, "expected_amount": deal.expected_amount,
        "max_expected_amount": deal.max_expected_amount,
        "drop_from_max": _drop(deal.max_expected_amount, deal.expected_amount),
        "currency": deal.currency, "adjustment": deal.score_adjustment,
        "adjusted_by": deal.score_adjusted_by, "adjusted_at": deal.score_adjusted_at,
        "explanation": deal.score_explanation or []})


def proposed_read(deal: Deal, result: engine.Score) -> ScoreRead:
    """A computed (not stored) score, shaped as the deal would show it."""
    return ScoreRead.model_validate({
        "class": result.score_class, "points": result.points,
        "probability": result.probability, "expected_amount": result.expected_amount,
        "max_expected_amount": result.max_expected_amount,
        "drop_from_max": _drop(result.max_expected_amount, result.expected_amount),
        "currency": deal.currency, "adjustment": deal.score_adjustment,
        "adjusted_by": deal.score_adjusted_by, "adjusted_at": deal.score_adjusted_at,
        "explanation": result.explanation})


def deal_score_read(deal: Deal) -> DealScoreRead:
    return DealScoreRead.model_validate({**score_read(deal).model_dump(by_alias=True),
                                         "deal_id": deal.id, "version": deal.version})
