"""Inbound emails by Message-ID: idempotency and threading."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index
from sqlmodel import Field, SQLModel

from app.domain.shared.models import ts_field


class EmailMessage(SQLModel, table=True):
    """One inbound email, once per Message-ID, in its thread (a reply joins the thread of
    the message it answers)."""

    __tablename__ = "email_messages"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "activity_id"],
                             ["activities.workspace_id", "activities.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        Index("ix_email_messages_thread", "workspace_id", "thread_id", "received_at"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    message_id: str = Field(primary_key=True)  # without the angle brackets
    thread_id: uuid.UUID = Field(nullable=False)
    activity_id: uuid.UUID = Field(nullable=False)
    contact_id: uuid.UUID = Field(nullable=False)
    in_reply_to: str | None = Field(default=None)
    received_at: datetime = ts_field()
