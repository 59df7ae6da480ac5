"""Telephony: call events from a PBX, the screen pop, missed-call call-backs
(docs/decisions/0041-call-events-one-activity-per-call.md).

Every event of a call updates one call activity (external id `call:<call_id>`), under a
transaction-level advisory lock per call so two deliveries at once do not race. A status
only moves forward: ringing → answered → completed, or ringing → missed / busy; a late or
repeated event fills in what is still missing (duration, recording, user) and changes
nothing else. An unknown number gets a card holding only its normalized phone and an inbox
lead (channel call). A missed inbound call creates one call-back task: for the card's owner,
else round-robin through the integration's team, and `call.missed` for the rules."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver_connection
from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate, ActivityUpdate
from app.domain.automations.actions import resolve_who
from app.domain.contacts.models import Contact
from app.domain.inbox import service as inbox
from app.domain.integrations.service import SignedIntegration
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import local_time, try_normalize_phone, uri_user
from app.domain.shared.principal import Principal
from app.domain.tasks import service as tasks
from app.domain.tasks.schemas import TaskCreate
from app.domain.telephony.schemas import (
    CallEvent,
    CallResult,
    PopContact,
    PopDeal,
    PopInteraction,
    PopOwner,
    PopTask,
    ScreenPop,
)
from app.domain.workspaces.context import current_workspace, workspace_basics
from app.domain.workspaces.models import User

ACTIVITY_STATUS = {"ringing": None, "answered": "answered", "completed": "answered",
                   "missed": "missed", "busy": "busy"}
POP_LIMIT = 10
LAST_INTERACTIONS = 5


def advances(old: str | None, new: str) -> bool:
    """Whether `new` moves a call on from `old` (a status never goes back)."""
    if old is None:
        return True
    if old == "ringing":
        return new != "ringing"
    if old == "answered":
        return new == "completed"
    return False  # completed, missed, busy are final


async def _user(session: AsyncSession, integration: SignedIntegration,
                event: CallEvent) -> uuid.UUID | None:
    if event.user_id is not None:
        found = (await session.execute(select(User.id).where(
            User.id == event.user_id))).scalar_one_or_none()
        if found is None:
            raise ValidationError.at(["body", "user_id"], "no such user in this workspace")
        return found
    if event.user_email is not None:
        found = (await session.execute(select(User.id).where(
            User.email == event.user_email.strip().lower()))).scalar_one_or_none()
        if found is None:
            raise ValidationError.at(["body", "user_email"], "no such user in this workspace")
        return found
    extensions = (integration.config or {}).get("extensions") or {}
    for candidate in (event.extension, event.to if event.direction == "in" else event.from_):
        if candidate and candidate in extensions:
            return uuid.UUID(extensions[candidate])
    return None


def _duration(event: CallEvent) -> int | None:
    if event.duration_seconds is not None:
        return event.duration_seconds
    if event.answered_at and event.ended_at and event.ended_at >= event.answered_at:
        return min(int((event.ended_at - event.answered_at).total_seconds()), 7 * 24 * 3600)
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


@dataclass(frozen=True, slots=True)
class Card:
    """What a call needs of the caller's card; a `Contact` has the same attributes."""

    id: uuid.UUID
    full_name: str | None
    status: str
    kind: str
    phones: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    timezone: str | None
    owner_id: uuid.UUID | None
    tags: list[str]


async def handle_call(session: AsyncSession, integration: SignedIntegration, principal: Principal,
                      event: CallEvent) -> CallResult:
    region = (await workspace_basics(session, principal)).default_region
    customer_field = "from" if event.direction == "in" else "to"
    customer_raw = event.from_ if event.direction == "in" else event.to
    e164 = try_normalize_phone(uri_user(customer_raw), region)
    if e164 is None:
        raise ValidationError.at(["body", customer_field],
                                 f"the customer's number is not a phone number: "
                                 f"{customer_raw!r}", "phone")
    user_id = await _user(session, integration, event)
    external_id = f"call:{event.call_id}"
    conn = await driver_connection(session)
    # One writer per call at a time: a duplicate delivery waits, then sees the first's work.
    await conn.execute(_LOCK_SQL, f"{principal.workspace_id}:{external_id}")
    # Deleted ones too: the unique index keeps them, and creating over one is the 409 the
    # activities service words (so only then does it look the holder up again).
    first = await conn.fetchrow(_FIRST_READ[event.status == "ringing"],
                                principal.workspace_id, external_id, e164)
    holder = first["holder"]  # (id, deleted_at) or None
    held_by_deleted = holder is not None and holder[1] is not None
    call = None
    pop: ScreenPop | None = None
    contact: Card | Contact
    if holder is not None and not held_by_deleted:  # a later event of a known call
        call = (await session.execute(select(Activity).where(
            Activity.id == holder[0]))).scalar_one()
    if call is None or held_by_deleted:
        # A known caller's live card came with the first read (and its screen pop: the new
        # call is not in it either way); anyone else goes through the inbox, which creates
        # the card (and the lead) for an unknown number.
        if first["id"] is not None:
            contact, created = Card(**{f: first[f] for f in Card.__slots__}), False
            if event.status == "ringing":
                pop = _pop(contact, first)
        else:
            contact, created = await inbox.match_or_create_contact(
                session, principal, phone=e164, source="call")
        call = await _log_call(session, principal, event, contact, created, user_id,
                               external_id, external_id_free=not held_by_deleted)
        became_missed = event.status == "missed"
    else:
        contact = await session.get(Contact, (principal.workspace_id, call.contact_id))
        assert contact is not None
        created = bool(call.data.get("contact_created"))
        old_status = call.data.get("status")
        call = await _update_call(session, principal, call, event, user_id)
        became_missed = event.status == "missed" and advances(old_status, "missed")
        if became_missed:
            await record_event(session, principal, type="call.missed", entity_type="activity",
                               entity_id=call.id, after=records.snapshot(call))
    if became_missed and call.direction == "in":
        await _call_back(session, principal, integration, call, contact)
    if pop is None and event.status == "ringing":
        pop = await screen_pop(session, principal, contact, exclude_activity=call.id)
    return CallResult(call_id=event.call_id, status=call.data.get("status", event.status),
                      activity_id=call.id, contact_id=contact.id, contact_created=created,
                      user_id=call.owner_id, inbox_item_id=call.data.get("inbox_item_id"),
                      callback_task_id=call.data.get("callback_task_id"), screen_pop=pop)


