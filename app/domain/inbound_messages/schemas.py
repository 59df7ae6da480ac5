"""An SMS or messenger message that a messaging integration (an SMS gateway, a WhatsApp /
Telegram / Viber bridge) posts to Relata."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.domain.activities.schemas import Time, _no_nul
from app.domain.inbound_email.schemas import Attachment


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(_no_nul)]


Channel = Annotated[str, StringConstraints(min_length=2, max_length=30,
                                           pattern=r"^[a-z][a-z0-9_-]*$")]
ProviderId = _text(500, 1)


class Sender(BaseModel):
    """Who wrote: a phone (SMS, WhatsApp, Viber), and/or an email, and/or the messenger's own
    handle or user id (Telegram and the like). At least one of the three."""

    model_config = ConfigDict(extra="forbid")

    phone: _text(50, 3) | None = None  # type: ignore[valid-type]
    email: _text(320, 3) | None = None  # type: ignore[valid-type]
    handle: _text(200, 1) | None = Field(default=None, description=(  # type: ignore[valid-type]
        "The messenger's id of the person (e.g. a Telegram user id or @name): later messages "
        "from the same handle on the same channel find the same card"))
    name: _text(300) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _someone(self) -> Sender:
        if not (self.phone or self.email or self.handle):
            raise ValueError("give the sender's phone, email or handle")
        return self


class InboundMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    channel: Channel = Field(description="sms, whatsapp, telegram, viber, …")
    message_id: ProviderId = Field(description="The provider's id of the message: each is "
                                               "recorded once per channel")
    from_: Sender = Field(alias="from")
    to: _text(200) | None = Field(default=None, description=(  # type: ignore[valid-type]
        "The company's number or bot that received it"))
    text: _text(100_000) | None = None  # type: ignore[valid-type]
    date: Time | None = Field(default=None, description="When it was sent; default now")
    attachments: list[Attachment] = Field(default_factory=list, max_length=50,
                                          description="Metadata only")


class InboundMessageResult(BaseModel):
    channel: str
    message_id: str
    duplicate: bool = Field(description="This message was already recorded: nothing new was "
                                        "written")
    activity_id: uuid.UUID = Field(description="The inbound message on the timeline")
    contact_id: uuid.UUID
    contact_created: bool
    inbox_item_id: uuid.UUID | None = Field(description="The lead an unknown sender made")
