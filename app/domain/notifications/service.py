"""Telling users things: one row per user and occasion, written in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.notifications.models import Notification
from app.domain.outbox.service import record_event
from app.domain.shared.clock import clock
from app.domain.shared.errors import ForbiddenError, NotFoundError
from app.domain.shared.ids import new_id
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal

NOTIFICATION_TYPES = ("task_assigned", "task_reminder", "task_overdue", "deal_rotting",
                      "mention", "rule", "webhook")


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
    # A Core INSERT, and the created rows rebuilt from the values sent (no read back).
    table = Notification.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(rows).on_conflict_do_nothing(
        index_elements=["workspace_id", "user_id", "dedup_key"]).returning(table.c.id)
    created_ids = set((await session.execute(statement)).scalars())
    if not created_ids:
        return []
    created = [Notification(**row) for row in rows if row["id"] in created_ids]
    for notification in created:
        await record_event(session, principal, type="notification.created",
                           entity_type="notification", entity_id=notification.id,
                           after=notification.model_dump(mode="json",
                                                         exclude={"workspace_id"}))
    return created


# Reading: a user sees only their own notifications; anyone else's is "not found".

LIST_SPEC = ListSpec(
    id_column=Notification.id,
    default_sort="-id",  # ids are time-ordered: newest first
    fields={
        "id": FilterField(Notification.id, "uuid", sortable=True),
        "type": FilterField(Notification.type, "str"),
        "entity_type": FilterField(Notification.entity_type, "str"),
        "entity_id": FilterField(Notification.entity_id, "uuid"),
        "read_at": FilterField(Notification.read_at, "datetime"),
        "created_at": FilterField(Notification.created_at, "datetime"),
    },
)


def _user_of(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise ForbiddenError("notifications belong to users: call with a user's access token")
    return principal.user_id


async def list_notifications(session: AsyncSession, principal: Principal, *,
                             unread: bool | None, conditions: list[Any], page: Page
                             ) -> tuple[list[Notification], str | None]:
    query = select(Notification).where(Notification.user_id == _user_of(principal),
                                       *conditions)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def get_notification(session: AsyncSession, principal: Principal,
                           notification_id: uuid.UUID, *, for_update: bool = False
                           ) -> Notification:
    query = select(Notification).where(Notification.id == notification_id,
                                       Notification.user_id == _user_of(principal))
    if for_update:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"notification {notification_id} not found")
    return found


async def unread_count(session: AsyncSession, principal: Principal) -> int:
    return (await session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == _user_of(principal), Notification.read_at.is_(None)))
    ).scalar_one()


async def mark_read(session: AsyncSession, principal: Principal,
                    notification_id: uuid.UUID) -> Notification:
    """Idempotent: reading a read notification keeps its first read time."""
    notification = await get_notification(session, principal, notification_id,
                                          for_update=True)
    if notification.read_at is None:
        notification.read_at = clock.now()
        await record_event(session, principal, type="notification.read",
                           entity_type="notification", entity_id=notification.id,
                           before={"read_at": None},
                           after={"read_at": notification.read_at.isoformat()})
    return notification


async def mark_all_read(session: AsyncSession, principal: Principal) -> int:
    """Everything of the caller's that is unread becomes read now; returns how many."""
    now = clock.now()
    ids = list((await session.execute(
        update(Notification).where(Notification.user_id == _user_of(principal),
                                   Notification.read_at.is_(None))
        .values(read_at=now).returning(Notification.id)
        .execution_options(synchronize_session=False))).scalars())
    for notification_id in ids:
        await record_event(session, principal, type="notification.read",
                           entity_type="notification", entity_id=notification_id,
                           before={"read_at": None}, after={"read_at": now.isoformat()})
    return len(ids)