def _call_data(event: CallEvent, status: str, previous: dict[str, Any]) -> dict[str, Any]:
    data = dict(previous)
    data.update({"call_id": event.call_id, "status": status})
    for key, value in (("extension", event.extension), ("answered_at", _iso(event.answered_at)),
                       ("ended_at", _iso(event.ended_at))):
        if value and not data.get(key):
            data[key] = value
    return data


async def _log_call(session: AsyncSession, principal: Principal, event: CallEvent,
                    contact: Card | Contact, created: bool, user_id: uuid.UUID | None,
                    external_id: str, *, external_id_free: bool) -> Activity:
    data = _call_data(event, event.status, {"contact_created": created})
    if created and event.direction == "in":
        item, _ = await inbox.receive_lead(
            session, principal, channel="call", source_id=event.call_id, contact_id=contact.id,
            contact_created=True,
            data={"from": event.from_, "to": event.to, "phone": contact.phones[0]["e164"],
                  "status": event.status, "extension": event.extension,
                  "started_at": _iso(event.started_at)})
        data["inbox_item_id"] = str(item.id)
    return await activities.create_activity(session, principal, ActivityCreate(
        type="call", direction=event.direction, channel="phone", contact_id=contact.id,
        owner_id=user_id, occurred_at=event.started_at or clock.now(),
        from_number=event.from_, to_number=event.to,
        call_status=ACTIVITY_STATUS[event.status], duration_seconds=_duration(event),
        recording_url=event.recording_url, data=data, external_id=external_id),
        # The card was just matched or created in this transaction, and no call holds the
        # external id (checked above under the call's lock): no need to read either again.
        # A first `ringing` event's call is not changed again in this transaction (a missed
        # or busy one gets its call-back task linked below): written without the ORM.
        checked_links=("contact_id",), external_id_free=external_id_free,
        detached=event.status == "ringing")


async def _update_call(session: AsyncSession, principal: Principal, call: Activity,
                       event: CallEvent, user_id: uuid.UUID | None) -> Activity:
    old = call.data.get("status")
    status = event.status if advances(old, event.status) else old or event.status
    patch: dict[str, Any] = {"data": _call_data(event, status, call.data)}
    if status != old:
        patch["call_status"] = ACTIVITY_STATUS[status]
    duration = _duration(event)
    if duration is not None and call.duration_seconds is None:
        patch["duration_seconds"] = duration
    if event.recording_url is not None and call.recording_url is None:
        patch["recording_url"] = event.recording_url
    if user_id is not None and call.owner_id is None:
        patch["owner_id"] = user_id
    return await activities.update_activity(session, principal, call.id,
                                            ActivityUpdate.model_validate(patch))


async def _call_back(session: AsyncSession, principal: Principal, integration: SignedIntegration,
                     call: Activity, contact: Card | Contact) -> None:
    assignee = contact.owner_id
    if assignee is None and integration.team_id is not None:
        chosen = await resolve_who(session, principal, {"strategy": "round_robin",
                                                        "team_id": str(integration.team_id)},
                                   {}, "contact", one=True)
        assignee = chosen[0] if chosen else None
    settings = (await current_workspace(session, principal)).settings
    number = call.from_number or ""
    task = await tasks.create_task(session, principal, TaskCreate(
        title=f"Call back {contact.full_name or number}".strip()[:300],
        type="call" if "call" in settings.get("task_types", []) else None,
        description=f"Missed call from {number}", due_at=clock.now(), assignee_id=assignee,
        contact_id=contact.id,
        data={"reason": "missed_call", "call_id": call.data.get("call_id"),
              "activity_id": str(call.id)}))
    call.data = {**call.data, "callback_task_id": str(task.id)}
    await session.flush()


