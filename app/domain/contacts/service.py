"""Contacts: the customer card. Create, read, list, update, delete, lookup, merge."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    Text,
    Uuid,
    bindparam,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DriverInsert, driver_connection
from app.domain.activities.models import Activity
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact, ContactIdentity
from app.domain.contacts.schemas import ContactCreate, ContactFields, ContactRead, ContactUpdate
from app.domain.deals import scoring
from app.domain.deals.models import Deal, DealContact
from app.domain.outbox.service import record_created_events, record_event
from app.domain.shared import records
from app.domain.shared.cardfields import (
    check_choice,
    normalize_emails,
    normalize_phones,
    normalize_tags,
    search_blob,
    validated_custom_fields,
)
from app.domain.shared.clock import clock
from app.domain.shared.errors import (
    DomainError,
    DuplicateError,
    NotFoundError,
    ValidationError,
)
from app.domain.shared.listing import FilterField, ListSpec, Page, Related, paginate
from app.domain.shared.normalize import (
    fold_for_search,
    is_valid_timezone,
    local_time,
    normalize_email,
    normalize_name,
    timezone_for_phone,
    try_normalize_phone,
)
from app.domain.shared.principal import Principal
from app.domain.shared.writecache import lookups
from app.domain.tasks.models import Task
from app.domain.workspaces.context import cached_basics, current_workspace, workspace_basics
from app.domain.workspaces.models import Workspace
from app.domain.workspaces.service import require_users

ENTITY = "contact"
_PHONE_PUNCTUATION = set(" +-().")

COMPANY_FIELDS = {
    "name": FilterField(Company.name, "str"),
    "kind": FilterField(Company.kind, "str"),
    "domain": FilterField(Company.domain, "str"),
    "tags": FilterField(Company.tags, "array"),
    "owner_id": FilterField(Company.owner_id, "uuid"),
}

LIST_SPEC = ListSpec(
    id_column=Contact.id,
    custom_fields_column=Contact.custom_fields, custom_fields_object="contact",
    fields={
        "id": FilterField(Contact.id, "uuid"),
        "first_name": FilterField(Contact.first_name, "str"),
        "last_name": FilterField(Contact.last_name, "str"),
        "full_name": FilterField(Contact.full_name, "str", sortable=True),
        "status": FilterField(Contact.status, "str", sortable=True),
        "kind": FilterField(Contact.kind, "str"),
        "owner_id": FilterField(Contact.owner_id, "uuid"),
        "company_id": FilterField(Contact.company_id, "uuid"),
        "source": FilterField(Contact.source, "str"),
        "timezone": FilterField(Contact.timezone, "str"),
        "birthday": FilterField(Contact.birthday, "date"),
        "tags": FilterField(Contact.tags, "array"),
        "external_id": FilterField(Contact.external_id, "str"),
        "created_at": FilterField(Contact.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Contact.updated_at, "datetime", sortable=True),
    },
    related={"company": Related(COMPANY_FIELDS, lambda cond: Contact.company_id.in_(
        select(Company.id).where(Company.deleted_at.is_(None), cond)))},
)


_READ_FIELDS = tuple(name for name in ContactRead.model_fields if name != "local_time")


def to_read(contact: Contact) -> ContactRead:
    # Straight from the attributes: a JSON dump first would convert every row twice.
    data = {name: getattr(contact, name) for name in _READ_FIELDS}
    data["local_time"] = local_time(contact.timezone, clock.now())
    return ContactRead.model_validate(data)


# The two reads a frontend and a phone make all day, as prepared statements on the driver
# connection: the ORM's statement building and object loading cost more than the query
# (bench/RESULTS.md, "Contacts"). RLS scopes them to the workspace, as it does every query.
_COLUMNS = ", ".join(f"c.{name}" for name in _READ_FIELDS)
_BY_ID = f"select {_COLUMNS} from contacts c where c.id = $1 and c.deleted_at is null"
# The card in one statement outside any transaction: the function sets the workspace for
# that statement alone (decision 0067).
_CARD = f"select {_COLUMNS} from relata_contact_card($1, $2) c"
_BY_IDENTITY = (f"select {_COLUMNS} from contact_identities i join contacts c"
                " on c.workspace_id = i.workspace_id and c.id = i.contact_id"
                " where i.kind = $1 and i.value = $2 and c.deleted_at is null")
# the same in one statement that sets its own workspace (migration 0011, decision 0069)
_LOOKUP = f"select {_COLUMNS} from relata_contact_by_identity($1, $2, $3) c"


def _row_data(row: Any) -> dict[str, Any]:
    """A stored row as `ContactRead`'s fields, for one validation of a card or a whole page."""
    data = dict(row.items())
    data["local_time"] = local_time(data["timezone"], clock.now())
    return data


