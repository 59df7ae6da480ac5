"""Pipelines (sales funnels) and their ordered stages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field

from app.domain.shared.models import TenantRecord, ts_field

STAGE_KINDS = ("open", "won", "lost")


class Pipeline(TenantRecord, table=True):
    __tablename__ = "pipelines"
    __owner_column__: ClassVar[str | None] = None  # every member of the workspace sees them
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("uq_pipelines_default", "workspace_id", unique=True,
              postgresql_where=text("is_default AND deleted_at IS NULL")),
    )

    name: str = Field(nullable=False)
    position: int = Field(default=0, nullable=False)
    is_default: bool = Field(default=False, nullable=False)


class Stage(TenantRecord, table=True):
    __tablename__ = "stages"
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "pipeline_id"],
                             ["pipelines.workspace_id", "pipelines.id"], ondelete="CASCADE"),
        Index("ix_stages_pipeline", "workspace_id", "pipeline_id", "position"),
    )

    pipeline_id: uuid.UUID = Field(nullable=False)
    name: str = Field(nullable=False)
    position: int = Field(default=0, nullable=False)
    probability: int = Field(default=0, nullable=False)  # percent, 0–100
    kind: str = Field(default="open", nullable=False)  # open / won / lost
    rotting_days: int | None = Field(default=None)
    archived_at: datetime | None = ts_field(nullable=True, default=None)
