"""Activities: calls, emails, SMS, messenger messages, meetings and notes on the timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, jsonb_field, ts_field

ACTIVITY_TYPES = ("call", "email", "sms", "message", "meeting", "note")


class Activity(TenantRecord, table=True):
    __tablename__ = "activities"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "owner_id"], ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        ForeignKeyConstraint(["workspace_id", "company_id"],
                             ["companies.workspace_id", "companies.id"]),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        Index("ix_activities_list", "workspace_id", "created_at", "id"),
        # The default list order, newest first by when it happened.
        Index("ix_activities_occurred", "workspace_id", "occurred_at", "id"),
        # A call or email logged twice by an integration is found by its external id.
        Index("uq_activities_external_id", "workspace_id", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_activities_contact", "workspace_id", "contact_id", "occurred_at", "id"),
        Index("ix_activities_company", "workspace_id", "company_id", "occurred_at", "id"),
        Index("ix_activities_deal", "workspace_id", "deal_id", "occurred_at", "id"),
        # A messenger sender known only by a handle (a Telegram id) finds its card through
        # the last inbound message from that handle on that channel.
        Index("ix_activities_sender_handle", "workspace_id", "channel",
              text("(data ->> 'sender_handle')"), text("occurred_at DESC"),
              postgresql_where=text("direction = 'in' AND deleted_at IS NULL"
                                    " AND (data ->> 'sender_handle') IS NOT NULL")),
    )

    type: str = Field(nullable=False)  # call / email / sms / message / meeting / note
    direction: str | None = Field(default=None)  # in / out
    channel: str | None = Field(default=None)  # e.g. phone, whatsapp, telegram, smtp
    occurred_at: datetime = ts_field()
    owner_id: uuid.UUID | None = Field(default=None)  # the user who handled it
    contact_id: uuid.UUID | None = Field(default=None)
    company_id: uuid.UUID | None = Field(default=None)
    deal_id: uuid.UUID | None = Field(default=None)
    participants: list[dict[str, Any]] = jsonb_field(list)
    subject: str | None = Field(default=None)
    body: str | None = Field(default=None)
    # Calls
    from_number: str | None = Field(default=None)
    to_number: str | None = Field(default=None)
    call_status: str | None = Field(default=None)  # answered / missed / busy
    duration_seconds: int | None = Field(default=None)
    recording_url: str | None = Field(default=None)
    mentions: list[str] = jsonb_field(list)  # user ids mentioned in a note
    data: dict[str, Any] = jsonb_field(dict)
    external_id: str | None = Field(default=None)
