"""Message request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.tasks.schemas import UtcDatetime, _no_nul, _storable_json

Channel = Literal["email", "sms"]
Recipient = Annotated[str, StringConstraints(min_length=1, max_length=320),
                      AfterValidator(_no_nul)]
Subject = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=100_000),
                 AfterValidator(_no_nul)]
Variables = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_storable_json)]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    contact_id: uuid.UUID | None = Field(
        default=None, description="The recipient's card: its first email or phone is used "
                                  "unless `to` is given, and its variables fill the template")
    to: Recipient | None = Field(default=None, description="An explicit address or number "
                                 "(any common format; stored as E.164)")
    deal_id: uuid.UUID | None = Field(default=None, description="The deal it is about: its "
                                      "variables fill the template, and it shows on its "
                                      "timeline")
    template_id: uuid.UUID | None = Field(default=None, description="An email or sms "
                                          "template of the same channel")
    subject: Subject | None = Field(default=None, description="Email only, without a template")
    body: Body | None = Field(default=None, description="Without a template (a template "
                              "too: variables work)")
    send_at: UtcDatetime | None = Field(default=None, description="Send later (RFC 3339 with "
                                        "an offset); default now")
    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10,
                                          description="Documents to attach as PDFs (email)")
    variables: Variables | None = Field(default=None, description="Extra template variables")


class MessageRead(BaseModel):
    id: uuid.UUID
    channel: str
    status: str = Field(description="scheduled, queued, sending, sent or failed")
    contact_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    template_id: uuid.UUID | None
    to: str
    subject: str | None
    body: str
    document_ids: list[uuid.UUID]
    send_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When the worker takes it (next)")
    attempts: int
    message_key: str = Field(description="The Message-ID / idempotency key every attempt "
                                         "sends")
    provider: str | None
    provider_message_id: str | None
    provider_response: dict[str, Any] | None = Field(description="The provider's last answer")
    last_error: str | None
    sent_at: datetime | None
    failed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
