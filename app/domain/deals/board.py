"""The pipeline board: per stage, the count and sums of the deals you can see and the newest
ones. Two queries whatever the number of deals: one grouped aggregate (by stage and currency)
and one LATERAL query that takes the first page of each stage from `ix_deals_board`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.domain.deals.models import Deal
from app.domain.deals.queries import LIST_SPEC, reads, visible_deals
from app.domain.deals.schemas import BoardColumn, BoardRead, CurrencyTotal
from app.domain.pipelines import service as pipelines
from app.domain.pipelines.models import Stage
from app.domain.shared.listing import row_cursor
from app.domain.shared.money import quantize
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import workspace_setting

BOARD_MAX_LIMIT = 100


def _conditions(principal: Principal, owner_id: uuid.UUID | None) -> list[Any]:
    conditions = visible_deals(principal)
    if owner_id is not None:
        conditions.append(Deal.owner_id == owner_id)
    return conditions


async def _totals(session: AsyncSession, stage_ids: list[uuid.UUID], conditions: list[Any]
                  ) -> dict[uuid.UUID, dict[str, tuple[int, Decimal, Decimal]]]:
    """{stage_id: {currency: (count, total, weighted)}}: one grouped query, an index-only
    scan of `ix_deals_board_totals` (the percent is divided once per group, not per row)."""
    rows = await session.execute(
        select(Deal.stage_id, Deal.currency, func.count(),
               func.coalesce(func.sum(Deal.amount), 0),
               func.coalesce(func.sum(Deal.amount * Deal.probability), 0))
        .where(Deal.stage_id.in_(stage_ids), *conditions)
        .group_by(Deal.stage_id, Deal.currency))
    result: dict[uuid.UUID, dict[str, tuple[int, Decimal, Decimal]]] = defaultdict(dict)
    for stage_id, currency, count, total, weighted in rows:
        result[stage_id][currency] = (count, Decimal(total), Decimal(weighted) / 100)
    return result


async def _first_pages(session: AsyncSession, stage_ids: list[uuid.UUID],
                       conditions: list[Any], limit: int) -> dict[uuid.UUID, list[Deal]]:
    """The newest `limit + 1` deals of each stage (one more tells whether there are more)."""
    if not stage_ids:
        return {}
    stages = select(Stage.id.label("stage_id")).where(Stage.id.in_(stage_ids)).subquery("s")
    page = (select(Deal).where(Deal.stage_id == stages.c.stage_id, *conditions)
            .order_by(Deal.created_at.desc(), Deal.id.desc()).limit(limit + 1)
            .lateral("d"))
    deal = aliased(Deal, page)
    rows = await session.execute(select(deal).select_from(stages).join(page, true()))
    result: dict[uuid.UUID, list[Deal]] = defaultdict(list)
    for found in rows.scalars():
        result[found.stage_id].append(found)
    for deals in result.values():
        deals.sort(key=lambda d: (d.created_at, d.id), reverse=True)
    return result


async def board(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID, *,
                limit: int = 20, owner_id: uuid.UUID | None = None) -> BoardRead:
    pipeline = await pipelines.get_pipeline(session, principal, pipeline_id)
    stages = (await pipelines.stages_of(session, [pipeline.id]))[pipeline.id]
    currency = workspace_setting(await current_workspace(session, principal), "currency")
    conditions = _conditions(principal, owner_id)
    totals = await _totals(session, [s.id for s in stages], conditions)
    # Archived stages show while they still hold deals you can see.
    shown = [s for s in stages if s.archived_at is None or totals.get(s.id)]
    pages = await _first_pages(session, [s.id for s in shown], conditions, limit)
    all_deals = [d for s in shown for d in pages.get(s.id, [])[:limit]]
    read_by_id = {r.id: r for r in await reads(session, all_deals)}
    columns = []
    for stage in shown:
        by_currency = totals.get(stage.id, {})
        count, total, weighted = by_currency.get(currency, (0, Decimal(0), Decimal(0)))
        others = [CurrencyTotal(currency=code, count=n, total_amount=quantize(t, code),
                                weighted_amount=quantize(w, code))
                  for code, (n, t, w) in sorted(by_currency.items()) if code != currency]
        deals = pages.get(stage.id, [])
        column_deals = deals[:limit]
        columns.append(BoardColumn(
            stage=pipelines.stage_read(stage), count=count + sum(o.count for o in others),
            total_amount=quantize(total, currency), weighted_amount=quantize(weighted, currency),
            currency=currency, other_currencies=others,
            deals=[read_by_id[d.id] for d in column_deals],
            next_cursor=row_cursor(LIST_SPEC, None, column_deals[-1])
            if len(deals) > limit else None))
    return BoardRead(pipeline=pipelines.to_read(pipeline, stages), currency=currency,
                     stages=columns)
