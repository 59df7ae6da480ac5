"""GraphQL object and input types for activities and the timeline."""

from __future__ import annotations

import datetime
import enum
import uuid

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.types.common import PageInfo
from app.api.graphql.types.records import Company, Contact
from app.domain.activities.schemas import ActivityRead
from app.domain.timeline.service import TimelineEntry as TimelineEntryRead


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="Someone who took part: a person outside or a user.")
class Participant:
    name: str | None
    email: str | None
    phone: str | None = strawberry.field(description="E.164")
    user_id: strawberry.ID | None


@strawberry.type(description="A call, email, SMS, message, meeting or note.")
class Activity:
    id: strawberry.ID
    type: str = strawberry.field(description="call, email, sms, message, meeting or note")
    direction: str | None = strawberry.field(description="in / out; none for meetings, notes")
    channel: str | None
    occurred_at: datetime.datetime
    owner_id: strawberry.ID | None = strawberry.field(description="The user who handled it")
    contact_id: strawberry.ID | None
    company_id: strawberry.ID | None
    deal_id: strawberry.ID | None
    participants: list[Participant]
    subject: str | None
    body: str | None
    from_number: str | None
    to_number: str | None
    call_status: str | None = strawberry.field(description="answered, missed or busy")
    duration_seconds: int | None
    recording_url: str | None
    mentions: list[strawberry.ID]
    data: JSON
    external_id: str | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    created_by: str

    @strawberry.field(description="The linked contact, when you may see it")
    async def contact(self, info: strawberry.Info) -> Contact | None:
        if self.contact_id is None:
            return None
        found = await info.context.loaders.get("contact").load(
            uuid.UUID(str(self.contact_id)))
        return Contact.of(found) if found else None

    @strawberry.field(description="The linked company, when you may see it")
    async def company(self, info: strawberry.Info) -> Company | None:
        if self.company_id is None:
            return None
        found = await info.context.loaders.company.load(uuid.UUID(str(self.company_id)))
        return Company.of(found) if found else None

    @classmethod
    def of(cls, a: ActivityRead) -> Activity:
        return cls(id=strawberry.ID(str(a.id)), type=a.type, direction=a.direction,
                   channel=a.channel, occurred_at=a.occurred_at, owner_id=_id(a.owner_id),
                   contact_id=_id(a.contact_id), company_id=_id(a.company_id),
                   deal_id=_id(a.deal_id),
                   participants=[Participant(name=p.name, email=p.email, phone=p.phone,
                                             user_id=_id(p.user_id)) for p in a.participants],
                   subject=a.subject, body=a.body, from_number=a.from_number,
                   to_number=a.to_number, call_status=a.call_status,
                   duration_seconds=a.duration_seconds, recording_url=a.recording_url,
                   mentions=[strawberry.ID(str(m)) for m in a.mentions], data=a.data,
                   external_id=a.external_id, version=a.version, created_at=a.created_at,
                   updated_at=a.updated_at, created_by=a.created_by)


@strawberry.type
class ActivityEdge:
    cursor: str
    node: Activity


@strawberry.type
class ActivityConnection:
    edges: list[ActivityEdge]
    page_info: PageInfo


@strawberry.input
class ParticipantInput:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    user_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input(description="Fields of an activity; on update, omitted fields stay as they "
                              "are and null clears a field (merge-patch). `type` is required "
                              "to log one.")
class ActivityInput:
    type: str | None = strawberry.UNSET
    direction: str | None = strawberry.UNSET
    channel: str | None = strawberry.UNSET
    occurred_at: datetime.datetime | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    contact_id: strawberry.ID | None = strawberry.UNSET
    company_id: strawberry.ID | None = strawberry.UNSET
    deal_id: strawberry.ID | None = strawberry.UNSET
    participants: list[ParticipantInput] | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    from_number: str | None = strawberry.UNSET
    to_number: str | None = strawberry.UNSET
    call_status: str | None = strawberry.UNSET
    duration_seconds: int | None = strawberry.UNSET
    recording_url: str | None = strawberry.UNSET
    mentions: list[strawberry.ID] | None = strawberry.UNSET
    data: JSON | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.enum(description="The record whose timeline to read")
class TimelineRecordType(enum.Enum):
    CONTACT = "contact"
    COMPANY = "company"
    DEAL = "deal"


@strawberry.enum
class TimelineEntryKind(enum.Enum):
    ACTIVITY = "activity"
    TASK = "task"
    STAGE_CHANGE = "stage_change"
    CHANGE = "change"
    CREATED = "created"
    DOCUMENT = "document"
    MESSAGE = "message"


@strawberry.type(description="The record an entry is about")
class TimelineRecordRef:
    type: str = strawberry.field(description="activity, task, deal, contact, company, "
                                             "document or message")
    id: strawberry.ID


@strawberry.type(description="One thing that happened to the record")
class TimelineEntry:
    id: strawberry.ID
    kind: TimelineEntryKind
    occurred_at: datetime.datetime
    actor: str = strawberry.field(description='"user:<id>", "api_key:<id>" or "system"')
    actor_name: str | None = strawberry.field(description="The user's name, for a user")
    summary: str = strawberry.field(description="A short human-readable line")
    record: TimelineRecordRef
    payload: JSON = strawberry.field(description="As in the REST timeline")
    activity: Activity | None = strawberry.field(description="The activity, for kind ACTIVITY")

    @classmethod
    def of(cls, e: TimelineEntryRead) -> TimelineEntry:
        activity = Activity.of(ActivityRead.model_validate(e.payload)) \
            if e.kind == "activity" else None
        return cls(id=strawberry.ID(e.id), kind=TimelineEntryKind(e.kind),
                   occurred_at=e.occurred_at, actor=e.actor, actor_name=e.actor_name,
                   summary=e.summary,
                   record=TimelineRecordRef(type=e.record.type,
                                            id=strawberry.ID(str(e.record.id))),
                   payload=e.payload, activity=activity)


@strawberry.type
class TimelineEntryEdge:
    cursor: str
    node: TimelineEntry


@strawberry.type
class TimelineConnection:
    edges: list[TimelineEntryEdge]
    page_info: PageInfo
