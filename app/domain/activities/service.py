"""Activities: log, read, list, update, delete calls, emails, SMS, messages, meetings, notes.

Visibility (docs/decisions/0016-activity-visibility-and-timeline.md): an activity belongs to
the records it is about as much as to the user who handled it. A principal sees it when they
see its owner, or any of its linked contact, company or deal, or when it mentions them — so
whoever takes over a customer's card sees every call and note on it, and a user mentioned in
a note can open that note."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, exists, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver_connection, jsonb_param
from app.domain.activities.models import Activity
from app.domain.activities.schemas import (
    ActivityCreate,
    ActivityFields,
    ActivityRead,
    ActivityUpdate,
)
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.deals.rotting import mark_deal_activity
from app.domain.inbox import responses as inbox_responses
from app.domain.notifications.service import notify
from app.domain.outbox.service import changed_fields, record_event
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import DuplicateError, NotFoundError, ValidationError
from app.domain.shared.ids import new_id
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.normalize import (
    EmailError,
    PhoneError,
    normalize_email,
    normalize_phone,
    uri_user,
)
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import workspace_basics
from app.domain.workspaces.models import User
from app.domain.workspaces.service import require_users

ENTITY = "activity"
DIRECTED = ("call", "email", "sms", "message")
CALL_FIELDS = ("from_number", "to_number", "call_status", "duration_seconds", "recording_url")
DEFAULT_CHANNEL = {"call": "phone", "email": "email", "sms": "sms"}
_A = {"call": "a call", "email": "an email", "sms": "an SMS", "message": "a message",
      "meeting": "a meeting", "note": "a note"}
# A PBX's internal extension ("101") is not a phone number but is what a call was made from.
_EXTENSION = re.compile(r"\d{2,6}")
_LINKS: dict[str, Any] = {"contact_id": Contact, "company_id": Company, "deal_id": Deal}


LIST_SPEC = ListSpec(
    id_column=Activity.id,
    default_sort="-occurred_at",
    fields={
        "id": FilterField(Activity.id, "uuid"),
        "type": FilterField(Activity.type, "str"),
        "direction": FilterField(Activity.direction, "str"),
        "channel": FilterField(Activity.channel, "str"),
        "owner_id": FilterField(Activity.owner_id, "uuid"),
        "contact_id": FilterField(Activity.contact_id, "uuid"),
        "company_id": FilterField(Activity.company_id, "uuid"),
        "deal_id": FilterField(Activity.deal_id, "uuid"),
        "call_status": FilterField(Activity.call_status, "str"),
        "duration_seconds": FilterField(Activity.duration_seconds,
                                        "int", sortable=True),
        "from_number": FilterField(Activity.from_number, "str"),
        "to_number": FilterField(Activity.to_number, "str"),
        "subject": FilterField(Activity.subject, "str"),
        "external_id": FilterField(Activity.external_id, "str"),
        "occurred_at": FilterField(Activity.occurred_at, "datetime", sortable=True),
        "created_at": FilterField(Activity.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Activity.updated_at, "datetime", sortable=True),
    },
)


def visibility(principal: Principal, *, reading: bool = True) -> ColumnElement[bool]:
    """The activities `principal` may see: owned by someone they see, or linked to a
    contact, company or deal they see, or (to read) mentioning them. Changing an activity
    needs the same, minus the mention."""
    if principal.visible_owner_ids is None:
        return true()
    parts: list[ColumnElement[bool]] = []
    if principal.visible_owner_ids:
        parts.append(Activity.owner_id.in_(list(principal.visible_owner_ids)))
    for column, model in _LINKS.items():
        parts.append(getattr(Activity, column).in_(
            select(model.id).where(records.visibility_condition(model, principal))))
    if reading and principal.user_id is not None:
        parts.append(Activity.mentions.contains([str(principal.user_id)]))
    return or_(*parts)


def to_read(activity: Activity) -> ActivityRead:
    return ActivityRead.model_validate(records.snapshot(activity))


async def _visible_activity(session: AsyncSession, principal: Principal,
                            activity_id: uuid.UUID, *, include_deleted: bool = False,
                            for_update: bool = False) -> Activity:
    query = select(Activity).where(Activity.id == activity_id,
                                   visibility(principal, reading=not for_update))
    if not include_deleted:
        query = query.where(Activity.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update(of=Activity)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"activity {activity_id} not found")
    return found


async def _require_link(session: AsyncSession, principal: Principal, field: str,
                        record_id: uuid.UUID) -> None:
    model = _LINKS[field]
    found = await session.execute(select(exists().where(
        model.id == record_id, model.deleted_at.is_(None),
        records.visibility_condition(model, principal))))
    if not found.scalar():
        raise ValidationError.at(["body", field], f"no such {records.entity_name(model)}")


def _number(raw: str, region: str, field: str) -> str:
    value = uri_user(raw.strip())
    if _EXTENSION.fullmatch(value):
        return value
    try:
        return normalize_phone(value, region)
    except PhoneError as exc:
        raise ValidationError.at(["body", field], str(exc), "phone") from exc


async def _participants(session: AsyncSession, items: list[Any],
                        region: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        loc: list[str | int] = ["body", "participants", i]
        entry = {k: v for k, v in item.model_dump().items() if v is not None}
        if not entry:
            raise ValidationError.at(loc, "a participant needs a name, email, phone or user_id")
        if "email" in entry:
            try:
                entry["email"] = normalize_email(entry["email"])
            except EmailError as exc:
                raise ValidationError.at([*loc, "email"], str(exc), "email") from exc
        if "phone" in entry:
            try:
                entry["phone"] = normalize_phone(entry["phone"], region)
            except PhoneError as exc:
                raise ValidationError.at([*loc, "phone"], str(exc), "phone") from exc
        if "user_id" in entry:
            await require_users(session, [entry["user_id"]], [*loc, "user_id"])
            entry["user_id"] = str(entry["user_id"])
        result.append(entry)
    return result


async def _apply_fields(session: AsyncSession, principal: Principal, activity: Activity,
                        data: ActivityFields, *, creating: bool,
                        checked_links: Collection[str] = ()) -> None:
    """Merge-patch `data` onto `activity`, normalize, then check the record as a whole."""
    given = data.model_dump(exclude_unset=True)
    for name in ("type", "occurred_at"):
        if name in given and given[name] is None:
            raise ValidationError.at(["body", name], "cannot be cleared")
    region = (await workspace_basics(session, principal)).default_region
    for name in ("type", "direction", "channel", "occurred_at", "subject", "body",
                 "call_status", "duration_seconds", "external_id"):
        if name in given:
            setattr(activity, name, given[name])
    if creating and activity.channel is None:
        activity.channel = DEFAULT_CHANNEL.get(activity.type)
    for name in ("from_number", "to_number"):
        if name in given:
            setattr(activity, name, _number(given[name], region, name) if given[name] else None)
    if "recording_url" in given:
        activity.recording_url = str(data.recording_url) if data.recording_url else None
    if "owner_id" in given:
        if given["owner_id"] is not None:
            await require_users(session, [given["owner_id"]], ["body", "owner_id"])
        activity.owner_id = given["owner_id"]
    elif creating:
        activity.owner_id = principal.user_id
    for field in _LINKS:
        if field in given and given[field] != getattr(activity, field):
            if given[field] is not None and field not in checked_links:
                await _require_link(session, principal, field, given[field])
            setattr(activity, field, given[field])
    if "participants" in given:
        activity.participants = await _participants(session, data.participants or [], region)
    if "mentions" in given:
        mentioned = list(dict.fromkeys(given["mentions"] or []))
        await require_users(session, mentioned, ["body", "mentions"])
        activity.mentions = [str(u) for u in mentioned]
    if "data" in given:
        activity.data = given["data"] or {}
    _check_whole(activity)


def _check_whole(activity: Activity) -> None:
    """Rules across fields, on the merged record: a PATCH that changes the type must also
    bring the rest in line."""
    errors: list[dict[str, Any]] = []

    def error(field: str | None, msg: str) -> None:
        errors.append({"loc": ["body", field] if field else ["body"], "msg": msg,
                       "type": "value_error"})

    kind, a_kind = activity.type, _A.get(activity.type, activity.type)
    if kind in DIRECTED and activity.direction is None:
        error("direction", f"{a_kind} needs a direction: in or out")
    if kind not in DIRECTED and activity.direction is not None:
        error("direction", f"{a_kind} has no direction")
    if kind != "call":
        for field in CALL_FIELDS:
            if getattr(activity, field) is not None:
                error(field, f"only calls have {field}; {a_kind} does not")
    if kind != "note" and activity.mentions:
        error("mentions", "only notes mention users")
    if not (activity.contact_id or activity.company_id or activity.deal_id):
        error(None, "link the activity to a contact, company or deal "
                    "(contact_id, company_id or deal_id)")
    if errors:
        raise ValidationError(errors[0]["msg"] if len(errors) == 1
                              else "the activity is not valid", errors=errors)


_COLUMNS = [c.name for c in Activity.__table__.columns]
_JSON_COLUMNS = {c.name for c in Activity.__table__.columns if isinstance(c.type, JSONB)}
_N = len(_COLUMNS)
# The new activity and its events in one statement (`create_activity(detached=True)`); the
# events share the activity's snapshot, as `record_event(after=…)` of a new record does.
_INSERT_DETACHED = f"""
WITH activity AS (
  INSERT INTO activities ({", ".join(_COLUMNS)})
  VALUES ({", ".join(f"${i}" for i in range(1, _N + 1))})
)
INSERT INTO events (workspace_id, id, type, entity_type, entity_id, actor, before, after,
                    changed, occurred_at, depth, cause_run_id)
