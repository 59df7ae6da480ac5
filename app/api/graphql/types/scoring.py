"""GraphQL object and input types of deal scoring."""

from __future__ import annotations

import datetime

import strawberry
from strawberry.scalars import JSON

from app.domain.deals.models import Deal
from app.domain.deals.scoring_schemas import ScoreRead, ScoringConfigRead, ScoringField


@strawberry.type(description="One test on a deal, contact or company field.")
class ScoringCondition:
    field: str
    op: str
    value: JSON | None


@strawberry.type
class ScoringRule:
    id: str
    name: str
    conditions: list[ScoringCondition]
    points: int
    enabled: bool


@strawberry.type(description="Points needed: >= A is class A, >= B is B, >= C is C, else D.")
class ScoreThresholds:
    A: int
    B: int
    C: int


@strawberry.type(description="What each class multiplies the stage probability by.")
class ScoreClassFactors:
    A: float
    B: float
    C: float
    D: float


@strawberry.type
class DealScoringConfig:
    rules: list[ScoringRule]
    thresholds: ScoreThresholds
    class_factors: ScoreClassFactors
    version: int
    updated_at: datetime.datetime | None
    updated_by: str | None
    rescored_deals: int | None = strawberry.field(
        default=None, description="After updateDealScoring: open deals whose score changed")

    @classmethod
    def of(cls, c: ScoringConfigRead, rescored: int | None = None) -> DealScoringConfig:
        return cls(
            rules=[ScoringRule(id=r.id, name=r.name, points=r.points, enabled=r.enabled,
                               conditions=[ScoringCondition(field=x.field, op=x.op, value=x.value)
                                           for x in r.conditions]) for r in c.rules],
            thresholds=ScoreThresholds(**c.thresholds.model_dump()),
            class_factors=ScoreClassFactors(**c.class_factors.model_dump()),
            version=c.version, updated_at=c.updated_at, updated_by=c.updated_by,
            rescored_deals=rescored)


@strawberry.type
class DealScoringField:
    field: str
    kind: str
    ops: list[str]

    @classmethod
    def of(cls, f: ScoringField) -> DealScoringField:
        return cls(field=f.field, kind=f.kind, ops=f.ops)


@strawberry.type(description="A deal's score: class, points, probability, expected amount, "
                             "the maximum reached and the drop from it, the manual adjustment "
                             "and the explanation.")
class DealScore:
    deal_id: strawberry.ID
    version: int = strawberry.field(description="The deal's version")
    class_: str | None = strawberry.field(name="class")
    points: int
    probability: int
    expected_amount: str | None
    max_expected_amount: str | None
    drop_from_max: str | None
    currency: str
    adjustment: int
    adjusted_by: str | None
    adjusted_at: datetime.datetime | None
    explanation: JSON = strawberry.field(description="Entries with `kind` and a readable `text`")

    @classmethod
    def of(cls, deal: Deal, score: ScoreRead) -> DealScore:
        def money(value: object) -> str | None:
            return None if value is None else str(value)

        return cls(deal_id=strawberry.ID(str(deal.id)), version=deal.version,
                   class_=score.class_, points=score.points, probability=score.probability,
                   expected_amount=money(score.expected_amount),
                   max_expected_amount=money(score.max_expected_amount),
                   drop_from_max=money(score.drop_from_max), currency=score.currency,
                   adjustment=score.adjustment, adjusted_by=score.adjusted_by,
                   adjusted_at=score.adjusted_at, explanation=score.explanation)


@strawberry.type
class DealScorePreview:
    score: DealScore = strawberry.field(description="What the deal would get (not written)")
    current: DealScore = strawberry.field(description="What the deal has now")


@strawberry.input
class ScoringConditionInput:
    field: str
    op: str
    value: JSON | None = None


@strawberry.input
class ScoringRuleInput:
    id: str
    name: str
    conditions: list[ScoringConditionInput]
    points: int
    enabled: bool = True


@strawberry.input
class ScoreThresholdsInput:
    A: int
    B: int
    C: int


@strawberry.input
class ScoreClassFactorsInput:
    A: float
    B: float
    C: float
    D: float


@strawberry.input(description="The whole scoring configuration (it replaces the current one); "
                              "omitted thresholds and factors take the defaults.")
class DealScoringInput:
    rules: list[ScoringRuleInput] = strawberry.field(default_factory=list)
    thresholds: ScoreThresholdsInput | None = strawberry.UNSET
    class_factors: ScoreClassFactorsInput | None = strawberry.UNSET
