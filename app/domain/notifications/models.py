"""Notifications: what a user has been told (a task assigned, a reminder, a rotting deal)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import ts_field


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"],
                             ondelete="CASCADE"),
        Index("ix_notifications_user", "workspace_id", "user_id", "id"),
        Index("ix_notifications_unread", "workspace_id", "user_id", "id",
              postgresql_where=text("read_at IS NULL")),
        # One notification per (user, kind, record, occasion): sweeps may run twice.
        Index("uq_notifications_dedup", "workspace_id", "user_id", "dedup_key", unique=True),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(nullable=False)
    type: str = Field(nullable=False)  # task_assigned / task_reminder / task_overdue / ...
    title: str = Field(nullable=False)
    body: str | None = Field(default=None)
    entity_type: str = Field(nullable=False)
    entity_id: uuid.UUID = Field(nullable=False)
    actor: str = Field(nullable=False)
    dedup_key: str = Field(nullable=False)
    created_at: datetime = ts_field()
    read_at: datetime | None = ts_field(nullable=True, default=None)