def _row_read(row: Any) -> ContactRead:
    return ContactRead.model_validate(_row_data(row))


async def read_contact(session: AsyncSession, principal: Principal,
                       contact_id: uuid.UUID) -> ContactRead:
    """`get_contact` for a response: the live card as the API shows it, read by one prepared
    statement on the session's driver connection, in its transaction."""
    conn = await driver_connection(session)
    return _visible_read(await conn.fetchrow(_BY_ID, contact_id), principal, contact_id)


async def read_contact_alone(conn: asyncpg.Connection, principal: Principal,
                             contact_id: uuid.UUID) -> ContactRead:
    """`read_contact` as one statement on a driver connection in no transaction, which sets
    the principal's workspace for itself: one round trip instead of three (REST's GET on
    `deps.driver_context(one_statement=True)`, decision 0067)."""
    row = await conn.fetchrow(_CARD, principal.workspace_id, contact_id)
    return _visible_read(row, principal, contact_id)


def _visible_read(row: Any, principal: Principal, contact_id: uuid.UUID) -> ContactRead:
    if row is None or not principal.can_see_owner(row["owner_id"]):
        raise NotFoundError(f"contact {contact_id} not found")
    return _row_read(row)


def _compose_full_name(first: str | None, middle: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, middle, last) if p)


async def _apply_fields(session: AsyncSession, principal: Principal, contact: Contact,
                        data: ContactFields, *, creating: bool) -> None:
    """Validate and normalize `data` (merge-patch) onto `contact`."""
    workspace = await current_workspace(session, principal)
    given = data.model_dump(exclude_unset=True)
    apply_own_fields(contact, given, data, workspace, principal, creating=creating)
    if given.get("owner_id") is not None:
        await require_users(session, [given["owner_id"]], ["body", "owner_id"])
    if given.get("company_id") is not None:
        await _require_company(session, principal, given["company_id"])
    if "custom_fields" in given or creating:
        contact.custom_fields = await validated_custom_fields(
            session, "contact", given.get("custom_fields"), region=workspace.default_region,
            existing=contact.custom_fields, enforce_required=principal.fills_required_fields)
    refresh_search_text(contact)


