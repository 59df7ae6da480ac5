"""Tasks: calls to make, meetings, measurements — with a due time and an assignee."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, jsonb_field, ts_field


class Task(TenantRecord, table=True):
    __tablename__ = "tasks"
    __owner_column__: ClassVar[str | None] = "assignee_id"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "assignee_id"], ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        ForeignKeyConstraint(["workspace_id", "company_id"],
                             ["companies.workspace_id", "companies.id"]),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        Index("ix_tasks_list", "workspace_id", "created_at", "id"),
        # "My work": an assignee's open tasks by due time.
        Index("ix_tasks_agenda", "workspace_id", "assignee_id", "due_at", "id",
              postgresql_where=text("status = 'open' AND deleted_at IS NULL")),
        # Sweeps: the work queues of the reminder and overdue sweeps (a task leaves the
        # queue once its marker is set, so old overdue tasks are not scanned every minute).
        Index("ix_tasks_overdue_sweep", "workspace_id", "due_at",
              postgresql_where=text("status = 'open' AND deleted_at IS NULL "
                                    "AND overdue_notified_at IS NULL")),
        Index("ix_tasks_reminder", "workspace_id", "reminder_at",
              postgresql_where=text("status = 'open' AND deleted_at IS NULL "
                                    "AND reminded_at IS NULL")),
        Index("ix_tasks_contact", "workspace_id", "contact_id"),
        Index("ix_tasks_company", "workspace_id", "company_id"),
        Index("ix_tasks_deal", "workspace_id", "deal_id"),
    )

    title: str = Field(nullable=False)
    type: str = Field(default="todo", nullable=False)
    description: str | None = Field(default=None)
    due_at: datetime | None = ts_field(nullable=True, default=None)
    reminder_at: datetime | None = ts_field(nullable=True, default=None)
    assignee_id: uuid.UUID | None = Field(default=None)
    contact_id: uuid.UUID | None = Field(default=None)
    company_id: uuid.UUID | None = Field(default=None)
    deal_id: uuid.UUID | None = Field(default=None)
    status: str = Field(default="open", nullable=False)  # open / done / canceled
    outcome: str | None = Field(default=None)
    note: str | None = Field(default=None)
    data: dict[str, Any] = jsonb_field(dict)
    attempt: int = Field(default=0, nullable=False)
    completed_at: datetime | None = ts_field(nullable=True, default=None)
    completed_by: str | None = Field(default=None)
    reminded_at: datetime | None = ts_field(nullable=True, default=None)
    overdue_notified_at: datetime | None = ts_field(nullable=True, default=None)
