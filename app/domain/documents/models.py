"""Documents generated for a deal from a template: the HTML and the PDF, kept in PostgreSQL."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import Column, ForeignKeyConstraint, Index, LargeBinary
from sqlmodel import Field

from app.domain.shared.models import TenantRecord


class Document(TenantRecord, table=True):
    __tablename__ = "documents"
    # Visibility follows the deal (checked in the service): whoever sees the deal sees them.
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        ForeignKeyConstraint(["workspace_id", "template_id"],
                             ["templates.workspace_id", "templates.id"]),
        Index("ix_documents_deal", "workspace_id", "deal_id", "created_at", "id"),
    )

    deal_id: uuid.UUID = Field(nullable=False)
    template_id: uuid.UUID | None = Field(default=None)
    name: str = Field(nullable=False)
    html: str = Field(nullable=False)
    pdf: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
    pdf_size: int = Field(nullable=False)
    html_size: int = Field(nullable=False)
