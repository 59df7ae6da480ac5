"""An import job, the rows it rejected, and the records it wrote (for undo)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import jsonb_field, ts_field

STATES = ("queued", "running", "done", "failed", "canceled", "undone")


class ImportJob(SQLModel, table=True):
    """One uploaded file and its progress. `row_offset` is how many data rows are behind
    us, committed in the same transaction as their batch: a worker that dies resumes there."""

    __tablename__ = "imports"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_imports_list", "workspace_id", "created_at", "id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    object: str = Field(nullable=False)
    state: str = Field(default="queued", nullable=False)
    dry_run: bool = Field(default=False, nullable=False)
    silent: bool = Field(default=False, nullable=False)
    filename: str = Field(nullable=False)
    path: str = Field(nullable=False)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    file_format: str = Field(nullable=False)  # csv | xlsx
    encoding: str | None = Field(default=None)
    delimiter: str | None = Field(default=None)
    has_header: bool = Field(default=True, nullable=False)
    columns: list[str] = jsonb_field(list)
    mapping: dict[str, Any] = jsonb_field(dict)
    options: dict[str, Any] = jsonb_field(dict)
    total: int | None = Field(default=None)
    row_offset: int = Field(default=0, nullable=False)
    processed: int = Field(default=0, nullable=False)
    created: int = Field(default=0, nullable=False)
    updated: int = Field(default=0, nullable=False)
    skipped: int = Field(default=0, nullable=False)
    failed: int = Field(default=0, nullable=False)
    errors: list[dict[str, Any]] = jsonb_field(list)
    error: str | None = Field(default=None)
    created_by: str = Field(nullable=False)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    started_at: datetime | None = ts_field(nullable=True, default=None)
    heartbeat_at: datetime | None = ts_field(nullable=True, default=None)
    finished_at: datetime | None = ts_field(nullable=True, default=None)
    undone_at: datetime | None = ts_field(nullable=True, default=None)


class ImportRejection(SQLModel, table=True):
    """A row that was not imported, with its cells as they were in the file and why."""

    __tablename__ = "import_rejections"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "import_id"], ["imports.workspace_id",
                                                             "imports.id"], ondelete="CASCADE"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    import_id: uuid.UUID = Field(primary_key=True)
    row_number: int = Field(primary_key=True)
    reason: str = Field(nullable=False)
    cells: list[Any] = jsonb_field(list)


class ImportRecord(SQLModel, table=True):
    """A record an import created or updated: the import id every imported record carries,
    kept beside the record rather than in it, and what undo removes."""

    __tablename__ = "import_records"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "import_id"], ["imports.workspace_id",
                                                             "imports.id"], ondelete="CASCADE"),
        Index("ix_import_records_entity", "workspace_id", "entity_id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    import_id: uuid.UUID = Field(primary_key=True)
    entity_id: uuid.UUID = Field(primary_key=True)
    entity_type: str = Field(nullable=False)
    action: str = Field(nullable=False)  # created | updated
