"""REST: /api/v1/deal-scoring — the workspace's scoring rules and class thresholds — and a
deal's score (read it, preview it, adjust it by hand)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from app.api.deps import Ctx
from app.api.rest.common import expected_version, set_etag
from app.domain.customfields.service import list_definitions
from app.domain.deals import scoring as service
from app.domain.deals.models import Deal
from app.domain.deals.scoring_schemas import (
    DealScoreRead,
    ScoreAdjustmentIn,
    ScorePreview,
    ScorePreviewIn,
    ScoringConfigIn,
    ScoringConfigRead,
    ScoringConfigUpdated,
    ScoringFields,
    deal_score_read,
    proposed_read,
    score_read,
    scoring_fields,
)
from app.domain.shared import records

router = APIRouter(prefix="/api/v1", tags=["deal scoring"])


@router.get("/deal-scoring", response_model=ScoringConfigRead)
async def get_deal_scoring(ctx: Ctx, response: Response) -> ScoringConfigRead:
    """The scoring rules, class thresholds and class factors (defaults until configured)."""
    config = await service.get_config(ctx.session, ctx.principal)
    set_etag(response, config.version)
    return config


@router.put("/deal-scoring", response_model=ScoringConfigUpdated)
async def put_deal_scoring(body: ScoringConfigIn, request: Request, ctx: Ctx,
                           response: Response) -> ScoringConfigUpdated:
    """Replace the configuration (admins and owners). Every open deal is re-scored in the same
    transaction; each deal whose score changes gets a `deal.updated` event, and the change
    itself a `deal_scoring.updated` event. Send `If-Match: "<version>"` to refuse a lost
    update (412)."""
    config, rescored = await service.update_config(
        ctx.session, ctx.principal, body, expected_version=expected_version(request))
    set_etag(response, config.version)
    return ScoringConfigUpdated(**config.model_dump(), rescored_deals=rescored)


@router.get("/deal-scoring/fields", response_model=ScoringFields)
async def deal_scoring_fields(ctx: Ctx) -> ScoringFields:
    """The fields a condition may read, with the operators each one takes (the workspace's
    custom fields of deals, contacts and companies included)."""
    definitions = await list_definitions(ctx.session, object_type=None)
    return ScoringFields(data=scoring_fields(definitions))


@router.post("/deal-scoring/preview", response_model=ScorePreview)
async def preview_deal_score(body: ScorePreviewIn, ctx: Ctx) -> ScorePreview:
    """The score a deal would get — with the current configuration, or with `config` to try
    rules before saving them. Nothing is written."""
    deal, result = await service.preview(ctx.session, ctx.principal, body.deal_id, body.config)
    return ScorePreview(deal_id=deal.id, score=proposed_read(deal, result),
                        current=score_read(deal))


@router.get("/deals/{deal_id}/score", response_model=DealScoreRead)
async def get_deal_score(deal_id: uuid.UUID, ctx: Ctx, response: Response) -> DealScoreRead:
    """A deal's score with its explanation (the same as the deal's `score`)."""
    deal = await records.get_visible(ctx.session, Deal, ctx.principal, deal_id)
    set_etag(response, deal.version)
    return deal_score_read(deal)


@router.post("/deals/{deal_id}/score-adjustment", response_model=DealScoreRead)
async def adjust_deal_score(deal_id: uuid.UUID, body: ScoreAdjustmentIn, request: Request,
                            ctx: Ctx, response: Response) -> DealScoreRead:
    """Overrule the automatic class by one step: +1 raises it (C → B), -1 lowers it, 0 clears
    the adjustment (managers, admins and owners). Records who set it and when, bumps the
    deal's version and writes a `deal.updated` event. `If-Match` is honoured."""
    deal = await service.adjust_score(ctx.session, ctx.principal, deal_id, body,
                                      expected_version=expected_version(request))
    set_etag(response, deal.version)
    return deal_score_read(deal)
