"""Inbox request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.activities.schemas import _no_nul

Title = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True),
                  AfterValidator(_no_nul)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True),
                   AfterValidator(_no_nul)]


class InboxAccept(BaseModel):
    """Turn the lead into a deal on its card (all optional)."""

    model_config = ConfigDict(extra="forbid")

    pipeline_id: uuid.UUID | None = Field(default=None, description="Default: the stage's "
                                          "pipeline, or the workspace's default pipeline")
    stage_id: uuid.UUID | None = Field(default=None, description="Default: the pipeline's "
                                       "first open stage")
    title: Title | None = Field(default=None, description="Default: from the lead (the "
                                "card's name or number and the channel)")
    owner_id: uuid.UUID | None = Field(default=None, description="The deal's owner; also "
                                       "becomes the card's owner when it has none. Default: "
                                       "the accepting user")


class InboxLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID = Field(description="The existing card this lead belongs to")


class InboxDecline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why it is not a lead (spam, wrong number, …)")


class InboxItemRead(BaseModel):
    id: uuid.UUID
    channel: str = Field(description="call, form, email, sms or message")
    source_id: str = Field(description="The source event's id (call id, Message-ID, form "
                                       "submission id): each is recorded once")
    status: str = Field(description="new, accepted, linked or declined")
    contact_id: uuid.UUID
    contact_created: bool = Field(description="Whether this lead's arrival created the card")
    deal_id: uuid.UUID | None
    data: dict[str, Any] = Field(description="What the source sent (channel-specific)")
    received_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decline_reason: str | None
    first_response_at: datetime | None = Field(description="When a user first called, "
                                               "emailed or messaged the contact afterwards")
    first_response_seconds: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
