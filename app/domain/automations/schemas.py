"""Request and response shapes for rules, their runs and dry-runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.domain.automations.rules import Action, Condition, Trigger

RuleName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: RuleName
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    enabled: bool = True
    trigger: Trigger
    conditions: Condition | None = Field(default=None, description=(
        '{"all"|"any": [...]}, {"not": {...}} or {"field": "deal.amount", "op": "gte", '
        '"value": "1000"}'))
    actions: list[Action] = Field(min_length=1, max_length=20)


class RuleUpdate(BaseModel):
    """JSON merge-patch; trigger, conditions and actions are replaced whole when given."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    enabled: bool | None = None
    trigger: Trigger | None = None
    conditions: Condition | None = None
    actions: list[Action] | None = Field(default=None, min_length=1, max_length=20)


class RuleRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    enabled: bool
    trigger: dict[str, Any]
    conditions: dict[str, Any] | None
    actions: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None


class RuleRunRead(BaseModel):
    id: uuid.UUID
    rule_id: uuid.UUID
    status: str = Field(description=(
        "not_matched (the trigger fired, the conditions did not hold), succeeded, waiting "
        "(actions after a wait are scheduled), retrying, failed, loop_stopped"))
    event_id: uuid.UUID | None
    event_type: str | None
    trigger_key: str
    entity_type: str
    entity_id: uuid.UUID
    explanation: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    error: str | None
    attempts: int
    next_attempt_at: datetime | None
    depth: int
    cause_run_id: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None


class DryRunRequest(BaseModel):
    """Simulate the rule against a past event, or against a record as it is now (the
    trigger is then taken as having fired)."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID | None = None
    entity_type: Literal["contact", "company", "deal", "task", "activity"] | None = None
    entity_id: uuid.UUID | None = None
    rule: RuleCreate | None = Field(default=None, description=(
        "A proposed version of the rule to try instead of the saved one"))

    @model_validator(mode="after")
    def _one_target(self) -> DryRunRequest:
        if (self.event_id is None) == (self.entity_id is None):
            raise ValueError("give either event_id or entity_type and entity_id")
        if self.entity_id is not None and self.entity_type is None:
            raise ValueError("entity_type is required with entity_id")
        return self


class DryRunResult(BaseModel):
    matched: bool
    explanation: list[dict[str, Any]] = Field(description=(
        "Each check in order: the trigger, every condition leaf and group, with the reason"))
    actions: list[dict[str, Any]] = Field(description="What would run, with nothing written")
    resume_at: datetime | None = Field(description="When actions after a wait would go on")
    context: dict[str, Any] = Field(description="The record data the rule saw")
