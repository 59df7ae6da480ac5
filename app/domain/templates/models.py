"""Templates a workspace writes for emails, SMS and documents (offers, contracts)."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import ForeignKeyConstraint, Index
from sqlmodel import Field

from app.domain.shared.models import TenantRecord


class Template(TenantRecord, table=True):
    __tablename__ = "templates"
    __owner_column__: ClassVar[str | None] = None  # workspace configuration: everyone sees it
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_templates_list", "workspace_id", "created_at", "id"),
    )

    kind: str = Field(nullable=False)  # email / sms / document
    name: str = Field(nullable=False)
    subject: str | None = Field(default=None)  # email only
    body: str = Field(nullable=False)
    format: str | None = Field(default=None)  # documents: html / text
