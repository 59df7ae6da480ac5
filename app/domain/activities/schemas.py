"""Activity bodies and responses. Cross-field rules (direction per type, call fields only on
calls, at least one linked record) need the merged record, so the service checks them."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

ActivityType = Literal["call", "email", "sms", "message", "meeting", "note"]
Direction = Literal["in", "out"]
CallStatus = Literal["answered", "missed", "busy"]

MAX_BODY = 100_000
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refuse it here rather than fail on write.
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character")
    return value


def _in_utc(value: datetime) -> datetime:
    """Stored and shown in UTC, whatever offset it came with."""
    if not EARLIEST <= value < LATEST:
        raise ValueError("a time between the years 1900 and 2999")
    return value.astimezone(UTC)


def _plain_json(value: Any) -> Any:
    """`data` is stored as JSONB, which refuses NUL in strings and non-finite numbers."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item)
    return value


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(_no_nul)]


Short = _text(50, 1)
Name = _text(300)
EmailText = _text(320)
Subject = _text(1000)
Body = _text(MAX_BODY)
ExternalId = _text(200, 1)
Time = Annotated[AwareDatetime, AfterValidator(_in_utc)]
Data = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_plain_json)]


class Participant(BaseModel):
    """Someone who took part: a person outside (name, email, phone) or a user."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: EmailText | None = None
    phone: Short | None = None
    user_id: uuid.UUID | None = None


class ActivityFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ActivityType | None = None
    direction: Direction | None = Field(
        default=None, description="in / out: required for calls, emails, SMS and messages; "
                                  "meetings and notes have none")
    channel: Short | None = Field(
        default=None, description="phone, email, sms, whatsapp, telegram, …; calls, emails "
                                  "and SMS default to phone, email and sms")
    occurred_at: Time | None = Field(default=None, description="When it happened (RFC 3339 "
                                                               "with offset); default now")
    owner_id: uuid.UUID | None = Field(default=None, description="The user who handled it; "
                                                                 "default the creating user")
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    participants: list[Participant] | None = Field(default=None, max_length=100)
    subject: Subject | None = None
    body: Body | None = None
    from_number: Short | None = Field(
        default=None, description="Calls only: any common format, stored as E.164 "
                                  "(an internal extension of up to 6 digits stays as given)")
    to_number: Short | None = Field(
        default=None, description="Calls only, as from_number")
    call_status: CallStatus | None = Field(default=None, description="Calls only")
    duration_seconds: int | None = Field(default=None, ge=0, le=7 * 24 * 3600,
                                         description="Calls only")
    recording_url: AnyHttpUrl | None = Field(default=None, description="Calls only: http(s)")
    mentions: list[uuid.UUID] | None = Field(default=None, max_length=50, description=(
        "Notes only: users mentioned; each is notified once"))
    data: Data | None = None
    external_id: ExternalId | None = None


class ActivityCreate(ActivityFields):
    type: ActivityType


class ActivityUpdate(ActivityFields):
    """JSON merge-patch: a field that is present is set (null clears it); absent ones stay."""


class ParticipantOut(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    user_id: uuid.UUID | None = None


class ActivityRead(BaseModel):
    id: uuid.UUID
    type: str
    direction: str | None
    channel: str | None
    occurred_at: datetime
    owner_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    company_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    participants: list[ParticipantOut]
    subject: str | None
    body: str | None
    from_number: str | None
    to_number: str | None
    call_status: str | None
    duration_seconds: int | None
    recording_url: str | None
    mentions: list[uuid.UUID]
    data: dict[str, Any]
    external_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str
