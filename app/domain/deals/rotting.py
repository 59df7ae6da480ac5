"""Rotting deals: idle in one stage for longer than the stage's `rotting_days`.

A deal is idle since the later of entering its stage and its last activity (a call, an email,
a completed task linked to it). The sweep flags it once per idle period: it sets
`rotting_since`, writes a `deal.rotting` event and tells the owner. Any activity on the deal
or a stage move clears the flag and starts a new period.

The flag is derived state, so setting it does not bump the deal's version (an ETag a client
holds stays valid)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.deals.models import Deal
from app.domain.notifications.service import notify
from app.domain.outbox.service import record_event
from app.domain.pipelines.models import Stage
from app.domain.shared.clock import clock
from app.domain.shared.principal import system_principal

SWEEP_BATCH = 1000


def _days(span: timedelta) -> str:
    return "1 day" if span.days == 1 else f"{span.days} days"


def idle_since(deal: Deal) -> datetime:
    if deal.last_activity_at and deal.last_activity_at > deal.stage_entered_at:
        return deal.last_activity_at
    return deal.stage_entered_at


async def mark_deal_activity(session: AsyncSession, deal_id: uuid.UUID, at: datetime) -> None:
    """Something happened on the deal: it is not idle (call from activities and tasks)."""
    await session.execute(
        update(Deal).where(Deal.id == deal_id)
        .values(last_activity_at=func.greatest(func.coalesce(Deal.last_activity_at, at), at),
                rotting_since=None)
        .execution_options(synchronize_session="fetch"))


async def flag_rotting_deals(session: AsyncSession, workspace_id: uuid.UUID,
                             now: datetime | None = None) -> int:
    """Flag the workspace's deals that started rotting; returns how many were flagged."""
    now = now or clock.now()
    idle_start = func.greatest(Deal.stage_entered_at,
                               func.coalesce(Deal.last_activity_at, Deal.stage_entered_at))
    rows = (await session.execute(
        select(Deal, Stage.rotting_days, Stage.name)
        .join(Stage, (Stage.workspace_id == Deal.workspace_id) & (Stage.id == Deal.stage_id))
        # A literal, not a parameter: a generic plan must still match ix_deals_rotting.
        .where(Deal.status == literal_column("'open'"), Deal.deleted_at.is_(None),
               Deal.rotting_since.is_(None),
               Stage.rotting_days.is_not(None),
               idle_start + func.make_interval(0, 0, 0, Stage.rotting_days) <= now)
        .order_by(Deal.stage_entered_at).limit(SWEEP_BATCH)
        .with_for_update(of=Deal, skip_locked=True))).all()
    system = system_principal(workspace_id)
    for deal, rotting_days, stage_name in rows:
        since = idle_since(deal)
        deal.rotting_since = now
        await record_event(session, system, type="deal.rotting", entity_type="deal",
                           entity_id=deal.id, before={"rotting_since": None},
                           after={"rotting_since": now.isoformat(),
                                  "idle_since": since.isoformat(),
                                  "stage_id": str(deal.stage_id),
                                  "rotting_days": rotting_days})
        if deal.owner_id is not None:
            await notify(session, system, user_ids=[deal.owner_id], type="deal_rotting",
                         title=f"Deal “{deal.title}” has been idle in {stage_name} for "
                               f"{_days(now - since)}",
                         entity_type="deal", entity_id=deal.id,
                         dedup_key=f"deal_rotting:{deal.id}:{since.isoformat()}")
    await session.flush()
    return len(rows)
