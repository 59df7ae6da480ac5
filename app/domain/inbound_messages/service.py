"""Inbound SMS and messenger messages: find the sender's card (by phone, email, or the
handle an earlier message on the same channel came from), or create one plus an inbox lead;
log the message on the timeline; once per (channel, provider message id)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactCreate
from app.domain.inbound_messages.schemas import InboundMessageIn, InboundMessageResult
from app.domain.inbox import service as inbox
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import EmailError, normalize_email, try_normalize_phone
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace


def _external_id(channel: str, message_id: str) -> str:
    digest = hashlib.sha256(f"{channel}\x00{message_id}".encode()).hexdigest()[:40]
    return f"msg:{channel}:{digest}"


async def receive_message(session: AsyncSession, principal: Principal,
                          message: InboundMessageIn) -> InboundMessageResult:
    channel = message.channel
    external_id = _external_id(channel, message.message_id)
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                          {"k": f"{principal.workspace_id}:{external_id}"})
    seen = (await session.execute(select(Activity).where(
        Activity.external_id == external_id))).scalar_one_or_none()
    if seen is not None:
        return InboundMessageResult(
            channel=channel, message_id=message.message_id, duplicate=True,
            activity_id=seen.id, contact_id=seen.contact_id,
            contact_created=bool(seen.data.get("contact_created")),
            inbox_item_id=seen.data.get("inbox_item_id"))
    sender = message.from_
    phone = email = None
    if sender.phone:
        region = (await current_workspace(session, principal)).default_region
        phone = try_normalize_phone(sender.phone, region)
        if phone is None:
            raise ValidationError.at(["body", "from", "phone"],
                                     f"not a phone number: {sender.phone!r}", "phone")
    if sender.email:
        try:
            email = normalize_email(sender.email)
        except EmailError as exc:
            raise ValidationError.at(["body", "from", "email"], str(exc), "email") from exc
    contact, created = None, False
    if sender.handle and not (phone or email):
        contact_id = (await session.execute(
            select(Activity.contact_id).where(
                Activity.channel == channel, Activity.direction == "in",
                Activity.deleted_at.is_(None), Activity.contact_id.is_not(None),
                Activity.data["sender_handle"].astext == sender.handle)
            .order_by(Activity.occurred_at.desc()).limit(1))).scalar_one_or_none()
        if contact_id is not None:
            contact = await session.get(Contact, (principal.workspace_id, contact_id))
            if contact is not None and contact.deleted_at is not None:
                contact = None
    if contact is None and (phone or email):
        contact, created = await inbox.match_or_create_contact(
            session, principal, phone=phone, email=email, name=sender.name, source=channel)
    elif contact is None:  # a handle seen for the first time: a card named after it
        contact, created = await contacts.create_contact(session, principal, ContactCreate(
            full_name=(sender.name or sender.handle or "")[:300], source=channel)), True
    data: dict[str, Any] = {"message_id": message.message_id, "to": message.to,
                            "sender_handle": sender.handle, "sender_name": sender.name,
                            "attachments": [a.model_dump(mode="json", exclude_none=True)
                                            for a in message.attachments],
                            "contact_created": created}
    if created:
        item, _ = await inbox.receive_lead(
            session, principal, channel="sms" if channel == "sms" else "message",
            source_id=f"{channel}:{message.message_id}"[:500], contact_id=contact.id,
            contact_created=True,
            data={"channel": channel, "from": sender.model_dump(exclude_none=True),
                  "excerpt": (message.text or "")[:500], "to": message.to})
        data["inbox_item_id"] = str(item.id)
    activity = await activities.create_activity(session, principal, ActivityCreate.model_validate({
        "type": "sms" if channel == "sms" else "message", "direction": "in",
        "channel": channel, "contact_id": contact.id,
        "occurred_at": message.date or clock.now(), "body": message.text,
        "participants": [{k: v for k, v in {"name": sender.name, "phone": phone,
                                             "email": email}.items() if v}],
        "data": data, "external_id": external_id}))
    return InboundMessageResult(channel=channel, message_id=message.message_id,
                                duplicate=False, activity_id=activity.id,
                                contact_id=contact.id, contact_created=created,
                                inbox_item_id=data.get("inbox_item_id"))
