"""What a move does to a deal, without reading or writing anything: shared by the move
through the ORM (service.py) and the plain move below it (moves.py), so the two cannot drift.

`stage` here is anything with the stage's `id`, `pipeline_id`, `name`, `kind` and
`probability`: a loaded `Stage`, or `moves.StageRef` read by the plain move."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.domain.deals.models import Deal, StageInterval
from app.domain.shared import records
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal

ENTITY = "deal"


def snapshot(deal: Deal, contact_ids: list[uuid.UUID]) -> dict[str, Any]:
    return {**records.snapshot(deal), "contact_ids": [str(c) for c in contact_ids]}


def interval_values(principal: Principal, deal: Deal, stage: Any, now: datetime,
                    from_stage_id: uuid.UUID | None) -> dict[str, Any]:
    """Every column of the stage interval the deal opens by entering `stage` at `now`."""
    return {"workspace_id": principal.workspace_id, "id": new_id(), "deal_id": deal.id,
            "pipeline_id": stage.pipeline_id, "stage_id": stage.id,
            "from_stage_id": from_stage_id, "entered_at": now, "entered_by": principal.actor,
            "left_at": None, "left_by": None}


def open_interval(principal: Principal, deal: Deal, stage: Any, now: datetime,
                  from_stage_id: uuid.UUID | None) -> StageInterval:
    return StageInterval(**interval_values(principal, deal, stage, now, from_stage_id))


def enter(deal: Deal, stage: Any, lost_reason: str | None, now: datetime) -> None:
    """The deal is in `stage` from `now`: status follows its kind."""
    if stage.kind != deal.status or deal.closed_at is None and stage.kind != "open":
        deal.closed_at = None if stage.kind == "open" else now
    deal.pipeline_id, deal.stage_id, deal.status = stage.pipeline_id, stage.id, stage.kind
    deal.stage_entered_at, deal.rotting_since = now, None
    deal.lost_reason = lost_reason


def stage_changed(edited: dict[str, Any], after: dict[str, Any], from_name: str | None,
                  to_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`deal.stage_changed`'s before and after: the snapshots with the stages' names."""
    return {**edited, "stage_name": from_name}, {**after, "stage_name": to_name}


def status_event(deal: Deal, old_status: str) -> tuple[str, dict[str, Any]] | None:
    """`deal.won` / `deal.lost` / `deal.reopened` (type and `after`) when the status changes:
    what a rule or a webhook listening for outcomes needs, without reading the whole deal."""
    if deal.status == old_status:
        return None
    type_ = {"won": "deal.won", "lost": "deal.lost"}.get(deal.status, "deal.reopened")
    snap = records.snapshot(deal)
    return type_, {"previous_status": old_status,
                   **{k: snap[k] for k in ("status", "pipeline_id", "stage_id", "amount",
                                           "currency", "lost_reason", "closed_at", "owner_id")}}
