"""What a rule sees: the record an event is about, its related records and the event.

The context is plain JSON data built by `templates.variables.record_variables` (the same
variables a template sees), plus `activity`, `stage`, `pipeline`, the owner's `team_ids` and
the `event` (type, before, after, changed, actor). Conditions and title templates read it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.outbox.models import Event
from app.domain.shared import records
from app.domain.shared.errors import NotFoundError
from app.domain.shared.principal import Principal
from app.domain.templates.variables import record_variables
from app.domain.workspaces.models import TeamMember

# Events about these entities carry a record a rule can act on.
RECORD_TYPES = ("contact", "company", "deal", "task", "activity")


def event_view(event: Event) -> dict[str, Any]:
    return {"id": str(event.id), "type": event.type, "entity_type": event.entity_type,
            "entity_id": str(event.entity_id), "actor": event.actor,
            "before": event.before or {}, "after": event.after or {},
            "changed": list(event.changed or []), "depth": event.depth,
            "occurred_at": event.occurred_at.isoformat()}


async def load_context(session: AsyncSession, principal: Principal, *, entity_type: str,
                       entity_id: uuid.UUID, event: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
    ids: dict[str, uuid.UUID | None] = {}
    activity: dict[str, Any] | None = None
    if entity_type == "activity":
        row = (await session.execute(select(Activity).where(
            Activity.id == entity_id))).scalar_one_or_none()
        if row is not None:
            activity = records.snapshot(row)
            ids = {"contact_id": row.contact_id, "company_id": row.company_id,
                   "deal_id": row.deal_id}
    elif entity_type in RECORD_TYPES:
        ids = {f"{entity_type}_id": entity_id}
    try:
        ctx = await record_variables(session, principal, **ids) if ids else {}
    except NotFoundError:  # the record was deleted since: the event is all there is
        ctx = {}
    ctx["activity"] = activity
    deal = ctx.get("deal") or {}
    ctx["stage"], ctx["pipeline"] = deal.get("stage"), deal.get("pipeline")
    owner = ctx.get("owner")
    if owner:
        owner["team_ids"] = [str(t) for t in (await session.execute(
            select(TeamMember.team_id).where(TeamMember.user_id == uuid.UUID(owner["id"]))
        )).scalars()]
    ctx["event"] = event
    return ctx