SELECT ${_COLUMNS.index("workspace_id") + 1}, unnest(${_N + 1}::uuid[]),
       unnest(${_N + 2}::text[]), '{ENTITY}', ${_COLUMNS.index("id") + 1},
       ${_COLUMNS.index("created_by") + 1}, 'null'::jsonb, ${_N + 3}::jsonb, ${_N + 4}::text[],
       ${_N + 5}::timestamptz, ${_N + 6}::int, ${_N + 7}::uuid
"""


async def _insert_detached(session: AsyncSession, principal: Principal, activity: Activity,
                           events: list[str], after: dict[str, Any], *,
                           check_external_id: bool) -> None:
    """The new activity and its events (`events`: their types) as one statement on the
    driver connection; what the session holds is flushed first, so rows and events keep the
    order they were made in."""
    await session.flush()
    if check_external_id:
        await records.require_external_id_free(session, activity, ENTITY)
    row = activity.model_dump()
    values = [jsonb_param(row[c]) if c in _JSON_COLUMNS else row[c] for c in _COLUMNS]
    conn = await driver_connection(session)
    try:
        await conn.execute(_INSERT_DETACHED, *values, [new_id() for _ in events], events,
                           jsonb_param(after), changed_fields(None, after),
                           clock.now(), principal.depth, principal.cause_run_id)
    except asyncpg.UniqueViolationError as exc:  # another writer took the external_id
        raise DuplicateError(f"a {ENTITY} with external_id {activity.external_id!r} exists",
                             extra={"field": "external_id"}) from exc


async def _flush(session: AsyncSession, activity: Activity, *, check_external_id: bool) -> None:
    await records.flush_with_external_id(session, activity, ENTITY,
                                         check_external_id=check_external_id)


async def _tell_mentioned(session: AsyncSession, principal: Principal, activity: Activity,
                          previous: list[str]) -> None:
    """Mentioned users hear of it once per note; a PATCH tells only those it adds."""
    new = [uuid.UUID(u) for u in activity.mentions if u not in previous]
    new = [u for u in new if u != principal.user_id]
    if not new:
        return
    author = "Someone"
    if principal.user_id is not None:
        user = await session.get(User, (principal.workspace_id, principal.user_id))
        author = (user.full_name or user.email) if user else author
    excerpt = (activity.body or activity.subject or "").strip()
    if len(excerpt) > 300:
        excerpt = excerpt[:300] + "…"
    await notify(session, principal, user_ids=new, type="mention",
                 title=f"{author} mentioned you in a note", body=excerpt or None,
                 entity_type=ENTITY, entity_id=activity.id, dedup_key=f"mention:{activity.id}")


async def _mark_deal(session: AsyncSession, activity: Activity) -> None:
    """An activity on a deal ends its idle period; one dated in the future counts as now."""
    if activity.deal_id is not None and activity.deleted_at is None:
        await mark_deal_activity(session, activity.deal_id, min(activity.occurred_at,
                                                                clock.now()))


async def create_activity(session: AsyncSession, principal: Principal,
                          data: ActivityCreate, *, checked_links: Collection[str] = (),
                          external_id_free: bool = False, detached: bool = False) -> Activity:
    """`checked_links` names link fields (contact_id, …) the caller has already found
    visible and live in this transaction, and `external_id_free` says it has checked that
    no activity holds `data.external_id` (under a lock): both skip a read. A concurrent
    holder of the external id is still a 409 (the unique index).

    `detached` writes the activity and its events in one statement on the driver connection
    instead of the ORM's unit of work, for a caller on a hot path that does not change the
    activity again in this transaction (a call's first `ringing` event; decision 0061): the
    activity returned is not in the session. The validation, the row and the events are the
    same either way."""
    principal.require_write()
    now = clock.now()
    activity = Activity(workspace_id=principal.workspace_id, type=data.type, occurred_at=now,
                        created_at=now, updated_at=now, created_by=principal.actor,
                        updated_by=principal.actor)
    await _apply_fields(session, principal, activity, data, creating=True,
                        checked_links=checked_links)
    events = ["activity.created"]
    if activity.type == "call":
        missed = activity.direction == "in" and activity.call_status == "missed"
        events.append("call.missed" if missed else "call.logged")
    if detached:
        await _insert_detached(session, principal, activity, events, records.snapshot(activity),
                               check_external_id=not external_id_free)
    else:
        session.add(activity)
        await _flush(session, activity, check_external_id=not external_id_free)
        after = records.snapshot(activity)
        for type_ in events:
            await record_event(session, principal, type=type_, entity_type=ENTITY,
                               entity_id=activity.id, after=after)
    await _tell_mentioned(session, principal, activity, [])
    await _mark_deal(session, activity)
    # Inbound messages start a response clock; an outbound contact stops the card's clocks.
    await inbox_responses.activity_logged(session, principal, activity)
    return activity


async def get_activity(session: AsyncSession, principal: Principal, activity_id: uuid.UUID,
                       *, include_deleted: bool = False) -> Activity:
    return await _visible_activity(session, principal, activity_id,
                                   include_deleted=include_deleted)


async def update_activity(session: AsyncSession, principal: Principal, activity_id: uuid.UUID,
                          data: ActivityUpdate, *, expected_version: int | None = None
                          ) -> Activity:
    principal.require_write()
    activity = await _visible_activity(session, principal, activity_id, for_update=True)
    records.check_version(activity, expected_version)
    return await _update_loaded(session, principal, activity, data)


async def _update_loaded(session: AsyncSession, principal: Principal, activity: Activity,
                         data: ActivityFields) -> Activity:
    before = records.snapshot(activity)
    deal_id, occurred_at = activity.deal_id, activity.occurred_at
    await _apply_fields(session, principal, activity, data, creating=False)
    if records.snapshot(activity) == before:
        return activity
    records.touch(activity, principal)
    await _flush(session, activity,
                 check_external_id=activity.external_id != before["external_id"])
    await record_event(session, principal, type="activity.updated", entity_type=ENTITY,
                       entity_id=activity.id, before=before, after=records.snapshot(activity))
    await _tell_mentioned(session, principal, activity, before["mentions"])
    if (activity.deal_id, activity.occurred_at) != (deal_id, occurred_at):
        await _mark_deal(session, activity)
    return activity


async def delete_activity(session: AsyncSession, principal: Principal, activity_id: uuid.UUID,
                          *, expected_version: int | None = None) -> None:
    principal.require_write()
    activity = await _visible_activity(session, principal, activity_id, for_update=True)
    records.check_version(activity, expected_version)
    await records.soft_delete(session, activity, principal, ENTITY)


async def restore_activity(session: AsyncSession, principal: Principal,
                           activity_id: uuid.UUID) -> Activity:
    principal.require_write()
    activity = await _visible_activity(session, principal, activity_id, include_deleted=True,
                                       for_update=True)
    await records.restore(session, activity, principal, ENTITY)
    return activity


async def list_activities(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                          q: str | None, page: Page, include_deleted: bool = False
                          ) -> tuple[list[Activity], str | None]:
    query = select(Activity).where(visibility(principal), *conditions)
    if not include_deleted:
        query = query.where(Activity.deleted_at.is_(None))
    if q:
        if "\x00" in q:
            raise ValidationError.at(["query", "q"], "text must not contain the NUL character")
        needle = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%"
        query = query.where(or_(Activity.subject.ilike(pattern, escape="\\"),
                                Activity.body.ilike(pattern, escape="\\")))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def upsert_target(session: AsyncSession, principal: Principal, data: ActivityCreate,
                        upsert_on: str) -> Activity | None:
    if upsert_on != "external_id":
        raise ValidationError.at(["body", "upsert_on"], "activities upsert on external_id only")
    if not data.external_id:
        raise ValidationError.at(["body", "external_id"], "required for upsert_on=external_id")
    existing = (await session.execute(select(Activity).where(
        Activity.external_id == data.external_id, Activity.deleted_at.is_(None)))
    ).scalar_one_or_none()
    if existing is None:
        return None
    visible = await session.execute(select(exists().where(
        Activity.id == existing.id, visibility(principal, reading=False))))
    if not visible.scalar():
        raise DuplicateError("a matching activity exists that you may not change")
    return existing


async def apply_upsert(session: AsyncSession, principal: Principal, existing: Activity,
                       data: ActivityCreate) -> bool:
    version = existing.version
    await _update_loaded(session, principal, existing,
                         ActivityUpdate.model_validate(data.model_dump(exclude_unset=True)))
    return existing.version != version
