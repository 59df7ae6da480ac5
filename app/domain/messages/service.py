"""Messages: queue an email or SMS (now or at `send_at`), read and list them.

Queuing writes the message — rendered, addressed, with its stable `message_key` — in the
caller's transaction, with status `queued` (or `scheduled` for later) and a
`message.queued` event; the worker (app/workers/messages.py, delivery.py here) sends it. So
a message exists exactly when the change that asked for it commits: a rolled-back request
or rule run sends nothing.

Visibility follows the contact: whoever sees the card sees the messages sent to it; a
message to an explicit address without a card is seen by admins and by whoever queued it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.documents.service import get_document
from app.domain.inbox import responses as inbox_responses
from app.domain.messages.models import Message
from app.domain.messages.schemas import MessageRead
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import NotFoundError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.normalize import EmailError, PhoneError, normalize_email, normalize_phone
from app.domain.shared.principal import Principal
from app.domain.templates.sandbox import render_text
from app.domain.templates.service import require_template
from app.domain.templates.variables import record_variables
from app.domain.workspaces.context import current_workspace

ENTITY = "message"
CHANNELS = ("email", "sms")
_RECORD_KEYS = ("contact_id", "company_id", "deal_id", "task_id")

LIST_SPEC = ListSpec(
    id_column=Message.id,
    fields={
        "id": FilterField(Message.id, "uuid"),
        "channel": FilterField(Message.channel, "str"),
        "status": FilterField(Message.status, "str"),
        "contact_id": FilterField(Message.contact_id, "uuid"),
        "deal_id": FilterField(Message.deal_id, "uuid"),
        "template_id": FilterField(Message.template_id, "uuid"),
        "to": FilterField(Message.to, "str"),
        "send_at": FilterField(Message.send_at, "datetime"),
        "sent_at": FilterField(Message.sent_at, "datetime"),
        "created_by": FilterField(Message.created_by, "str"),
        "created_at": FilterField(Message.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Message.updated_at, "datetime", sortable=True),
    },
)


def to_read(message: Message) -> MessageRead:
    return MessageRead.model_validate(message, from_attributes=True)


def visible_condition(principal: Principal) -> ColumnElement[bool]:
    if principal.visible_owner_ids is None:
        return true()
    cards = select(Contact.id).where(records.visibility_condition(Contact, principal))
    return or_(Message.contact_id.in_(cards),
               and_(Message.contact_id.is_(None), Message.created_by == principal.actor))


async def _recipient(session: AsyncSession, principal: Principal, channel: str,
                     contact: Contact | None, to: str | None) -> str:
    if to is not None:
        try:
            if channel == "email":
                return normalize_email(to)
            region = (await current_workspace(session, principal)).default_region
            return normalize_phone(to, region)
        except (EmailError, PhoneError) as exc:
            raise ValidationError.at(["body", "to"], str(exc)) from exc
    if contact is None:
        raise ValidationError.at(["body", "to"], "give a contact_id or an explicit `to`")
    if channel == "email":
        found = next((e.get("email") for e in contact.emails if e.get("email")), None)
        what = "email address"
    else:
        found = next((p.get("e164") for p in contact.phones if p.get("e164")), None)
        what = "phone number"
    if not found:
        raise ValidationError.at(["body", "contact_id"],
                                 f"the contact {contact.id} has no {what}; give `to`")
    return str(found)


async def _variables(session: AsyncSession, principal: Principal, contact_id: uuid.UUID | None,
                     deal_id: uuid.UUID | None, variables_from: dict[str, Any] | None
                     ) -> dict[str, Any]:
    given = dict(variables_from or {})
    ids: dict[str, Any] = {"contact_id": contact_id, "deal_id": deal_id}
    for key in _RECORD_KEYS:
        if given.get(key) is not None:
            ids[key] = uuid.UUID(str(given.pop(key)))
        else:
            given.pop(key, None)
    extra = given.pop("variables", None) or {}
    variables = await record_variables(session, principal, **ids)
    return {**variables, **given, **extra}


async def queue_message(session: AsyncSession, principal: Principal, *, channel: str,
                        contact_id: uuid.UUID | None = None, to: str | None = None,
                        template_id: uuid.UUID | None = None, subject: str | None = None,
                        body: str | None = None, deal_id: uuid.UUID | None = None,
                        send_at: datetime | None = None,
                        document_ids: Iterable[uuid.UUID] = (),
                        variables_from: dict[str, Any] | None = None) -> Message:
    """Write an email or SMS for the worker to send, rendered now with the variables of the
    contact and the deal. `variables_from` may name other records whose variables the
    template sees (`contact_id`, `company_id`, `deal_id`, `task_id` — e.g. the task a rule
    acts on) and carry extra variables (any other key, or a `variables` dict).

    422 (ValidationError) when the contact has no email / phone and no `to` is given, when
    both or neither of a template and a body are given, for a template of another channel,
    attachments on an SMS, or a template that fails to render; 404 for a contact, deal or
    document the caller cannot see."""
    principal.require_write()
    if channel not in CHANNELS:
        raise ValidationError.at(["body", "channel"], "use email or sms")
    contact = await records.get_visible(session, Contact, principal, contact_id) \
        if contact_id is not None else None
    if deal_id is not None:
        await records.get_visible(session, Deal, principal, deal_id)
    recipient = await _recipient(session, principal, channel, contact, to)
    if template_id is not None:
        if body is not None or subject is not None:
            raise ValidationError.at(["body", "template_id"],
                                     "give a template or a subject and body, not both")
        template = await require_template(session, principal, template_id, (channel,),
                                          ["body", "template_id"])
        subject, body, loc = template.subject, template.body, ["template"]
    else:
        loc = ["body"]
    if body is None:
        raise ValidationError.at(["body", "body"], "give a body or a template_id")
    if channel == "sms" and subject is not None and template_id is None:
        raise ValidationError.at(["body", "subject"], "an SMS has no subject")
    attachments = list(dict.fromkeys(document_ids))
    if attachments and channel != "email":
        raise ValidationError.at(["body", "document_ids"], "only emails carry attachments")
    for index, document_id in enumerate(attachments):
        try:
            await get_document(session, principal, document_id)
        except NotFoundError:
            raise ValidationError.at(["body", "document_ids", index],
                                     f"no such document {document_id}") from None
    variables = await _variables(session, principal, contact_id, deal_id, variables_from)
    rendered_subject = render_text(subject, variables, loc=[*loc, "subject"]) \
        if subject is not None and channel == "email" else None
    rendered_body = render_text(body, variables, loc=[*loc, "body"])
    if channel == "email" and not (rendered_subject or "").strip():
        raise ValidationError.at([*loc, "subject"], "an email needs a subject")
    now = clock.now()
    later = send_at is not None and send_at > now
    message = Message(workspace_id=principal.workspace_id, channel=channel,
                      contact_id=contact_id, deal_id=deal_id, template_id=template_id,
                      to=recipient, subject=rendered_subject, body=rendered_body,
                      document_ids=attachments, status="scheduled" if later else "queued",
                      send_at=send_at, next_attempt_at=send_at if later else now,
                      message_key="", created_by=principal.actor, updated_by=principal.actor)
    message.message_key = f"relata-{message.id}"
    session.add(message)
    await session.flush()
    await record_event(session, principal, type="message.queued", entity_type=ENTITY,
                       entity_id=message.id, after=records.snapshot(message))
    if contact_id is not None:  # a person writing to the card answers what it sent
        await inbox_responses.responded(session, principal, contact_id, now)
    return message


async def get_message(session: AsyncSession, principal: Principal,
                      message_id: uuid.UUID) -> Message:
    message = (await session.execute(select(Message).where(
        Message.id == message_id, Message.deleted_at.is_(None),
        visible_condition(principal)))).scalar_one_or_none()
    if message is None:
        raise NotFoundError(f"message {message_id} not found")
    return message


async def list_messages(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                        page: Page) -> tuple[list[Message], str | None]:
    query = select(Message).where(Message.deleted_at.is_(None), visible_condition(principal),
                                  *conditions)
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))
