"""Outgoing emails and SMS: written when asked for, sent by the worker, with their outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, empty_list, jsonb_field, ts_field

# scheduled: waits for send_at; queued: due; sending: claimed by a worker; sent; failed.
MESSAGE_STATUSES = ("scheduled", "queued", "sending", "sent", "failed")


class Message(TenantRecord, table=True):
    __tablename__ = "messages"
    # Visibility follows the contact (see service.visible_condition).
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        ForeignKeyConstraint(["workspace_id", "template_id"],
                             ["templates.workspace_id", "templates.id"]),
        Index("ix_messages_list", "workspace_id", "created_at", "id"),
        Index("ix_messages_contact", "workspace_id", "contact_id", "created_at"),
        Index("ix_messages_deal", "workspace_id", "deal_id", "created_at"),
        # The worker's queue: what is due, and claims whose worker went away.
        Index("ix_messages_due", "workspace_id", "next_attempt_at",
              postgresql_where=text("status IN ('queued', 'scheduled', 'sending')")),
    )

    channel: str = Field(nullable=False)  # email / sms
    contact_id: uuid.UUID | None = Field(default=None)
    deal_id: uuid.UUID | None = Field(default=None)
    template_id: uuid.UUID | None = Field(default=None)
    to: str = Field(nullable=False)
    subject: str | None = Field(default=None)
    body: str = Field(nullable=False)
    document_ids: list[uuid.UUID] = Field(default_factory=empty_list,
                                          sa_type=ARRAY(UUID(as_uuid=True)), nullable=False)
    status: str = Field(nullable=False)
    send_at: datetime | None = ts_field(nullable=True, default=None)
    # When the worker may (next) take it: send_at, a retry's backoff, a claim's lease end.
    next_attempt_at: datetime = ts_field()
    attempts: int = Field(default=0, nullable=False)
    # The stable Message-ID (email) / idempotency key (SMS) every attempt sends.
    message_key: str = Field(nullable=False)
    provider: str | None = Field(default=None)
    provider_message_id: str | None = Field(default=None)
    provider_response: dict[str, Any] | None = jsonb_field(None, nullable=True)
    last_error: str | None = Field(default=None)
    sent_at: datetime | None = ts_field(nullable=True, default=None)
    failed_at: datetime | None = ts_field(nullable=True, default=None)
