"""Website forms: their definitions and the submissions they received."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import TenantRecord, jsonb_field, text_array_field, ts_field

OWNER_STRATEGIES = ("none", "user", "round_robin")


class Form(TenantRecord, table=True):
    """A form a website embeds: its fields and where each lands on the card or the deal,
    the pipeline and stage its deals start in, who gets them, and the origins that may
    post it. Anyone with `form_key` may submit it; every member reads it, admins write it."""

    __tablename__ = "forms"
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "pipeline_id"],
                             ["pipelines.workspace_id", "pipelines.id"]),
        ForeignKeyConstraint(["workspace_id", "stage_id"], ["stages.workspace_id", "stages.id"]),
        ForeignKeyConstraint(["workspace_id", "owner_user_id"],
                             ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "owner_team_id"],
                             ["teams.workspace_id", "teams.id"]),
        UniqueConstraint("workspace_id", "form_key", name="uq_forms_form_key"),
        # The public endpoint finds the form by its key before it knows the workspace.
        Index("ix_forms_key", "form_key"),
        Index("ix_forms_list", "workspace_id", "created_at", "id"),
    )

    name: str = Field(nullable=False)
    form_key: str = Field(nullable=False)
    fields: list[Any] = jsonb_field(list)
    pipeline_id: uuid.UUID | None = Field(default=None)
    stage_id: uuid.UUID | None = Field(default=None)
    owner_strategy: str = Field(default="none", nullable=False)
    owner_user_id: uuid.UUID | None = Field(default=None)
    owner_team_id: uuid.UUID | None = Field(default=None)
    allowed_origins: list[str] = text_array_field()
    success_message: str = Field(nullable=False)
    redirect_url: str | None = Field(default=None)
    source: str = Field(default="website", nullable=False)
    honeypot_field: str = Field(default="website", nullable=False)
    # Submissions whose honeypot was filled: answered as a success, nothing else stored.
    honeypot_count: int = Field(default=0, nullable=False)
    submissions_per_minute: int | None = Field(default=None)
    enabled: bool = Field(default=True, nullable=False)


class FormSubmission(SQLModel, table=True):
    """One accepted submission: what was sent, where it came from, and what it made."""

    __tablename__ = "form_submissions"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "form_id"], ["forms.workspace_id", "forms.id"]),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"]),
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"]),
        # A client's submission id (Idempotency-Key) is taken once per form.
        UniqueConstraint("workspace_id", "form_id", "client_submission_id",
                         name="uq_form_submissions_client_id"),
        Index("ix_form_submissions_list", "workspace_id", "form_id", "created_at", "id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    form_id: uuid.UUID = Field(nullable=False)
    client_submission_id: str | None = Field(default=None)
    # SHA-256 of the submitted values: a resubmission with the same id must match it.
    fingerprint: str = Field(nullable=False)
    data: dict[str, Any] = jsonb_field(dict)
    utm: dict[str, Any] = jsonb_field(dict)
    referrer: str | None = Field(default=None)
    page_url: str | None = Field(default=None)
    origin: str | None = Field(default=None)
    ip: str | None = Field(default=None)
    user_agent: str | None = Field(default=None)
    contact_id: uuid.UUID | None = Field(default=None)
    contact_created: bool = Field(default=False, nullable=False)
    deal_id: uuid.UUID | None = Field(default=None)
    inbox_item_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = ts_field()
