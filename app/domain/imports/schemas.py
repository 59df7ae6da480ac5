"""What a caller sends with a file, and what an import looks like from outside."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ImportObject = Literal["contacts", "companies", "deals", "tasks", "activities"]
# The entity type of each object (custom field definitions, import records, events).
OBJECT_TYPES = {"contacts": "contact", "companies": "company", "deals": "deal",
                "tasks": "task", "activities": "activity"}
DedupeKey = Literal["phone", "email", "external_id"]


class Transform(BaseModel):
    """How the cells of one target field are read."""

    model_config = ConfigDict(extra="forbid")

    split: Literal["first_last", "last_first"] | None = Field(
        default=None, description="full_name only: split into first/middle/last names "
        "(last_first for 'Фамилия Имя Отчество')")
    region: str | None = Field(default=None, min_length=2, max_length=2,
                               description="phone only: region of national numbers")
    date_format: str | None = Field(default=None, max_length=50,
                                    description="strptime format, e.g. %d.%m.%Y")
    map: dict[str, str] | None = Field(default=None, description="cell value -> stored value "
                                       "(matched ignoring case)")
    separator: str | None = Field(default=None, min_length=1, max_length=5,
                                  description="tags only (default ,)")


class ImportOptions(BaseModel):
    """The `options` form field of `POST /api/v1/imports`, as JSON."""

    model_config = ConfigDict(extra="forbid")

    object: ImportObject = "contacts"
    mapping: dict[str, str | None] | None = Field(
        default=None, description="column header -> target field (null ignores the column); "
        "suggested from the headers when absent")
    transforms: dict[str, Transform] = Field(default_factory=dict,
                                             description="target field -> transform")
    dedupe_on: list[DedupeKey] = Field(default_factory=lambda: ["phone", "email",
                                                                "external_id"])
    on_duplicate: Literal["skip", "update", "create"] = "skip"
    dry_run: bool = False
    silent: bool = Field(default=False, description="created records emit no events")
    encoding: str | None = Field(default=None, max_length=40,
                                 description="detected when absent")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    has_header: bool | None = Field(default=None, description="detected when absent")
    sheet: str | None = Field(default=None, max_length=100, description="XLSX sheet name")


class RowError(BaseModel):
    row: int
    reason: str


class ImportRead(BaseModel):
    id: uuid.UUID
    object: str
    state: str
    dry_run: bool
    silent: bool
    filename: str
    size_bytes: int
    file_format: str
    encoding: str | None
    delimiter: str | None
    has_header: bool
    columns: list[str]
    mapping: dict[str, str | None]
    options: dict[str, Any]
    total: int | None
    processed: int
    created: int
    updated: int
    skipped: int
    failed: int
    rows_per_second: float | None
    errors: list[RowError] = Field(description="the first rejected rows and why")
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None
