"""Inbound email: match the sender's card (or create one plus an inbox lead), log the email
on the timeline, thread it by Message-ID, once per Message-ID."""

from __future__ import annotations

import hashlib
import re
import uuid
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.activities.schemas import MAX_BODY, ActivityCreate
from app.domain.inbound_email.models import EmailMessage
from app.domain.inbound_email.schemas import InboundEmail, InboundEmailResult
from app.domain.inbox import service as inbox
from app.domain.messages.models import Message
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import EmailError, normalize_email
from app.domain.shared.principal import Principal

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"[ \t]+")
# Relata's own outgoing emails carry Message-ID <relata-<message uuid>@domain>.
_OUR_MESSAGE = re.compile(r"^relata-([0-9a-f-]{36})@", re.IGNORECASE)


def clean_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def _address(raw: str, loc: list[str | int]) -> tuple[str, str | None]:
    name, addr = parseaddr(raw)
    try:
        return normalize_email(addr or raw), (name.strip() or None)
    except EmailError as exc:
        raise ValidationError.at(loc, str(exc), "email") from exc


def _participants(mail: InboundEmail, sender: str, name: str | None) -> list[dict[str, Any]]:
    people = [{"email": sender, **({"name": name[:300]} if name else {})}]
    for raw in [*mail.to, *mail.cc]:
        other_name, addr = parseaddr(raw)
        try:
            address = normalize_email(addr or raw)
        except EmailError:
            continue  # an odd recipient is kept in data, not refused
        people.append({"email": address, **({"name": other_name[:300]} if other_name else {})})
    return people[:100]


def _plain(mail: InboundEmail) -> str | None:
    body = mail.text
    if not body and mail.html:
        body = _SPACE.sub(" ", _TAG.sub(" ", mail.html)).strip()
    return body[:MAX_BODY] if body else None


async def _thread_of(session: AsyncSession, mail: InboundEmail) -> uuid.UUID:
    parents = [clean_id(p) for p in ([mail.in_reply_to] if mail.in_reply_to else [])
               + list(reversed(mail.references))]
    if parents:
        known = dict((await session.execute(select(
            EmailMessage.message_id, EmailMessage.thread_id).where(
            EmailMessage.message_id.in_(parents)))).all())
        for parent in parents:
            if parent in known:
                return known[parent]
            ours = _OUR_MESSAGE.match(parent)
            if ours:
                try:
                    sent_id = uuid.UUID(ours.group(1))
                except ValueError:
                    continue
                # A reply to an email Relata sent: the thread is named after that message.
                found = (await session.execute(select(Message.id).where(
                    Message.id == sent_id))).scalar_one_or_none()
                if found is not None:
                    return found
    return uuid.uuid4()


async def receive_email(session: AsyncSession, principal: Principal,
                        mail: InboundEmail) -> InboundEmailResult:
    message_id = clean_id(mail.message_id)
    sender, name = _address(mail.from_, ["body", "from"])
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                          {"k": f"{principal.workspace_id}:email:{message_id}"})
    seen = await session.get(EmailMessage, (principal.workspace_id, message_id))
    if seen is not None:
        activity = await session.get(Activity, (principal.workspace_id, seen.activity_id))
        data = activity.data if activity else {}
        return InboundEmailResult(
            message_id=message_id, duplicate=True, activity_id=seen.activity_id,
            contact_id=seen.contact_id, contact_created=bool(data.get("contact_created")),
            thread_id=seen.thread_id, inbox_item_id=data.get("inbox_item_id"))
    contact, created = await inbox.match_or_create_contact(session, principal, email=sender,
                                                           name=name, source="email")
    thread_id = await _thread_of(session, mail)
    data: dict[str, Any] = {
        "message_id": message_id, "thread_id": str(thread_id),
        "in_reply_to": clean_id(mail.in_reply_to) if mail.in_reply_to else None,
        "references": [clean_id(r) for r in mail.references][-20:],
        "from": mail.from_, "to": mail.to, "cc": mail.cc,
        "attachments": [a.model_dump(mode="json", exclude_none=True) for a in mail.attachments],
        "contact_created": created}
    if mail.html:
        data["html"] = mail.html
    if created:
        excerpt = (_plain(mail) or "")[:500]
        item, _ = await inbox.receive_lead(
            session, principal, channel="email", source_id=message_id[:500],
            contact_id=contact.id, contact_created=True,
            data={"from": sender, "name": name, "subject": mail.subject, "excerpt": excerpt,
                  "to": mail.to[:20], "thread_id": str(thread_id)})
        data["inbox_item_id"] = str(item.id)
    activity = await activities.create_activity(session, principal, ActivityCreate.model_validate({
        "type": "email", "direction": "in", "channel": "email", "contact_id": contact.id,
        "occurred_at": mail.date or clock.now(), "subject": mail.subject,
        "body": _plain(mail), "participants": _participants(mail, sender, name), "data": data,
        "external_id": "email:" + hashlib.sha256(message_id.encode()).hexdigest()[:40]}))
    session.add(EmailMessage(workspace_id=principal.workspace_id, message_id=message_id,
                             thread_id=thread_id, activity_id=activity.id,
                             contact_id=contact.id, in_reply_to=data["in_reply_to"],
                             received_at=activity.occurred_at))
    await session.flush()
    return InboundEmailResult(message_id=message_id, duplicate=False, activity_id=activity.id,
                              contact_id=contact.id, contact_created=created,
                              thread_id=thread_id, inbox_item_id=data.get("inbox_item_id"))