def apply_own_fields(contact: Contact, given: dict[str, Any], data: ContactFields,
                     workspace: Workspace, principal: Principal, *, creating: bool) -> None:
    """The part of `_apply_fields` that reads nothing: every field but the checks of the
    owner and the company and the custom fields (a writer below the ORM that has read the
    workspace does the rest itself, decision 0065)."""
    region = workspace.default_region
    for name in ("first_name", "last_name", "middle_name"):
        if name in given:
            setattr(contact, name, normalize_name(given[name]))
    if "full_name" in given:
        contact.full_name = normalize_name(given["full_name"]) or ""
    if {"first_name", "last_name", "middle_name"} & set(given) and "full_name" not in given:
        contact.full_name = _compose_full_name(contact.first_name, contact.middle_name,
                                               contact.last_name)
    if "phones" in given:
        old_phones = contact.phones
        contact.phones = normalize_phones(data.phones or [], region)
        # A zone that came from the old first phone follows the number; one given stays.
        if "timezone" not in given and old_phones and contact.timezone == timezone_for_phone(
                old_phones[0]["e164"], workspace.timezone):
            contact.timezone = None
    if "emails" in given:
        contact.emails = normalize_emails(data.emails or [])
    if "address" in given:
        contact.address = data.address.model_dump(exclude_none=True) if data.address else None
    if "timezone" in given:
        if given["timezone"] is not None and not is_valid_timezone(given["timezone"]):
            raise ValidationError.at(["body", "timezone"], "unknown IANA time zone")
        contact.timezone = given["timezone"]
    if contact.timezone is None and contact.phones:
        contact.timezone = timezone_for_phone(contact.phones[0]["e164"], workspace.timezone)
    settings = workspace.settings
    if given.get("status") is not None:
        check_choice(given["status"], settings["contact_statuses"], "status")
        contact.status = given["status"]
    elif creating:
        contact.status = settings["contact_statuses"][0]
    if given.get("kind") is not None:
        check_choice(given["kind"], settings["contact_kinds"], "kind")
        contact.kind = given["kind"]
    elif creating:
        contact.kind = settings["contact_kinds"][0]
    if "owner_id" in given:
        contact.owner_id = given["owner_id"]
    elif creating and principal.user_id:
        contact.owner_id = principal.user_id
    if "company_id" in given:
        contact.company_id = given["company_id"]
    for name in ("source", "utm", "birthday", "external_id"):
        if name in given:
            setattr(contact, name, given[name])
    if "tags" in given:
        contact.tags = normalize_tags(given["tags"] or [])


def refresh_search_text(contact: Contact) -> None:
    contact.search_text = search_blob(contact.full_name, contact.external_id,
                                      phones=contact.phones, emails=contact.emails)


async def _require_company(session: AsyncSession, principal: Principal,
                           company_id: uuid.UUID) -> None:
    cache = lookups(session)
    if cache is not None and company_id in cache.company_ids:
        return
    found = await session.execute(select(exists().where(
        Company.id == company_id, Company.deleted_at.is_(None),
        records.visibility_condition(Company, principal))))
    if not found.scalar():
        raise ValidationError.at(["body", "company_id"], "no such company")
    if cache is not None:
        cache.company_ids.add(company_id)


def _identities(contact: Contact) -> set[tuple[str, str]]:
    return ({("phone", p["e164"]) for p in contact.phones}
            | {("email", e["email"]) for e in contact.emails})


async def _sync_identities(session: AsyncSession, contact: Contact,
                           previous: set[tuple[str, str]]) -> None:
    """Claim this card's phones and emails; a value owned by another card is a 409."""
    wanted = _identities(contact) if contact.deleted_at is None else set()
    removed, added = previous - wanted, wanted - previous
    for kind, value in removed:
        await session.execute(delete(ContactIdentity).where(
            ContactIdentity.kind == kind, ContactIdentity.value == value,
            ContactIdentity.contact_id == contact.id))
    if not added:
        return
    clashes = await find_by_identities(session, added)
    clashes = {k: v for k, v in clashes.items() if v != contact.id}
    if clashes:
        raise _duplicate(clashes)
    try:
        async with session.begin_nested():
            for kind, value in added:
                session.add(ContactIdentity(workspace_id=contact.workspace_id, kind=kind,
                                            value=value, contact_id=contact.id))
            await session.flush()
    except IntegrityError:
        # A concurrent writer claimed it between our check and insert.
        raise _duplicate(await find_by_identities(session, added)) from None


def _duplicate(clashes: dict[tuple[str, str], uuid.UUID]) -> DuplicateError:
    (kind, value), existing = next(iter(sorted(clashes.items())))
    return DuplicateError(
        f"contact {existing} already has the {kind} {value}",
        errors=[{"loc": ["body", f"{kind}s"], "msg": f"{kind} {value} belongs to contact "
                 f"{existing}", "type": "duplicate"}],
        extra={"existing_id": str(existing), "field": kind, "value": value})


