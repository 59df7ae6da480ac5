"""Custom field definitions per object type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, jsonb_field


class CustomFieldDefinition(TenantRecord, table=True):
    __tablename__ = "custom_field_definitions"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        UniqueConstraint("workspace_id", "object_type", "key", name="uq_custom_fields_key"),
    )

    object_type: str = Field(nullable=False)  # contact | company | deal
    key: str = Field(nullable=False)
    label: str = Field(nullable=False)
    type: str = Field(nullable=False)
    options: list[str] = jsonb_field(list)
    required: bool = Field(default=False, nullable=False)
    meta: dict[str, Any] = jsonb_field(dict)
