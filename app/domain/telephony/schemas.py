"""Provider-neutral call events and the screen pop answered to a ringing call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.domain.activities.schemas import Time, _no_nul

CallStatus = Literal["ringing", "answered", "completed", "missed", "busy"]
Number = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320)]
CallId = Annotated[str, StringConstraints(min_length=1, max_length=190,
                                          pattern=r"^[\x21-\x7e]+$")]


class CallEvent(BaseModel):
    """One event of a call, as a PBX sends it; several per call (ringing, answered,
    completed), in any order and possibly twice."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    call_id: CallId = Field(description="The PBX's id of the call (Asterisk: UNIQUEID / "
                                        "LINKEDID); every event of one call carries it")
    direction: Literal["in", "out", "inbound", "outbound"] = Field(
        description="in: the customer calls; out: a user calls the customer")
    from_: Number = Field(alias="from", description="Caller number (any common format) or an "
                          "internal extension")
    to: Number = Field(description="Called number or extension")
    status: CallStatus
    started_at: Time | None = Field(default=None, description="Default: now")
    answered_at: Time | None = None
    ended_at: Time | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=7 * 24 * 3600,
                                         description="Talk time; default ended − answered")
    recording_url: AnyHttpUrl | None = None
    extension: Number | None = Field(default=None, description="The line or extension on "
                                     "our side; mapped to a user by the integration's config")
    user_id: uuid.UUID | None = Field(default=None, description="The user the call belongs "
                                      "to (instead of an extension)")
    user_email: Email | None = Field(default=None, description="Or the user's email")

    @field_validator("direction")
    @classmethod
    def _short(cls, value: str) -> str:
        return {"inbound": "in", "outbound": "out"}.get(value, value)

    @field_validator("from_", "to", "extension")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return _no_nul(value) if value is not None else None


class PopOwner(BaseModel):
    id: uuid.UUID
    full_name: str
    email: str


class PopContact(BaseModel):
    id: uuid.UUID
    full_name: str
    status: str
    kind: str
    phones: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    timezone: str | None
    local_time: str | None = Field(description="The customer's local time now")
    owner: PopOwner | None
    tags: list[str]


class PopDeal(BaseModel):
    id: uuid.UUID
    title: str
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage_name: str
    amount: str | None
    currency: str
    owner_id: uuid.UUID | None


class PopTask(BaseModel):
    id: uuid.UUID
    title: str
    type: str
    due_at: datetime | None
    assignee_id: uuid.UUID | None


class PopInteraction(BaseModel):
    id: uuid.UUID
    type: str
    direction: str | None
    occurred_at: datetime
    subject: str | None
    call_status: str | None
    duration_seconds: int | None
    owner_id: uuid.UUID | None


class ScreenPop(BaseModel):
    contact: PopContact
    open_deals: list[PopDeal]
    open_tasks: list[PopTask]
    last_interactions: list[PopInteraction] = Field(description="Newest first, this call "
                                                    "left out")


class CallResult(BaseModel):
    call_id: str
    status: str = Field(description="The call's status as recorded (never goes back: a late "
                                    "`ringing` after `completed` leaves it completed)")
    activity_id: uuid.UUID = Field(description="The call on the timeline")
    contact_id: uuid.UUID
    contact_created: bool = Field(description="The number was unknown: a new card")
    user_id: uuid.UUID | None = Field(description="The user the call belongs to")
    inbox_item_id: uuid.UUID | None = Field(description="The lead an unknown number made")
    callback_task_id: uuid.UUID | None = Field(description="The call-back task a missed "
                                               "inbound call created")
    screen_pop: ScreenPop | None = Field(description="On ringing: who is calling")
