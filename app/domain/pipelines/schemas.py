"""Request and response shapes for pipelines and their stages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

StageName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
PipelineName = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                                strip_whitespace=True)]
StageKind = Literal["open", "won", "lost"]
Probability = Annotated[int, Field(ge=0, le=100, description="Win probability, percent")]
RottingDays = Annotated[int, Field(ge=1, le=3650, description=(
    "Days a deal may stay idle in the stage before it is flagged rotting; null: never"))]

MAX_STAGES = 50


class StageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StageName
    kind: StageKind = "open"
    probability: Probability | None = Field(
        default=None, description="Default: 100 for a won stage, 0 otherwise")
    rotting_days: RottingDays | None = None
    position: int | None = Field(default=None, ge=0, le=MAX_STAGES, description=(
        "Where to insert among the active stages (0 = first); default: last"))


class StageUpdate(BaseModel):
    """Merge-patch of one stage. A stage's kind cannot change while it holds live deals."""

    model_config = ConfigDict(extra="forbid")

    name: StageName | None = None
    kind: StageKind | None = None
    probability: Probability | None = None
    rotting_days: RottingDays | None = None


class StageReorder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_STAGES, description=(
        "Every active (not archived) stage of the pipeline, in the new order"))


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PipelineName
    is_default: bool = Field(default=False, description=(
        "Make this the workspace's default pipeline (the previous default stops being it)"))
    position: int | None = Field(default=None, ge=0, le=10_000,
                                 description="Sort key among pipelines; default: last")
    stages: list[StageCreate] = Field(min_length=1, max_length=MAX_STAGES, description=(
        "The stages in order; at least one must be open"))


class PipelineUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PipelineName | None = None
    is_default: Literal[True] | None = Field(default=None, description=(
        "true moves the default to this pipeline; to stop being the default, make another "
        "pipeline the default"))
    position: int | None = Field(default=None, ge=0, le=10_000)


class StageRead(BaseModel):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    name: str
    position: int
    kind: str
    probability: int
    rotting_days: int | None
    archived: bool
    archived_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class PipelineRead(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    is_default: bool
    stages: list[StageRead] = Field(description=(
        "Active stages in order, then archived ones (which keep their deals)"))
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str