async def find_by_identities(session: AsyncSession, identities: set[tuple[str, str]]
                             ) -> dict[tuple[str, str], uuid.UUID]:
    if not identities:
        return {}
    # A join with unnested arrays: one index probe per value, whatever the batch size (an OR
    # of thousands of pairs makes the planner scan).
    kinds, values = zip(*sorted(identities), strict=True)
    wanted = select(func.unnest(cast(list(kinds), ARRAY(Text))).label("kind"),
                    func.unnest(cast(list(values), ARRAY(Text))).label("value")).subquery()
    rows = await session.execute(
        select(ContactIdentity.kind, ContactIdentity.value, ContactIdentity.contact_id)
        .join(wanted, (ContactIdentity.kind == wanted.c.kind)
              & (ContactIdentity.value == wanted.c.value)))
    return {(r.kind, r.value): r.contact_id for r in rows}


async def _flush(session: AsyncSession, contact: Contact, *, check_external_id: bool) -> None:
    await records.flush_with_external_id(session, contact, ENTITY,
                                         check_external_id=check_external_id)


async def create_contact(session: AsyncSession, principal: Principal,
                         data: ContactCreate) -> Contact:
    principal.require_write()
    contact = Contact(workspace_id=principal.workspace_id, created_by=principal.actor,
                      updated_by=principal.actor)
    await _apply_fields(session, principal, contact, data, creating=True)
    session.add(contact)
    await _flush(session, contact, check_external_id=True)
    await _sync_identities(session, contact, set())
    await record_event(session, principal, type="contact.created", entity_type=ENTITY,
                       entity_id=contact.id, after=records.snapshot(contact))
    return contact


async def create_contacts_bulk(session: AsyncSession, principal: Principal,
                               items: list[ContactCreate]) -> list[Contact | DomainError]:
    """Create many cards with a handful of statements instead of several per card.

    Every item is normalized and validated exactly as a single create; duplicates against the
    database and inside the batch are found with one query each. If a concurrent writer claims
    a phone, email or external_id meanwhile, the whole group falls back to one-by-one creates,
    so the outcome is the same as with single creates."""
    principal.require_write()
    outcomes: list[Contact | DomainError] = []
    for data in items:
        # Worked out as a draft (a dict), made a record once complete: a `Contact(...)` per
        # card was a seventh of a batch's CPU.
        draft = records.draft(Contact, workspace_id=principal.workspace_id,
                              created_by=principal.actor, updated_by=principal.actor)
        try:
            await _apply_fields(session, principal, draft, data, creating=True)  # type: ignore[arg-type]
            outcomes.append(records.transient(Contact, draft))
        except DomainError as exc:
            outcomes.append(exc)
    candidates = [c for c in outcomes if isinstance(c, Contact)]
    taken = await find_by_identities(session, set().union(*map(_identities, candidates)))
    external_ids = {c.external_id for c in candidates if c.external_id}
    taken_external = dict((await session.execute(select(Contact.external_id, Contact.id).where(
        Contact.external_id.in_(external_ids)))).all()) if external_ids else {}
    claimed: dict[tuple[str, str], uuid.UUID] = {}
    claimed_external: dict[str, uuid.UUID] = {}
    for index, contact in enumerate(outcomes):
        if not isinstance(contact, Contact):
            continue
        mine = _identities(contact)
        clashes = {k: taken.get(k) or claimed.get(k) for k in mine if k in taken or k in claimed}
        holder = contact.external_id and (taken_external.get(contact.external_id)
                                          or claimed_external.get(contact.external_id))
        if clashes:
            outcomes[index] = _duplicate(clashes)  # type: ignore[arg-type]
        elif holder:
            outcomes[index] = DuplicateError(
                f"contact {holder} already has the external_id {contact.external_id!r}",
                extra={"existing_id": str(holder), "field": "external_id"})
        else:
            claimed.update(dict.fromkeys(mine, contact.id))
            if contact.external_id:
                claimed_external[contact.external_id] = contact.id
    fresh = [c for c in outcomes if isinstance(c, Contact)]
    if not fresh:
        return outcomes
    try:
        async with session.begin_nested():
            # On the driver connection: the cards are complete in Python, so the ORM's unit
            # of work has nothing to add, and SQLAlchemy's per-row parameter processing was
            # a fifth of a batch's CPU; they stay transient objects.
            conn = await driver_connection(session)
            await conn.execute(_INSERT_CONTACTS, *_CONTACT_ROWS.many_params(fresh))
            rows = [(kind, value, c.id) for c in fresh for kind, value in _identities(c)]
            if rows:
                kinds, values, ids = zip(*rows, strict=True)
                inserted = await session.execute(_INSERT_IDENTITIES, {
                    "ws": principal.workspace_id, "kinds": list(kinds),
                    "values": list(values), "ids": list(ids)})
                if len(inserted.all()) != len(rows):
                    raise _LostRace
    except (_LostRace, IntegrityError, asyncpg.IntegrityConstraintViolationError):
        return [await _create_one_by_one(session, principal, data) if isinstance(o, Contact)
                else o for data, o in zip(items, outcomes, strict=True)]
    await record_created_events(session, principal, type="contact.created", entity_type=ENTITY,
                                created=[(c.id, records.snapshot(c)) for c in fresh])
    return outcomes


