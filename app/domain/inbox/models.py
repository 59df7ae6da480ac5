"""The inbox: every incoming lead (call, form, email, SMS, message) waiting for a decision,
and the inbound messages whose first response is timed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.models import TenantRecord, jsonb_field, ts_field

INBOX_CHANNELS = ("call", "form", "email", "sms", "message")
# new: waiting; accepted: turned into a deal; linked: attached to an existing card;
# declined: not a lead (spam, wrong number), with a reason.
INBOX_STATUSES = ("new", "accepted", "linked", "declined")


class InboxItem(TenantRecord, table=True):
    __tablename__ = "inbox_items"
    # Visibility follows the contact (see service.visible_condition).
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        # Each source event is recorded once.
        Index("uq_inbox_items_source", "workspace_id", "channel", "source_id", unique=True),
        Index("ix_inbox_items_list", "workspace_id", "created_at", "id"),
        Index("ix_inbox_items_status", "workspace_id", "status", "created_at", "id"),
        # The first response finds the contact's items still waiting for one.
        Index("ix_inbox_items_unanswered", "workspace_id", "contact_id",
              postgresql_where=text("first_response_at IS NULL")),
    )

    channel: str = Field(nullable=False)
    source_id: str = Field(nullable=False)
    status: str = Field(nullable=False)
    contact_id: uuid.UUID = Field(nullable=False)
    # Whether the lead's arrival created the card (an unknown number or address).
    contact_created: bool = Field(default=False, nullable=False)
    deal_id: uuid.UUID | None = Field(default=None)
    data: dict[str, Any] = jsonb_field(dict)
    received_at: datetime = ts_field()
    decided_at: datetime | None = ts_field(nullable=True, default=None)
    decided_by: str | None = Field(default=None)
    decline_reason: str | None = Field(default=None)
    first_response_at: datetime | None = ts_field(nullable=True, default=None)
    first_response_seconds: int | None = Field(default=None)


class InboundMessage(SQLModel, table=True):
    """An inbound email, SMS or messenger message logged on a card (an activity), timed until
    a user first answers that contact (reports: response time to messages)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "activity_id"],
                             ["activities.workspace_id", "activities.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        Index("ix_inbound_messages_unanswered", "workspace_id", "contact_id",
              postgresql_where=text("first_response_at IS NULL")),
        Index("ix_inbound_messages_received", "workspace_id", "received_at"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    activity_id: uuid.UUID = Field(primary_key=True)
    contact_id: uuid.UUID = Field(nullable=False)
    channel: str = Field(nullable=False)  # the activity type: email / sms / message
    received_at: datetime = ts_field()
    first_response_at: datetime | None = ts_field(nullable=True, default=None)
    first_response_seconds: int | None = Field(default=None)
