"""History and event-log entries as the REST API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.domain.outbox.models import Event


class EventRead(BaseModel):
    id: uuid.UUID
    type: str
    entity_type: str
    entity_id: uuid.UUID
    actor: str
    occurred_at: datetime
    changed: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def event_read(event: Event) -> EventRead:
    return EventRead.model_validate(event, from_attributes=True)
