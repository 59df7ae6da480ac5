"""Contacts (the customer card) and the identities (phones, emails) that find them."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.models import TenantRecord, jsonb_field, text_array_field


class Contact(TenantRecord, table=True):
    __tablename__ = "contacts"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "owner_id"], ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "company_id"],
                             ["companies.workspace_id", "companies.id"]),
        Index("uq_contacts_external_id", "workspace_id", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_contacts_list", "workspace_id", "created_at", "id"),
        Index("ix_contacts_owner", "workspace_id", "owner_id"),
        Index("ix_contacts_company", "workspace_id", "company_id"),
        Index("ix_contacts_search", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
        Index("ix_contacts_tags", "tags", postgresql_using="gin"),
    )

    first_name: str | None = Field(default=None)
    last_name: str | None = Field(default=None)
    middle_name: str | None = Field(default=None)
    full_name: str = Field(default="", nullable=False)
    phones: list[dict[str, Any]] = jsonb_field(list)
    emails: list[dict[str, Any]] = jsonb_field(list)
    address: dict[str, Any] | None = jsonb_field(None, nullable=True)
    timezone: str | None = Field(default=None)
    status: str = Field(default="new", nullable=False)
    kind: str = Field(default="customer", nullable=False)
    owner_id: uuid.UUID | None = Field(default=None)
    company_id: uuid.UUID | None = Field(default=None)
    source: str | None = Field(default=None)
    utm: dict[str, Any] | None = jsonb_field(None, nullable=True)
    birthday: date | None = Field(default=None)
    tags: list[str] = text_array_field()
    custom_fields: dict[str, Any] = jsonb_field(dict)
    external_id: str | None = Field(default=None)
    search_text: str = Field(default="", nullable=False)
    merged_into_id: uuid.UUID | None = Field(default=None)


class ContactIdentity(SQLModel, table=True):
    """One normalized phone or email of a live contact: unique per workspace, used for lookup
    and de-duplication. Soft-deleted contacts release their identities."""

    __tablename__ = "contact_identities"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"], ondelete="CASCADE"),
        Index("ix_contact_identities_contact", "workspace_id", "contact_id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(primary_key=True)  # "phone" | "email"
    value: str = Field(primary_key=True)
    contact_id: uuid.UUID = Field(nullable=False)
