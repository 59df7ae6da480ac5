"""Telling users things: one row per user and occasion, written in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.notifications.models import Notification
from app.domain.outbox.service import record_event
from app.domain.shared.clock import clock
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal

NOTIFICATION_TYPES = ("task_assigned", "task_reminder", "task_overdue", "deal_rotting",
                      "mention")


async def notify(session: AsyncSession, principal: Principal, *, user_ids: Iterable[uuid.UUID],
                 type: str, title: str, entity_type: str, entity_id: uuid.UUID,
                 dedup_key: str, body: str | None = None) -> list[Notification]:
    """Notify each user once per `dedup_key` (a sweep that runs twice tells nobody twice).

    Returns the notifications created now; each also writes a `notification.created` event."""
    users = list(dict.fromkeys(u for u in user_ids if u is not None))
    if not users:
        return []
    now = clock.now()
    rows = [{"workspace_id": principal.workspace_id, "id": new_id(), "user_id": user_id,
             "type": type, "title": title, "body": body, "entity_type": entity_type,
             "entity_id": entity_id, "actor": principal.actor, "dedup_key": dedup_key,
             "created_at": now, "read_at": None} for user_id in users]
    statement = insert(Notification).values(rows).on_conflict_do_nothing(
        index_elements=["workspace_id", "user_id", "dedup_key"]).returning(Notification.id)
    created_ids = list((await session.execute(statement)).scalars())
    if not created_ids:
        return []
    created = list((await session.execute(select(Notification).where(
        Notification.id.in_(created_ids)))).scalars())
    for notification in created:
        await record_event(session, principal, type="notification.created",
                           entity_type="notification", entity_id=notification.id,
                           after=notification.model_dump(mode="json",
                                                         exclude={"workspace_id"}))
    return created