_CONTACT_ROWS = DriverInsert(Contact)
_INSERT_CONTACTS = _CONTACT_ROWS.many_sql()
# One statement text whatever the batch size (a VALUES list of 2,000 rows was compiled anew for
# every batch: a tenth of its CPU).
_INSERT_IDENTITIES = text(
    "insert into contact_identities (workspace_id, kind, value, contact_id)"
    " select :ws, kind, value, contact_id"
    " from unnest(cast(:kinds as text[]), cast(:values as text[]), cast(:ids as uuid[]))"
    " as given(kind, value, contact_id)"
    " on conflict do nothing returning value").bindparams(
        bindparam("ws", type_=Uuid()), bindparam("kinds", type_=ARRAY(Text)),
        bindparam("values", type_=ARRAY(Text)), bindparam("ids", type_=ARRAY(Uuid())))


class _LostRace(Exception):
    """A concurrent writer claimed an identity between our check and our insert."""


async def _create_one_by_one(session: AsyncSession, principal: Principal,
                             data: ContactCreate) -> Contact | DomainError:
    try:
        async with session.begin_nested():
            return await create_contact(session, principal, data)
    except DomainError as exc:
        return exc


async def get_contact(session: AsyncSession, principal: Principal, contact_id: uuid.UUID,
                      *, include_deleted: bool = False) -> Contact:
    return await records.get_visible(session, Contact, principal, contact_id,
                                     include_deleted=include_deleted)


async def update_contact(session: AsyncSession, principal: Principal, contact_id: uuid.UUID,
                         data: ContactUpdate, *, expected_version: int | None = None) -> Contact:
    principal.require_write()
    contact = await records.get_visible(session, Contact, principal, contact_id, for_update=True)
    records.check_version(contact, expected_version)
    return await _update_loaded(session, principal, contact, data)


async def _update_loaded(session: AsyncSession, principal: Principal, contact: Contact,
                         data: ContactFields) -> Contact:
    before = records.snapshot(contact)
    previous = _identities(contact)
    await _apply_fields(session, principal, contact, data, creating=False)
    after = records.snapshot(contact)
    if after == before:
        return contact
    records.touch(contact, principal)
    await _flush(session, contact,
                 check_external_id=contact.external_id != before["external_id"])
    await _sync_identities(session, contact, previous)
    await record_event(session, principal, type="contact.updated", entity_type=ENTITY,
                       entity_id=contact.id, before=before, after=records.snapshot(contact))
    await scoring.contact_changed(session, principal, contact.id)
    return contact


async def delete_contact(session: AsyncSession, principal: Principal, contact_id: uuid.UUID,
                         *, expected_version: int | None = None) -> None:
    principal.require_write()
    contact = await records.get_visible(session, Contact, principal, contact_id, for_update=True)
    records.check_version(contact, expected_version)
    previous = _identities(contact)
    await records.soft_delete(session, contact, principal, ENTITY)
    await _sync_identities(session, contact, previous)
    await scoring.contact_changed(session, principal, contact.id)


