"""Workspace integrations that sign their inbound requests (telephony, inbound email)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, jsonb_field, ts_field

INTEGRATION_KINDS = ("telephony", "email")


class Integration(TenantRecord, table=True):
    __tablename__ = "integrations"
    __owner_column__: ClassVar[str | None] = None  # admins manage them (the service checks)
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "team_id"], ["teams.workspace_id", "teams.id"]),
        Index("ix_integrations_list", "workspace_id", "created_at", "id"),
    )

    kind: str = Field(nullable=False)
    name: str = Field(nullable=False)
    enabled: bool = Field(default=True, nullable=False)
    # The Standard Webhooks secret (HMAC needs it in the clear); never shown after creation.
    secret: str = Field(nullable=False)
    # After a rotation the old secret still verifies until this time (senders switch over).
    previous_secret: str | None = Field(default=None)
    previous_secret_expires_at: datetime | None = ts_field(nullable=True, default=None)
    # Missed calls of cards without an owner go round-robin through this team.
    team_id: uuid.UUID | None = Field(default=None)
    # telephony: {"extensions": {"101": "<user id>"}}
    config: dict[str, Any] = jsonb_field(dict)
    last_used_at: datetime | None = ts_field(nullable=True, default=None)