# The screen pop in one prepared statement on the driver connection (inside the call's
# transaction, so under its workspace and RLS): the open deals with their stage names, the
# open tasks, the last interactions and the owner come back as arrays of rows. `contact`,
# `exclude` and `owner` are SQL expressions: parameters, or columns of the caller's card.
def _pop_columns(contact: str, exclude: str, owner: str) -> str:
    return f"""
  array(SELECT row(d.id, d.title, d.pipeline_id, d.stage_id, s.name, d.amount, d.currency,
                   d.owner_id)
        FROM deals d
        JOIN deal_contacts dc ON dc.workspace_id = d.workspace_id AND dc.deal_id = d.id
        JOIN stages s ON s.workspace_id = d.workspace_id AND s.id = d.stage_id
        WHERE dc.workspace_id = $1 AND dc.contact_id = {contact} AND d.status = 'open'
          AND d.deleted_at IS NULL
        ORDER BY d.created_at DESC LIMIT {POP_LIMIT}) AS deals,
  array(SELECT row(t.id, t.title, t.type, t.due_at, t.assignee_id)
        FROM tasks t
        WHERE t.workspace_id = $1 AND t.contact_id = {contact} AND t.status = 'open'
          AND t.deleted_at IS NULL
        ORDER BY t.due_at ASC NULLS LAST, t.id LIMIT {POP_LIMIT}) AS tasks,
  array(SELECT row(a.id, a.type, a.direction, a.occurred_at, a.subject, a.call_status,
                   a.duration_seconds, a.owner_id)
        FROM activities a
        WHERE a.workspace_id = $1 AND a.contact_id = {contact} AND a.deleted_at IS NULL
          AND ({exclude} IS NULL OR a.id <> {exclude})
        ORDER BY a.occurred_at DESC, a.id DESC LIMIT {LAST_INTERACTIONS}) AS last,
  (SELECT row(u.id, u.full_name, u.email) FROM users u
   WHERE u.workspace_id = $1 AND u.id = {owner}) AS owner"""


_POP_SQL = "SELECT" + _pop_columns("$2", "$3::uuid", "$4::uuid")

# A call's first read, after its lock: whether an activity holds the call's external id
# (deleted ones too: the unique index keeps them), the live card holding the caller's number
# (what inbox.match_or_create_contact would match) and, for a `ringing` event, that card's
# screen pop — one round trip for a known caller's new call, the common case.
def _first_read_sql(*, with_pop: bool) -> str:
    pop = "," + _pop_columns("card.id", "NULL::uuid", "card.owner_id") if with_pop else ""
    return f"""
WITH card AS (
  SELECT c.id, c.full_name, c.status, c.kind, c.phones, c.emails, c.timezone, c.owner_id,
         c.tags
  FROM contact_identities i
  JOIN contacts c ON c.workspace_id = i.workspace_id AND c.id = i.contact_id
  WHERE i.workspace_id = $1 AND i.kind = 'phone' AND i.value = $3 AND c.deleted_at IS NULL
)
SELECT
  (SELECT row(h.id, h.deleted_at) FROM activities h
   WHERE h.workspace_id = $1 AND h.external_id = $2) AS holder,
  card.id, card.full_name, card.status, card.kind, card.phones, card.emails, card.timezone,
  card.owner_id, card.tags{pop}
FROM (SELECT 1) AS one LEFT JOIN card ON true
"""


_FIRST_READ = {True: _first_read_sql(with_pop=True), False: _first_read_sql(with_pop=False)}


async def screen_pop(session: AsyncSession, principal: Principal, contact: Card | Contact, *,
                     exclude_activity: uuid.UUID | None = None) -> ScreenPop:
    """Who is calling: the card, its open deals and tasks, its last interactions."""
    conn = await driver_connection(session)
    row = await conn.fetchrow(_POP_SQL, principal.workspace_id, contact.id, exclude_activity,
                              contact.owner_id)
    return _pop(contact, row)


def _pop(contact: Card | Contact, row: Mapping[str, Any]) -> ScreenPop:
    owner = None
    if row["owner"] is not None:
        user_id, full_name, email = row["owner"]
        owner = PopOwner(id=user_id, full_name=full_name, email=email)
    return ScreenPop(
        contact=PopContact(id=contact.id, full_name=contact.full_name, status=contact.status,
                           kind=contact.kind, phones=contact.phones, emails=contact.emails,
                           timezone=contact.timezone,
                           local_time=local_time(contact.timezone, clock.now()), owner=owner,
                           tags=contact.tags),
        open_deals=[PopDeal(id=d[0], title=d[1], pipeline_id=d[2], stage_id=d[3],
                            stage_name=d[4], amount=None if d[5] is None else str(d[5]),
                            currency=d[6], owner_id=d[7]) for d in row["deals"]],
        open_tasks=[PopTask(id=t[0], title=t[1], type=t[2], due_at=t[3], assignee_id=t[4])
                    for t in row["tasks"]],
        last_interactions=[PopInteraction(id=a[0], type=a[1], direction=a[2],
                                          occurred_at=a[3], subject=a[4], call_status=a[5],
                                          duration_seconds=a[6], owner_id=a[7])
                           for a in row["last"]])