async def restore_contact(session: AsyncSession, principal: Principal,
                          contact_id: uuid.UUID) -> Contact:
    principal.require_write()
    contact = await records.get_visible(session, Contact, principal, contact_id,
                                        include_deleted=True, for_update=True)
    if contact.merged_into_id is not None:
        raise ValidationError.at(["path", "id"], f"this card was merged into "
                                 f"{contact.merged_into_id} and cannot be restored")
    if contact.deleted_at is not None:
        await _sync_identities(session, _as_live(contact), set())
        await records.restore(session, contact, principal, ENTITY)
        await scoring.contact_changed(session, principal, contact.id)
    return contact


def _as_live(contact: Contact) -> Contact:
    live = contact.model_copy()
    live.deleted_at = None
    return live


def search_condition(q: str) -> Any:
    """`q` matches names, emails, phones (any format) and the company's name."""
    folded = fold_for_search(q)
    needle = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    parts = [Contact.search_text.like(needle, escape="\\"),
             Contact.company_id.in_(select(Company.id).where(
                 Company.deleted_at.is_(None), Company.search_text.like(needle, escape="\\")))]
    # A phone typed with its usual punctuation ("495 123-45") matches on its digits alone.
    digits = "".join(ch for ch in q if ch.isdigit())
    if len(digits) >= 5 and digits != folded and all(ch.isdigit() or ch in _PHONE_PUNCTUATION
                                                     for ch in q):
        parts.append(Contact.search_text.like(f"%{digits}%"))
    return or_(*parts)


def _list_query(principal: Principal, query: Any, conditions: list[Any], q: str | None,
                page: Page, include_deleted: bool) -> Any:
    query = query.where(records.visibility_condition(Contact, principal), *conditions)
    if not include_deleted:
        query = query.where(Contact.deleted_at.is_(None))
    if q:
        query = query.where(search_condition(q))
    return paginate(LIST_SPEC, query, page)


async def list_contacts(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                        q: str | None, page: Page, include_deleted: bool = False
                        ) -> tuple[list[Contact], str | None]:
    query, cut = _list_query(principal, select(Contact), conditions, q, page, include_deleted)
    rows = list((await session.execute(query)).scalars())
    return cut(rows)


_READ_SELECT = select(*(Contact.__table__.c[name] for name in _READ_FIELDS))


async def list_contact_rows(session: AsyncSession, principal: Principal, *,
                            conditions: list[Any], q: str | None, page: Page,
                            include_deleted: bool = False
                            ) -> tuple[list[dict[str, Any]], str | None]:
    """`list_contacts` for a response: `ContactRead`'s fields as plain dicts, no ORM objects
    to build and track, for the caller to validate as one page."""
    query, cut = _list_query(principal, _READ_SELECT, conditions, q, page, include_deleted)
    rows, cursor = cut(list(await session.execute(query)))
    return [_row_data(row._mapping) for row in rows], cursor


def _lookup_key(phone: str | None, email: str | None, region: str | None) -> tuple[str, str]:
    """The identity a lookup asks for: the phone as typed, read in `region`, or the e-mail."""
    if phone:
        value = try_normalize_phone(phone, region)
        if value is None:
            raise ValidationError.at(["query", "phone"], f"not a valid phone number: {phone!r}")
        return "phone", value
    try:
        return "email", normalize_email(email or "")
    except ValueError as exc:
        raise ValidationError.at(["query", "email"], str(exc)) from exc


def _require_one(phone: str | None, email: str | None) -> None:
    if bool(phone) == bool(email):
        raise ValidationError.at(["query"], "give exactly one of phone or email")


def _found(row: Any, principal: Principal, identity: tuple[str, str]) -> ContactRead:
    if row is None or not principal.can_see_owner(row["owner_id"]):
        raise NotFoundError(f"no contact with {identity[0]} {identity[1]}")
    return _row_read(row)


