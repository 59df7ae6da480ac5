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
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate, ActivityUpdate
from app.domain.automations.actions import resolve_who
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal, DealContact
from app.domain.inbox import service as inbox
from app.domain.integrations.models import Integration
from app.domain.outbox.service import record_event
from app.domain.pipelines.models import Stage
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import local_time, try_normalize_phone
from app.domain.shared.principal import Principal
from app.domain.tasks import service as tasks
from app.domain.tasks.models import Task
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
from app.domain.workspaces.context import current_workspace
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


async def _user(session: AsyncSession, integration: Integration,
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


async def handle_call(session: AsyncSession, integration: Integration, principal: Principal,
                      event: CallEvent) -> CallResult:
    region = (await current_workspace(session, principal)).default_region
    customer_field = "from" if event.direction == "in" else "to"
    customer_raw = event.from_ if event.direction == "in" else event.to
    e164 = try_normalize_phone(customer_raw, region)
    if e164 is None:
        raise ValidationError.at(["body", customer_field],
                                 f"the customer's number is not a phone number: "
                                 f"{customer_raw!r}", "phone")
    user_id = await _user(session, integration, event)
    external_id = f"call:{event.call_id}"
    # One writer per call at a time: a duplicate delivery waits, then sees the first's work.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                          {"k": f"{principal.workspace_id}:{external_id}"})
    call = (await session.execute(select(Activity).where(
        Activity.external_id == external_id, Activity.deleted_at.is_(None)))
    ).scalar_one_or_none()
    if call is None:
        contact, created = await inbox.match_or_create_contact(session, principal, phone=e164,
                                                               source="call")
        call = await _log_call(session, principal, event, contact, created, user_id,
                               external_id)
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
    pop = await screen_pop(session, principal, contact, exclude_activity=call.id) \
        if event.status == "ringing" else None
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
                    contact: Contact, created: bool, user_id: uuid.UUID | None,
                    external_id: str) -> Activity:
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
        recording_url=event.recording_url, data=data, external_id=external_id))


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


async def _call_back(session: AsyncSession, principal: Principal, integration: Integration,
                     call: Activity, contact: Contact) -> None:
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


async def screen_pop(session: AsyncSession, principal: Principal, contact: Contact, *,
                     exclude_activity: uuid.UUID | None = None) -> ScreenPop:
    """Who is calling: the card, its open deals and tasks, its last interactions."""
    ws = principal.workspace_id
    deals = (await session.execute(
        select(Deal.id, Deal.title, Deal.pipeline_id, Deal.stage_id, Stage.name, Deal.amount,
               Deal.currency, Deal.owner_id)
        .join(DealContact, (DealContact.workspace_id == Deal.workspace_id)
              & (DealContact.deal_id == Deal.id))
        .join(Stage, (Stage.workspace_id == Deal.workspace_id) & (Stage.id == Deal.stage_id))
        .where(DealContact.workspace_id == ws, DealContact.contact_id == contact.id,
               Deal.status == "open", Deal.deleted_at.is_(None))
        .order_by(Deal.created_at.desc()).limit(POP_LIMIT))).all()
    open_tasks = (await session.execute(
        select(Task.id, Task.title, Task.type, Task.due_at, Task.assignee_id)
        .where(Task.workspace_id == ws, Task.contact_id == contact.id, Task.status == "open",
               Task.deleted_at.is_(None))
        .order_by(Task.due_at.asc().nulls_last(), Task.id).limit(POP_LIMIT))).all()
    recent = select(Activity.id, Activity.type, Activity.direction, Activity.occurred_at,
                    Activity.subject, Activity.call_status, Activity.duration_seconds,
                    Activity.owner_id).where(
        Activity.workspace_id == ws, Activity.contact_id == contact.id,
        Activity.deleted_at.is_(None))
    if exclude_activity is not None:
        recent = recent.where(Activity.id != exclude_activity)
    last = (await session.execute(recent.order_by(Activity.occurred_at.desc(),
                                                  Activity.id.desc())
                                  .limit(LAST_INTERACTIONS))).all()
    owner = None
    if contact.owner_id is not None:
        user = await session.get(User, (ws, contact.owner_id))
        if user is not None:
            owner = PopOwner(id=user.id, full_name=user.full_name, email=user.email)
    return ScreenPop(
        contact=PopContact(id=contact.id, full_name=contact.full_name, status=contact.status,
                           kind=contact.kind, phones=contact.phones, emails=contact.emails,
                           timezone=contact.timezone,
                           local_time=local_time(contact.timezone, clock.now()), owner=owner,
                           tags=contact.tags),
        open_deals=[PopDeal(id=d.id, title=d.title, pipeline_id=d.pipeline_id,
                            stage_id=d.stage_id, stage_name=d.name,
                            amount=None if d.amount is None else str(d.amount),
                            currency=d.currency, owner_id=d.owner_id) for d in deals],
        open_tasks=[PopTask(id=t.id, title=t.title, type=t.type, due_at=t.due_at,
                            assignee_id=t.assignee_id) for t in open_tasks],
        last_interactions=[PopInteraction(id=a.id, type=a.type, direction=a.direction,
                                          occurred_at=a.occurred_at, subject=a.subject,
                                          call_status=a.call_status,
                                          duration_seconds=a.duration_seconds,
                                          owner_id=a.owner_id) for a in last])


