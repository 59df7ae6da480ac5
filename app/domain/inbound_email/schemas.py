"""The inbound email an email integration posts (a parsed message, attachments as
metadata only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.activities.schemas import Time, _no_nul


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(_no_nul)]


Address = _text(998, 3)
Filename = _text(500)
ContentType = _text(200)
ContentId = _text(998)
Subject = _text(1000)
PlainText = _text(100_000)
HtmlText = _text(500_000)
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=998,
                                             pattern=r"^\s*<?[\x21-\x7e]+>?\s*$")]
MAX_TEXT = 100_000
MAX_HTML = 500_000


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Filename | None = None
    content_type: ContentType | None = None
    size: int | None = Field(default=None, ge=0, le=1 << 40)
    url: AnyHttpUrl | None = Field(default=None, description="Where the file can be fetched")
    content_id: ContentId | None = None


class InboundEmail(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Address = Field(alias="from", description='"Name <address>" or an address')
    to: list[Address] = Field(default_factory=list, max_length=100)
    cc: list[Address] = Field(default_factory=list, max_length=100)
    subject: Subject | None = None
    text: PlainText | None = Field(default=None, description="The plain-text body")
    html: HtmlText | None = Field(default=None, description="The HTML body")
    message_id: MessageId = Field(description="The Message-ID header: each is recorded once")
    in_reply_to: MessageId | None = Field(default=None, description="In-Reply-To: the reply "
                                          "joins that message's thread")
    references: list[MessageId] = Field(default_factory=list, max_length=100)
    date: Time | None = Field(default=None, description="When it was sent; default now")
    attachments: list[Attachment] = Field(default_factory=list, max_length=50,
                                          description="Metadata only; the files stay with "
                                                      "the mail provider")


class InboundEmailResult(BaseModel):
    message_id: str
    duplicate: bool = Field(description="This Message-ID was already recorded: nothing new "
                                        "was written")
    activity_id: uuid.UUID = Field(description="The inbound email on the timeline")
    contact_id: uuid.UUID
    contact_created: bool
    thread_id: uuid.UUID
    inbox_item_id: uuid.UUID | None = Field(description="The lead an unknown sender made")
