"""The inbox: one list of incoming leads from every channel, accepted into a deal, linked to
an existing card, or declined.

Channels (telephony, inbound email, website forms, messages) call `match_or_create_contact`
to find the card by a normalized phone or email (or create one holding only what was given)
and `receive_lead` to record the lead once per source event. Visibility follows the card:
whoever sees the contact sees its inbox items."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, select, true, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact, ContactIdentity
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.inbox.models import INBOX_CHANNELS, InboxItem
from app.domain.inbox.schemas import InboxAccept, InboxItemRead
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.normalize import EmailError, normalize_email, try_normalize_phone
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import workspace_basics

ENTITY = "inbox_item"
MAX_SOURCE_ID = 500

LIST_SPEC = ListSpec(
    id_column=InboxItem.id,
    fields={
        "id": FilterField(InboxItem.id, "uuid"),
        "channel": FilterField(InboxItem.channel, "str"),
        "status": FilterField(InboxItem.status, "str"),
        "contact_id": FilterField(InboxItem.contact_id, "uuid"),
        "deal_id": FilterField(InboxItem.deal_id, "uuid"),
        "source_id": FilterField(InboxItem.source_id, "str"),
        "contact_created": FilterField(InboxItem.contact_created, "bool"),
        "received_at": FilterField(InboxItem.received_at, "datetime", sortable=True),
        "first_response_at": FilterField(InboxItem.first_response_at, "datetime"),
        "created_at": FilterField(InboxItem.created_at, "datetime", sortable=True),
        "updated_at": FilterField(InboxItem.updated_at, "datetime", sortable=True),
    },
)


def to_read(item: InboxItem) -> InboxItemRead:
    return InboxItemRead.model_validate(item, from_attributes=True)


def visible_condition(principal: Principal) -> ColumnElement[bool]:
    if principal.visible_owner_ids is None:
        return true()
    return InboxItem.contact_id.in_(select(Contact.id).where(
        records.visibility_condition(Contact, principal)))


# Matching the card

async def _identity_keys(session: AsyncSession, principal: Principal, phone: str | None,
                         email: str | None) -> tuple[str | None, str | None]:
    region = (await workspace_basics(session, principal)).default_region \
        if phone is not None and phone.strip() else ""
    return identity_keys(region, phone, email)


def identity_keys(region: str, phone: str | None, email: str | None
                  ) -> tuple[str | None, str | None]:
    """The lead's phone (E.164) and email as the card's identities hold them; 422 for one
    that does not parse."""
    e164 = address = None
    if phone is not None and phone.strip():
        e164 = try_normalize_phone(phone, region)
        if e164 is None:
            raise ValidationError.at(["body", "phone"], f"not a valid phone number: {phone!r}",
                                     "phone")
    if email is not None and email.strip():
        try:
            address = normalize_email(email)
        except EmailError as exc:
            raise ValidationError.at(["body", "email"], str(exc), "email") from exc
    return e164, address


async def _enrich(session: AsyncSession, principal: Principal, contact: Contact,
                  e164: str | None, address: str | None) -> None:
    """The matched card learns the other identity the lead brought, when nobody holds it:
    the next email from this caller finds the same card."""
    patch: dict[str, Any] = {}
    if e164 and e164 not in {p["e164"] for p in contact.phones}:
        patch["phones"] = [{"number": p["original"], "label": p.get("label")}
                           for p in contact.phones] + [e164]
    if address and address not in {e["email"] for e in contact.emails}:
        patch["emails"] = [{"email": e["email"], "label": e.get("label")}
                           for e in contact.emails] + [address]
    if not patch or not principal.can_see_owner(contact.owner_id):
        return
    try:
        async with session.begin_nested():
            await contacts.update_contact(session, principal, contact.id,
                                          ContactUpdate.model_validate(patch))
    except (DuplicateError, NotFoundError, ValidationError):
        pass  # held by another card meanwhile: the match stands, the card stays as it was


async def _cards_by_identities(session: AsyncSession, workspace_id: uuid.UUID,
                               identities: set[tuple[str, str]]
                               ) -> dict[tuple[str, str], Contact]:
    """The cards holding these (kind, value) identities, loaded in the same statement as
    the identity lookup (a join: one round trip instead of two)."""
    rows = (await session.execute(
        select(ContactIdentity.kind, ContactIdentity.value, Contact)
        .join(Contact, (Contact.workspace_id == ContactIdentity.workspace_id)
              & (Contact.id == ContactIdentity.contact_id))
        .where(ContactIdentity.workspace_id == workspace_id,
               tuple_(ContactIdentity.kind, ContactIdentity.value).in_(sorted(identities))))
    ).all()
    return {(r.kind, r.value): r.Contact for r in rows}


async def match_or_create_contact(session: AsyncSession, principal: Principal, *,
                                  phone: str | None = None, email: str | None = None,
                                  name: str | None = None, source: str | None = None,
                                  new_card: dict[str, Any] | None = None
                                  ) -> tuple[Contact, bool]:
    """Find the card by normalized phone or email (any common format), else create one
    holding only what was given. Returns (contact, created).

    When the phone and the email belong to two different cards the phone wins
    (docs/decisions/0038-inbox-matching-prefers-the-phone.md); when only one matches, the
    card also gets the other identity if nobody holds it. 422 for an unparseable phone or
    email, or when neither is given. `new_card`: more fields for a card it creates (a form's
    mapped fields), so the card is written once."""
    principal.require_write()
    e164, address = await _identity_keys(session, principal, phone, email)
    if e164 is None and address is None:
        raise ValidationError.at(["body"], "a lead needs a phone or an email")
    for _attempt in range(2):
        wanted = {k for k in (("phone", e164), ("email", address)) if k[1]}
        found = await _cards_by_identities(session, principal.workspace_id, wanted)  # type: ignore[arg-type]
        contact = found.get(("phone", e164)) if e164 else None
        if contact is None and address:
            contact = found.get(("email", address))
        if contact is not None and contact.deleted_at is None:
            await _enrich(session, principal, contact,
                          None if ("phone", e164) in found else e164,
                          None if ("email", address) in found else address)
            return contact, False
        try:
            async with session.begin_nested():
                contact = await contacts.create_contact(
                    session, principal, ContactCreate.model_validate(
                        lead_card(e164, address, name, source, new_card)))
            return contact, True
        except DuplicateError:
            continue  # a concurrent request created the card first: match it
    raise ConflictError("the card for this lead is being changed concurrently; retry")


def lead_card(e164: str | None, address: str | None, name: str | None, source: str | None,
              more: dict[str, Any] | None = None) -> dict[str, Any]:
    """The new card a lead makes: its phone or email, the name and source it came with."""
    data: dict[str, Any] = {"phones": [e164] if e164 else None,
                            "emails": [address] if address else None}
    if name and name.strip():
        data["full_name"] = name.strip()[:600]
    if source:
        data["source"] = source[:200]
    return {**{k: v for k, v in data.items() if v is not None}, **(more or {})}


# Receiving a lead

async def receive_lead(session: AsyncSession, principal: Principal, *, channel: str,
                       source_id: str, contact_id: uuid.UUID, data: dict[str, Any],
                       deal_id: uuid.UUID | None = None, accepted: bool = False,
                       contact_created: bool = False) -> tuple[InboxItem, bool]:
    """Record an incoming lead; idempotent per (workspace, channel, source_id): a repeat
    returns the existing item and False. `accepted=True` records a lead that is already a
    deal (a form with a target pipeline), so the inbox still shows every lead. Writes
    `inbox.item_received`."""
    principal.require_write()
    if channel not in INBOX_CHANNELS:
        raise ValidationError.at(["body", "channel"], f"one of {', '.join(INBOX_CHANNELS)}")
    if not source_id or len(source_id) > MAX_SOURCE_ID or "\x00" in source_id:
        raise ValidationError.at(["body", "source_id"],
                                 f"1 to {MAX_SOURCE_ID} characters, no NUL")
    if accepted and deal_id is None:
        raise ValidationError.at(["body", "deal_id"], "an accepted lead names its deal")
    contact = await session.get(Contact, (principal.workspace_id, contact_id))
    if contact is None or contact.deleted_at is not None:
        raise ValidationError.at(["body", "contact_id"], "no such contact")
    item = new_item(principal, channel=channel, source_id=source_id, contact_id=contact_id,
                    data=data, deal_id=deal_id, accepted=accepted,
                    contact_created=contact_created)
    table = InboxItem.__table__
    values = {c.name: getattr(item, c.name) for c in table.columns}
    # One Core statement (no ORM bulk path, no reload): every column is given, so the stored
    # row is `item` as built here; nothing comes back when the event was already recorded
    # (by an earlier or a concurrent delivery), and then the first item is the answer.
    inserted = (await session.execute(
        pg_insert(table).values(**values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "channel", "source_id"])
        .returning(table.c.id))).scalar_one_or_none()
    if inserted is None:
        again = await _by_source(session, channel, source_id)
        assert again is not None
        return again, False
    await record_event(session, principal, type="inbox.item_received", entity_type=ENTITY,
                       entity_id=item.id, after=records.snapshot(item))
    return item, True


def new_item(principal: Principal, *, channel: str, source_id: str, contact_id: uuid.UUID,
             data: dict[str, Any], deal_id: uuid.UUID | None, accepted: bool,
             contact_created: bool) -> InboxItem:
    """The item `receive_lead` writes, every column given (checked by the caller)."""
    now = clock.now()
    return InboxItem(workspace_id=principal.workspace_id, channel=channel, source_id=source_id,
                     status="accepted" if accepted else "new", contact_id=contact_id,
                     contact_created=contact_created, deal_id=deal_id, data=data,
                     received_at=now, created_at=now, updated_at=now,
                     decided_at=now if accepted else None,
                     decided_by=principal.actor if accepted else None,
                     created_by=principal.actor, updated_by=principal.actor)


async def _by_source(session: AsyncSession, channel: str, source_id: str) -> InboxItem | None:
    return (await session.execute(select(InboxItem).where(
        InboxItem.channel == channel, InboxItem.source_id == source_id))).scalar_one_or_none()


# Reading

async def get_item(session: AsyncSession, principal: Principal, item_id: uuid.UUID, *,
                   for_update: bool = False) -> InboxItem:
    query = select(InboxItem).where(InboxItem.id == item_id, InboxItem.deleted_at.is_(None),
                                    visible_condition(principal))
    if for_update:
        query = query.with_for_update(of=InboxItem)
    item = (await session.execute(query)).scalar_one_or_none()
    if item is None:
        raise NotFoundError(f"inbox item {item_id} not found")
    return item


async def list_items(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                     page: Page) -> tuple[list[InboxItem], str | None]:
    query = select(InboxItem).where(InboxItem.deleted_at.is_(None),
                                    visible_condition(principal), *conditions)
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


# Deciding

def _require_new(item: InboxItem, action: str) -> None:
    if item.status != "new":
        raise ConflictError(f"inbox item {item.id} is {item.status}; only a new item can be "
                            f"{action}", extra={"current_status": item.status})


async def _decided(session: AsyncSession, principal: Principal, item: InboxItem,
                   before: dict[str, Any], status: str) -> InboxItem:
    item.status = status
    item.decided_at = clock.now()
    item.decided_by = principal.actor
    records.touch(item, principal)
    await session.flush()
    await record_event(session, principal, type=f"inbox.item_{status}", entity_type=ENTITY,
                       entity_id=item.id, before=before, after=records.snapshot(item))
    return item


def _default_title(contact: Contact, item: InboxItem) -> str:
    who = contact.full_name or next((p["e164"] for p in contact.phones), None) \
        or next((e["email"] for e in contact.emails), None) or "lead"
    return f"{who} ({item.channel})"[:300]


async def accept_item(session: AsyncSession, principal: Principal, item_id: uuid.UUID,
                      data: InboxAccept) -> InboxItem:
    """A new lead becomes a deal on its card, in the chosen pipeline and stage (default:
    the default pipeline's first open stage). 409 unless the item is new."""
    principal.require_write()
    item = await get_item(session, principal, item_id, for_update=True)
    _require_new(item, "accepted")
    before = records.snapshot(item)
    contact = await contacts.get_contact(session, principal, item.contact_id)
    owner_id = data.owner_id or principal.user_id
    fields = {"title": data.title or _default_title(contact, item),
              "pipeline_id": data.pipeline_id, "stage_id": data.stage_id,
              "owner_id": owner_id, "contact_ids": [contact.id],
              "source": contact.source or item.channel}
    deal = await deals.create_deal(session, principal, DealCreate.model_validate(
        {k: v for k, v in fields.items() if v is not None}))
    if contact.owner_id is None and owner_id is not None:
        await contacts.update_contact(session, principal, contact.id,
                                      ContactUpdate(owner_id=owner_id))
    item.deal_id = deal.id
    return await _decided(session, principal, item, before, "accepted")


async def link_item(session: AsyncSession, principal: Principal, item_id: uuid.UUID,
                    contact_id: uuid.UUID) -> InboxItem:
    """A new lead belongs to an existing card. A card the lead itself created (an unknown
    number) is merged into that card, so its phone, call and tasks move over. 409 unless
    the item is new; 422 for a card the caller cannot see."""
    principal.require_write()
    item = await get_item(session, principal, item_id, for_update=True)
    _require_new(item, "linked")
    try:
        target = await contacts.get_contact(session, principal, contact_id)
    except NotFoundError:
        raise ValidationError.at(["body", "contact_id"], "no such contact") from None
    before = records.snapshot(item)
    source_id = item.contact_id
    if source_id != target.id:
        source = await session.get(Contact, (principal.workspace_id, source_id))
        if item.contact_created and source is not None and source.deleted_at is None:
            await contacts.merge_contacts(session, principal, target.id, source_id)
            await session.execute(
                update(InboxItem).where(InboxItem.contact_id == source_id,
                                        InboxItem.id != item.id)
                .values(contact_id=target.id).execution_options(synchronize_session=False))
        item.contact_id = target.id
    return await _decided(session, principal, item, before, "linked")


async def decline_item(session: AsyncSession, principal: Principal, item_id: uuid.UUID,
                       reason: str) -> InboxItem:
    principal.require_write()
    item = await get_item(session, principal, item_id, for_update=True)
    _require_new(item, "declined")
    before = records.snapshot(item)
    item.decline_reason = reason
    return await _decided(session, principal, item, before, "declined")
