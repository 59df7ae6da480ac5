"""The event log (outbox): written in the same transaction as every change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Identity, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import jsonb_field, text_array_field, ts_field


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_events_commit_order", "workspace_id", "txid", "seq"),
        Index("ix_events_entity", "workspace_id", "entity_id", "seq"),
        Index("ix_events_unhandled", "workspace_id", "txid", "seq",
              postgresql_where=text("handled_at IS NULL")),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # Commit-order cursor: the writing transaction's id plus an in-transaction sequence.
    # Readers only return events whose transaction is older than every running one.
    txid: int | None = Field(default=None, sa_column=Column(
        BigInteger, server_default=text("(pg_current_xact_id())::text::bigint"), nullable=False))
    seq: int | None = Field(default=None, sa_column=Column(
        BigInteger, Identity(always=False), nullable=False))
    type: str = Field(nullable=False)
    entity_type: str = Field(nullable=False)
    entity_id: uuid.UUID = Field(nullable=False)
    actor: str = Field(nullable=False)
    before: dict[str, Any] | None = jsonb_field(None, nullable=True)
    after: dict[str, Any] | None = jsonb_field(None, nullable=True)
    changed: list[str] = text_array_field()
    occurred_at: datetime = ts_field()
    # Automation chains: how many rule steps led here, and the rule run that caused it.
    depth: int = Field(default=0, nullable=False)
    cause_run_id: uuid.UUID | None = Field(default=None)
    # The automation relay: when the event was handed to the worker, and when every rule
    # it triggers had its run recorded. Unhandled events are re-dispatched (nothing is lost).
    dispatched_at: datetime | None = ts_field(nullable=True, default=None)
    handled_at: datetime | None = ts_field(nullable=True, default=None)
