"""Workspaces (tenants), users, teams, API keys and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import jsonb_field, ts_field

DEFAULT_CONTACT_STATUSES = ["new", "cold", "warm", "hot", "vip", "regular", "archived"]
DEFAULT_KINDS = ["customer", "supplier", "partner"]
DEFAULT_TASK_TYPES = ["call", "meeting", "email", "todo", "measurement", "installation"]
DEFAULT_TASK_OUTCOMES = ["done", "no_answer", "rescheduled"]
DEFAULT_LOST_REASONS = ["price", "competitor", "no_answer", "not_interested", "other"]


def default_workspace_settings() -> dict[str, Any]:
    return {
        "agents_see_team": False,
        "contact_statuses": list(DEFAULT_CONTACT_STATUSES),
        "contact_kinds": list(DEFAULT_KINDS),
        "company_kinds": list(DEFAULT_KINDS),
        "currency": "USD",
        "task_types": list(DEFAULT_TASK_TYPES),
        "task_outcomes": list(DEFAULT_TASK_OUTCOMES),
        "lost_reasons": list(DEFAULT_LOST_REASONS),
        # The built-in overdue notice also tells the heads of the assignee's teams; a
        # workspace that escalates with its own rule turns it off (one notice, its text).
        "overdue_tells_team_heads": True,
    }


def workspace_setting(workspace: Workspace, key: str) -> Any:
    """A setting, or its default for workspaces created before the setting existed."""
    if key in workspace.settings:
        return workspace.settings[key]
    return default_workspace_settings()[key]


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(nullable=False)
    default_region: str = Field(default="US", nullable=False)
    timezone: str = Field(default="UTC", nullable=False)
    settings: dict[str, Any] = jsonb_field(default_workspace_settings)
    created_at: datetime = ts_field()


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email", name="uq_users_workspace_email"),
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_users_email", "email"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(nullable=False)
    full_name: str = Field(default="", nullable=False)
    role: str = Field(default="agent", nullable=False)
    password_hash: str | None = Field(default=None)
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_teams_workspace_name"),
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "head_id"], ["users.workspace_id", "users.id"]),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(nullable=False)
    head_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = ts_field()


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "team_id"], ["teams.workspace_id", "teams.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"],
                             ondelete="CASCADE"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    team_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_api_keys_id", "id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(nullable=False)
    scope: str = Field(default="read_write", nullable=False)
    prefix: str = Field(nullable=False)
    secret_hash: str = Field(nullable=False)
    created_by: str = Field(nullable=False)
    created_at: datetime = ts_field()
    last_used_at: datetime | None = ts_field(nullable=True, default=None)
    revoked_at: datetime | None = ts_field(nullable=True, default=None)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"],
                             ondelete="CASCADE"),
        Index("ix_refresh_tokens_id", "id"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(nullable=False)
    secret_hash: str = Field(nullable=False)
    created_at: datetime = ts_field()
    expires_at: datetime = ts_field()
    revoked_at: datetime | None = ts_field(nullable=True, default=None)


