"""Time to first response: an inbound lead or message waits until a person first calls,
emails or messages that contact (docs/decisions/0040-first-response-in-the-write-path.md).

Called from the two write paths every outbound contact goes through — logging an activity
(app/domain/activities/service.py) and queuing a message (app/domain/messages/service.py) —
so no caller can forget it. Two indexed UPDATEs on partial indexes of unanswered rows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.inbox.models import InboundMessage, InboxItem
from app.domain.shared.principal import Principal

MESSAGE_TYPES = ("email", "sms", "message")
RESPONSE_TYPES = ("call", "email", "sms", "message")
# Automatic messages (a pipeline rule's SMS, the system) are not a person's answer.
_NOT_A_PERSON = ("system", "rule")


async def activity_logged(session: AsyncSession, principal: Principal,
                          activity: Activity) -> None:
    if activity.contact_id is None:
        return
    if activity.direction == "in" and activity.type in MESSAGE_TYPES:
        session.add(InboundMessage(workspace_id=activity.workspace_id, activity_id=activity.id,
                                   contact_id=activity.contact_id, channel=activity.type,
                                   received_at=activity.occurred_at))
        await session.flush()
    elif activity.direction == "out" and activity.type in RESPONSE_TYPES:
        await responded(session, principal, activity.contact_id, activity.occurred_at)


async def responded(session: AsyncSession, principal: Principal, contact_id: uuid.UUID,
                    at: datetime) -> None:
    """`principal` contacted the card at `at`: everything it sent before that and still
    waiting gets its first response time."""
    if principal.kind in _NOT_A_PERSON:
        return
    for model in (InboxItem, InboundMessage):
        await session.execute(
            update(model)
            .where(model.workspace_id == principal.workspace_id,
                   model.contact_id == contact_id, model.first_response_at.is_(None),
                   model.received_at <= at)
            .values(first_response_at=at, first_response_seconds=func.greatest(
                0, func.floor(func.extract("epoch", at - model.received_at))))
            .execution_options(synchronize_session=False))