async def lookup_contact(session: AsyncSession, principal: Principal, *, phone: str | None,
                         email: str | None) -> ContactRead:
    """The card with this phone (as typed, in the workspace's region) or e-mail: one query."""
    _require_one(phone, email)
    region = (await workspace_basics(session, principal)).default_region if phone else None
    identity = _lookup_key(phone, email, region)
    row = await (await driver_connection(session)).fetchrow(_BY_IDENTITY, *identity)
    return _found(row, principal, identity)


async def lookup_contact_alone(conn: asyncpg.Connection, principal: Principal, *,
                               phone: str | None, email: str | None) -> ContactRead | None:
    """`lookup_contact` as one statement on a driver connection in no transaction, which sets
    the principal's workspace for itself (decision 0069); None, having read nothing, when a
    phone needs the workspace's region and this process has not cached it."""
    _require_one(phone, email)
    region = None
    if phone:
        basics = cached_basics(principal.workspace_id)
        if basics is None:
            return None
        region = basics.default_region
    identity = _lookup_key(phone, email, region)
    row = await conn.fetchrow(_LOOKUP, principal.workspace_id, *identity)
    return _found(row, principal, identity)


async def upsert_target(session: AsyncSession, principal: Principal, data: ContactCreate,
                        upsert_on: str) -> Contact | None:
    """The existing card that a batch item with `upsert_on` should update, if any."""
    workspace = await current_workspace(session, principal)
    if upsert_on == "external_id":
        if not data.external_id:
            raise ValidationError.at(["body", "external_id"], "required for upsert_on=external_id")
        row = await session.execute(select(Contact).where(
            Contact.external_id == data.external_id, Contact.deleted_at.is_(None)))
        existing = row.scalar_one_or_none()
    else:
        values = normalize_phones(data.phones or [], workspace.default_region) \
            if upsert_on == "phone" else normalize_emails(data.emails or [])
        keys = {(upsert_on, v["e164"] if upsert_on == "phone" else v["email"]) for v in values}
        if not keys:
            raise ValidationError.at(["body", f"{upsert_on}s"], f"required for upsert_on={upsert_on}")
        found = await find_by_identities(session, keys)
        existing = await session.get(Contact, (principal.workspace_id, next(iter(found.values())))
                                     ) if found else None
    if existing is not None and not principal.can_see_owner(existing.owner_id):
        raise DuplicateError("a matching card exists that you may not change")
    return existing


async def apply_upsert(session: AsyncSession, principal: Principal, existing: Contact,
                       data: ContactCreate) -> bool:
    """Update `existing` from a batch item; returns whether anything changed."""
    version = existing.version
    await _update_loaded(session, principal, existing,
                         ContactUpdate.model_validate(data.model_dump(exclude_unset=True)))
    return existing.version != version


async def merge_contacts(session: AsyncSession, principal: Principal, target_id: uuid.UUID,
                         source_id: uuid.UUID) -> Contact:
    """Merge the duplicate `source` into `target`: phones, emails, tags, empty fields and
    custom fields move over; the source is closed and its history stays reachable."""
    principal.require_write()
    if target_id == source_id:
        raise ValidationError.at(["body", "source_id"], "a card cannot be merged into itself")
    target = await records.get_visible(session, Contact, principal, target_id, for_update=True)
    source = await records.get_visible(session, Contact, principal, source_id, for_update=True)
    before_target = records.snapshot(target)
    source_identities = _identities(source)
    # Release the source's phones and emails first so the target can claim them.
    source.deleted_at = clock.now()
    await _sync_identities(session, source, source_identities)
    previous = _identities(target)
    target.phones = target.phones + [p for p in source.phones
                                     if p["e164"] not in {x["e164"] for x in target.phones}]
    target.emails = target.emails + [e for e in source.emails
                                     if e["email"] not in {x["email"] for x in target.emails}]
    composed = target.full_name == _compose_full_name(target.first_name, target.middle_name,
                                                      target.last_name)
    for name in ("first_name", "last_name", "middle_name", "address", "timezone", "owner_id",
                 "company_id", "source", "utm", "birthday"):
        if getattr(target, name) is None and getattr(source, name) is not None:
            setattr(target, name, getattr(source, name))
    if composed:
        target.full_name = _compose_full_name(target.first_name, target.middle_name,
                                              target.last_name)
    if not target.full_name:
        target.full_name = source.full_name
    target.tags = normalize_tags(target.tags + source.tags)
    target.custom_fields = {**source.custom_fields, **target.custom_fields}
    refresh_search_text(target)
    source.merged_into_id = target.id
    records.touch(source, principal)
    records.touch(target, principal)
    await session.flush()
    await _sync_identities(session, target, previous)
    moved = await _move_links(session, principal, source.id, target.id)
    await record_event(session, principal, type="contact.merged", entity_type=ENTITY,
                       entity_id=source.id, before=None,
                       after={"merged_into_id": str(target.id), "moved": moved})
    await record_event(session, principal, type="contact.updated", entity_type=ENTITY,
                       entity_id=target.id, before=before_target,
                       after=records.snapshot(target))
    await scoring.contact_changed(session, principal, target.id)
    await scoring.contact_changed(session, principal, source.id)
    return target


