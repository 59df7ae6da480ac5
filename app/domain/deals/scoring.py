"""Deal scoring (S8). Interface used by the deals service:

    await rescore(session, deal)

recomputes the deal's score fields (score_class, score_points, probability, expected_amount,
max_expected_amount, score_explanation) from its inputs. It does not flush and records no
event: the caller's deal event carries the changed score fields.

This first version applies no workspace rules yet: probability is the stage's.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.deals.models import Deal
from app.domain.pipelines.models import Stage
from app.domain.shared.money import quantize


async def rescore(session: AsyncSession, deal: Deal) -> None:
    stage = await session.get(Stage, (deal.workspace_id, deal.stage_id))
    probability = stage.probability if stage is not None else 0
    if deal.status == "won":
        probability = 100
    elif deal.status == "lost":
        probability = 0
    deal.probability = probability
    deal.score_points = 0
    deal.score_class = "D"
    deal.score_explanation = []
    if deal.amount is None:
        deal.expected_amount = None
        return
    expected = quantize(Decimal(deal.amount) * probability / 100, deal.currency)
    deal.expected_amount = expected
    if deal.max_expected_amount is None or expected > deal.max_expected_amount:
        deal.max_expected_amount = expected
