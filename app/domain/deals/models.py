"""Deals, the contacts on them, and the intervals they spent in each stage."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Date, ForeignKeyConstraint, Index, Numeric, text
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import TenantRecord, jsonb_field, text_array_field, ts_field


def money_field(*, nullable: bool = True, default: Any = None) -> Any:
    # Unconstrained numeric keeps the scale the server quantized to (the currency's).
    return Field(default=default, sa_type=Numeric(), nullable=nullable)


class Deal(TenantRecord, table=True):
    __tablename__ = "deals"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "owner_id"], ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "pipeline_id"],
                             ["pipelines.workspace_id", "pipelines.id"]),
        ForeignKeyConstraint(["workspace_id", "stage_id"], ["stages.workspace_id", "stages.id"]),
        ForeignKeyConstraint(["workspace_id", "company_id"],
                             ["companies.workspace_id", "companies.id"]),
        Index("uq_deals_external_id", "workspace_id", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_deals_list", "workspace_id", "created_at", "id"),
        # The board: live deals of a stage, newest first.
        Index("ix_deals_board", "workspace_id", "stage_id", "created_at", "id",
              postgresql_where=text("deleted_at IS NULL")),
        # The board's per-stage counts and sums: an index-only scan, in group order.
        Index("ix_deals_board_totals", "workspace_id", "stage_id", "currency",
              postgresql_include=["amount", "probability", "owner_id"],
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_deals_owner", "workspace_id", "owner_id"),
        Index("ix_deals_company", "workspace_id", "company_id"),
        Index("ix_deals_rotting", "workspace_id", "stage_entered_at",
              postgresql_where=text("status = 'open' AND deleted_at IS NULL")),
        Index("ix_deals_search", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
    )

    title: str = Field(nullable=False)
    pipeline_id: uuid.UUID = Field(nullable=False)
    stage_id: uuid.UUID = Field(nullable=False)
    status: str = Field(default="open", nullable=False)  # open / won / lost
    amount: Decimal | None = money_field()
    currency: str = Field(nullable=False)
    line_items: list[dict[str, Any]] = jsonb_field(list)
    company_id: uuid.UUID | None = Field(default=None)
    owner_id: uuid.UUID | None = Field(default=None)
    expected_close_date: date | None = Field(default=None, sa_column=Column(Date()))
    lost_reason: str | None = Field(default=None)
    source: str | None = Field(default=None)
    tags: list[str] = text_array_field()
    custom_fields: dict[str, Any] = jsonb_field(dict)
    external_id: str | None = Field(default=None)
    search_text: str = Field(default="", nullable=False)
    stage_entered_at: datetime = ts_field()
    closed_at: datetime | None = ts_field(nullable=True, default=None)
    last_activity_at: datetime | None = ts_field(nullable=True, default=None)
    rotting_since: datetime | None = ts_field(nullable=True, default=None)
    # Score (S8): recomputed whenever an input changes.
    score_class: str | None = Field(default=None)
    score_points: int = Field(default=0, nullable=False)
    probability: int = Field(default=0, nullable=False)  # percent, stage adjusted by score
    expected_amount: Decimal | None = money_field()
    max_expected_amount: Decimal | None = money_field()
    score_explanation: list[dict[str, Any]] = jsonb_field(list)
    score_adjustment: int = Field(default=0, nullable=False)  # -1 / 0 / +1 class
    score_adjusted_by: str | None = Field(default=None)
    score_adjusted_at: datetime | None = ts_field(nullable=True, default=None)


class DealContact(SQLModel, table=True):
    __tablename__ = "deal_contacts"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "contact_id"],
                             ["contacts.workspace_id", "contacts.id"], ondelete="CASCADE"),
        Index("ix_deal_contacts_contact", "workspace_id", "contact_id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    deal_id: uuid.UUID = Field(primary_key=True)
    contact_id: uuid.UUID = Field(primary_key=True)
    position: int = Field(default=0, nullable=False)


class StageInterval(SQLModel, table=True):
    """A deal's stay in one stage: entered, left (null while it is there), who moved it."""

    __tablename__ = "stage_intervals"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "deal_id"], ["deals.workspace_id", "deals.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "stage_id"], ["stages.workspace_id", "stages.id"]),
        Index("ix_stage_intervals_deal", "workspace_id", "deal_id", "entered_at"),
        Index("ix_stage_intervals_stage", "workspace_id", "stage_id", "entered_at"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    deal_id: uuid.UUID = Field(nullable=False)
    pipeline_id: uuid.UUID = Field(nullable=False)
    stage_id: uuid.UUID = Field(nullable=False)
    from_stage_id: uuid.UUID | None = Field(default=None)
    entered_at: datetime = ts_field()
    entered_by: str = Field(nullable=False)
    left_at: datetime | None = ts_field(nullable=True, default=None)
    left_by: str | None = Field(default=None)