async def _move_links(session: AsyncSession, principal: Principal, source_id: uuid.UUID,
                      target_id: uuid.UUID) -> dict[str, int]:
    """The duplicate's deals, tasks and activities now belong to the surviving card (the
    merge event counts them). Each is a change of that record: its version goes up and it
    gets its own `deal.updated` / `task.updated` / `activity.updated`, so a client holding its
    ETag or mirroring it from webhooks learns of the new link (decision 0059)."""
    # deals.queries imports this module: the deals side is imported when a merge runs.
    from app.domain.deals import queries as deal_queries
    from app.domain.deals.transitions import snapshot as deal_snapshot

    linked = select(DealContact.deal_id).where(DealContact.contact_id == source_id)
    deals = list((await session.execute(
        select(Deal).where(Deal.id.in_(linked)).order_by(Deal.id).with_for_update())).scalars())
    links_before = await deal_queries.contact_ids_of(session, [d.id for d in deals])
    befores = {d.id: deal_snapshot(d, links_before[d.id]) for d in deals}
    already = select(DealContact.deal_id).where(DealContact.contact_id == target_id)
    relinked = await session.execute(
        update(DealContact).where(DealContact.contact_id == source_id,
                                  DealContact.deal_id.not_in(already))
        .values(contact_id=target_id).execution_options(synchronize_session=False))
    await session.execute(delete(DealContact).where(DealContact.contact_id == source_id))
    moved = {"deals": relinked.rowcount}
    links_after = await deal_queries.contact_ids_of(session, [d.id for d in deals])
    events: list[tuple[str, uuid.UUID, dict[str, Any], dict[str, Any]]] = []
    for deal in deals:
        records.touch(deal, principal)
        events.append(("deal", deal.id, befores[deal.id], deal_snapshot(deal, links_after[deal.id])))
    for name, entity, model in (("tasks", "task", Task), ("activities", "activity", Activity)):
        rows = list((await session.execute(
            select(model).where(model.contact_id == source_id).order_by(model.id)
            .with_for_update())).scalars())
        for record in rows:
            before = records.snapshot(record)
            record.contact_id = target_id
            records.touch(record, principal)
            events.append((entity, record.id, before, records.snapshot(record)))
        moved[name] = len(rows)
    await session.flush()
    for entity, record_id, before, after in events:
        await record_event(session, principal, type=f"{entity}.updated", entity_type=entity,
                           entity_id=record_id, before=before, after=after)
    return moved


async def history_ids(session: AsyncSession, contact_id: uuid.UUID) -> list[uuid.UUID]:
    """The card and every card merged into it, directly or through an earlier merge: its
    history includes theirs."""
    ids, frontier = [contact_id], [contact_id]
    while frontier:
        merged = await session.execute(select(Contact.id).where(
            Contact.merged_into_id.in_(frontier)))
        frontier = [i for i in merged.scalars() if i not in ids]
        ids += frontier
    return ids
