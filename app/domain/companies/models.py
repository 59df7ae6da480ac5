"""Companies: the organisations contacts belong to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, jsonb_field, text_array_field


class Company(TenantRecord, table=True):
    __tablename__ = "companies"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "owner_id"], ["users.workspace_id", "users.id"]),
        Index("uq_companies_external_id", "workspace_id", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_companies_list", "workspace_id", "created_at", "id"),
        Index("ix_companies_search", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
    )

    name: str = Field(nullable=False)
    domain: str | None = Field(default=None)
    phones: list[dict[str, Any]] = jsonb_field(list)
    emails: list[dict[str, Any]] = jsonb_field(list)
    address: dict[str, Any] | None = jsonb_field(None, nullable=True)
    kind: str = Field(default="customer", nullable=False)
    owner_id: uuid.UUID | None = Field(default=None)
    tags: list[str] = text_array_field()
    custom_fields: dict[str, Any] = jsonb_field(dict)
    external_id: str | None = Field(default=None)
    search_text: str = Field(default="", nullable=False)
