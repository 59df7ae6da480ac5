"""Pipeline rules, their runs, the actions they put off, and round-robin turns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import TenantRecord, jsonb_field, ts_field


class Rule(TenantRecord, table=True):
    """A rule as a workspace configured it: trigger, conditions and actions are JSON checked
    by `rules.RuleSpec` when saved. Every member sees the rules; admins write them."""

    __tablename__ = "rules"
    __owner_column__: ClassVar[str | None] = None
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_rules_list", "workspace_id", "created_at", "id"),
        Index("ix_rules_trigger", "workspace_id", "trigger_type",
              postgresql_where=text("enabled AND deleted_at IS NULL")),
    )

    name: str = Field(nullable=False)
    description: str | None = Field(default=None)
    enabled: bool = Field(default=True, nullable=False)
    trigger_type: str = Field(nullable=False)
    trigger: dict[str, Any] = jsonb_field(dict)
    conditions: dict[str, Any] | None = jsonb_field(None, nullable=True)
    actions: list[Any] = jsonb_field(list)


class RuleRun(SQLModel, table=True):
    """One rule meeting one trigger: the event (or the date firing), whether it matched and
    why, the actions and their results. `trigger_key` is unique per rule, so an event is
    handled once per rule however often it is delivered."""

    __tablename__ = "rule_runs"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "rule_id"], ["rules.workspace_id", "rules.id"],
                             ondelete="CASCADE"),
        Index("uq_rule_runs_trigger", "workspace_id", "rule_id", "trigger_key", unique=True),
        Index("ix_rule_runs_rule", "workspace_id", "rule_id", "id"),
        Index("ix_rule_runs_retry", "workspace_id", "next_attempt_at",
              postgresql_where=text("status = 'retrying'")),
        Index("ix_rule_runs_chain", "workspace_id", "chain_key"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    rule_id: uuid.UUID = Field(nullable=False)
    trigger_key: str = Field(nullable=False)
    event_id: uuid.UUID | None = Field(default=None)
    event_type: str | None = Field(default=None)
    entity_type: str = Field(nullable=False)
    entity_id: uuid.UUID = Field(nullable=False)
    # matched / not_matched / succeeded / retrying / failed / loop_stopped / waiting
    status: str = Field(nullable=False)
    explanation: list[Any] = jsonb_field(list)
    actions: list[Any] = jsonb_field(list)
    error: str | None = Field(default=None)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime | None = ts_field(nullable=True, default=None)
    depth: int = Field(default=0, nullable=False)
    cause_run_id: uuid.UUID | None = Field(default=None)
    # The trigger that started the chain this run belongs to (its own key at depth 0): a
    # chain may make only so many runs, however wide it fans out.
    chain_key: str = Field(nullable=False)
    created_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True, default=None)


class ScheduledAction(SQLModel, table=True):
    """Work a rule put off, kept in PostgreSQL with its due time and swept: the actions
    after a `wait`, and outbound webhook calls (retried with backoff)."""

    __tablename__ = "scheduled_actions"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "run_id"],
                             ["rule_runs.workspace_id", "rule_runs.id"], ondelete="CASCADE"),
        Index("ix_scheduled_actions_due", "workspace_id", "due_at",
              postgresql_where=text("status = 'pending'")),
        Index("ix_scheduled_actions_run", "workspace_id", "run_id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    run_id: uuid.UUID = Field(nullable=False)
    rule_id: uuid.UUID = Field(nullable=False)
    kind: str = Field(nullable=False)  # continue / webhook
    payload: dict[str, Any] = jsonb_field(dict)
    due_at: datetime = ts_field()
    status: str = Field(default="pending", nullable=False)  # pending / done / failed
    attempts: int = Field(default=0, nullable=False)
    last_error: str | None = Field(default=None)
    created_at: datetime = ts_field()
    finished_at: datetime | None = ts_field(nullable=True, default=None)


class RoundRobinTurn(SQLModel, table=True):
    """Whose turn it is in a round-robin (per team, or per role)."""

    __tablename__ = "round_robin_turns"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True)
    turn: int = Field(default=0, nullable=False)


