"""The event feed a principal may read: restricted users see only events of the records they
can see; admins, owners and API keys see the whole workspace log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.notifications.models import Notification
from app.domain.outbox.models import Event
from app.domain.outbox.service import list_events
from app.domain.shared.principal import Principal
from app.domain.shared.records import visibility_condition
from app.domain.tasks.models import Task

# Record types whose events follow the record's visibility; events of any other type
# (users, teams, API keys, pipelines, settings) are for admins only.
OWNED_RECORDS: dict[str, Any] = {"contact": Contact, "company": Company, "deal": Deal,
                                 "task": Task, "activity": Activity}


def feed_condition(principal: Principal) -> Any:
    if principal.visible_owner_ids is None:
        return None
    # Activities are visible through the records they are about, not only their owner.
    visible = {entity: activities.visibility(principal) if model is Activity
               else visibility_condition(model, principal)
               for entity, model in OWNED_RECORDS.items()}
    parts = [and_(Event.entity_type == entity,
                  Event.entity_id.in_(select(model.id).where(visible[entity])))
             for entity, model in OWNED_RECORDS.items()]
    if principal.user_id is not None:  # a user's own notifications
        parts.append(and_(Event.entity_type == "notification",
                          Event.entity_id.in_(select(Notification.id).where(
                              Notification.user_id == principal.user_id))))
    return or_(*parts) if parts else false()


async def read_feed(session: AsyncSession, principal: Principal, *, after: str | None,
                    types: list[str] | None, limit: int) -> tuple[list[Event], str | None]:
    return await list_events(session, after=after, types=types, limit=limit,
                             condition=feed_condition(principal))
