"""GraphQL for deal scoring: the rules, thresholds and manual adjustments (the same services
as REST /api/v1/deal-scoring and /api/v1/deals/{id}/score-adjustment)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from app.api.graphql.common import in_savepoint, parse_id
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.api.graphql.types.scoring import (
    DealScore,
    DealScorePreview,
    DealScoringConfig,
    DealScoringField,
    DealScoringInput,
)
from app.domain.customfields.service import list_definitions
from app.domain.deals import scoring
from app.domain.deals.models import Deal
from app.domain.deals.scoring_schemas import (
    ScoreAdjustmentIn,
    ScoringConfigIn,
    proposed_read,
    score_read,
    scoring_fields,
)
from app.domain.shared import records
from app.domain.shared.errors import NotFoundError as DomainNotFound


def _config_in(input: DealScoringInput) -> ScoringConfigIn:
    data: dict[str, Any] = {k: v for k, v in input_to_dict(input).items() if v is not None}
    return ScoringConfigIn.model_validate(data)


@strawberry.type
class ScoringQuery:
    @strawberry.field(description="The workspace's deal scoring configuration (defaults, "
                                  "version 0, until it is configured).")
    async def deal_scoring(self, info: strawberry.Info) -> DealScoringConfig:
        async with info.context.db_lock:
            return DealScoringConfig.of(await scoring.get_config(info.context.session,
                                                                 info.context.principal))

    @strawberry.field(description="The fields scoring conditions may read, with their "
                                  "operators.")
    async def deal_scoring_fields(self, info: strawberry.Info) -> list[DealScoringField]:
        async with info.context.db_lock:
            definitions = await list_definitions(info.context.session, object_type=None)
            return [DealScoringField.of(f) for f in scoring_fields(definitions)]

    @strawberry.field(description="A deal's score; null when the deal does not exist or is "
                                  "not visible to you.")
    async def deal_score(self, info: strawberry.Info, deal_id: strawberry.ID) -> DealScore | None:
        async with info.context.db_lock:
            try:
                deal = await records.get_visible(info.context.session, Deal,
                                                 info.context.principal, parse_id(deal_id, "deal"))
            except DomainNotFound:
                return None
            return DealScore.of(deal, score_read(deal))


# Every result union carries all the error types, as the other areas' do: clients share
# one fragment for errors.
DealScoringResult = Annotated[
    DealScoringConfig | ValidationError | ConflictError | NotFoundError
    | PreconditionFailedError | ForbiddenError, strawberry.union("DealScoringResult")]
DealScoreResult = Annotated[
    DealScore | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("DealScoreResult")]
DealScorePreviewResult = Annotated[
    DealScorePreview | ValidationError | ConflictError | NotFoundError
    | PreconditionFailedError | ForbiddenError, strawberry.union("DealScorePreviewResult")]


@strawberry.type
class ScoringMutation:
    @strawberry.mutation(description="Replace the scoring configuration (admins and owners) and "
                                     "re-score every open deal; `version` refuses a lost update.")
    async def update_deal_scoring(self, info: strawberry.Info, input: DealScoringInput,
                                  version: int | None = None) -> DealScoringResult:
        async def run() -> DealScoringConfig:
            config, rescored = await scoring.update_config(
                info.context.session, info.context.principal, _config_in(input),
                expected_version=version)
            return DealScoringConfig.of(config, rescored)
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Overrule a deal's class by one step: 1 raises it, -1 "
                                     "lowers it, 0 clears the adjustment (managers, admins, "
                                     "owners).")
    async def adjust_deal_score(self, info: strawberry.Info, deal_id: strawberry.ID,
                                adjustment: int, note: str | None = None,
                                version: int | None = None) -> DealScoreResult:
        async def run() -> DealScore:
            data = ScoreAdjustmentIn.model_validate({"adjustment": adjustment, "note": note})
            deal = await scoring.adjust_score(info.context.session, info.context.principal,
                                              parse_id(deal_id, "deal"), data,
                                              expected_version=version)
            return DealScore.of(deal, score_read(deal))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="The score a deal would get with the current "
                                     "configuration, or with `input` (nothing is written).")
    async def preview_deal_score(self, info: strawberry.Info, deal_id: strawberry.ID,
                                 input: DealScoringInput | None = None
                                 ) -> DealScorePreviewResult:
        async def run() -> DealScorePreview:
            config = _config_in(input) if input is not None else None
            deal, result = await scoring.preview(info.context.session, info.context.principal,
                                                 parse_id(deal_id, "deal"), config, loc=["body"])
            return DealScorePreview(score=DealScore.of(deal, proposed_read(deal, result)),
                                    current=DealScore.of(deal, score_read(deal)))
        return await in_savepoint(info, run)


QUERY_TYPES: list[type] = [ScoringQuery]
MUTATION_TYPES: list[type] = [ScoringMutation]
