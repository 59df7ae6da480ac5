"""Notification response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class NotificationRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID = Field(description="Whom it tells: always the caller")
    type: str = Field(description="task_assigned, task_reminder, task_overdue, deal_rotting, "
                                  "mention")
    title: str
    body: str | None
    entity_type: str = Field(description="The record it is about: task, deal, activity, ...")
    entity_id: uuid.UUID
    actor: str = Field(description="Who caused it: user:<id>, api_key:<id> or system")
    created_at: datetime
    read_at: datetime | None


class ReadAllResult(BaseModel):
    count: int = Field(description="How many notifications were marked read now")


class UnreadCount(BaseModel):
    count: int
