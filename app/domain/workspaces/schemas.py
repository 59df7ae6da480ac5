from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.domain.shared.money import Currency
from app.domain.shared.normalize import is_valid_timezone


def check_region(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {value!r}")
    return value


def check_timezone(value: str | None) -> str | None:
    if value is not None and not is_valid_timezone(value):
        raise ValueError(f"unknown time zone {value!r}")
    return value


# An entry of a workspace-defined list: a task type, an outcome, a lost reason.
ChoiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=50)]
RoleName = Literal["owner", "admin", "manager", "agent"]
ScopeName = Literal["read", "read_write"]


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    owner_email: EmailStr
    owner_name: str = Field(default="", max_length=200)
    owner_password: str | None = Field(default=None, min_length=8, max_length=200)
    default_region: str = Field(default="US", min_length=2, max_length=2)
    timezone: str = "UTC"

    _region = field_validator("default_region")(check_region)
    _timezone = field_validator("timezone")(check_timezone)


HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class BusinessHours(BaseModel):
    """When the business works, in each customer's own time zone: rules with
    `"business_hours": true` move due times outside these hours to the next opening."""

    model_config = ConfigDict(extra="forbid")

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default=[0, 1, 2, 3, 4], min_length=1, max_length=7, description="Monday = 0")
    start: HourMinute = "09:00"
    end: HourMinute = "18:00"

    @model_validator(mode="after")
    def _opens_before_closing(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class WorkspaceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents_see_team: bool | None = None
    contact_statuses: list[str] | None = Field(default=None, min_length=1, max_length=100)
    contact_kinds: list[str] | None = Field(default=None, min_length=1, max_length=100)
    company_kinds: list[str] | None = Field(default=None, min_length=1, max_length=100)
    currency: Currency | None = None
    task_types: list[ChoiceName] | None = Field(default=None, min_length=1, max_length=100)
    task_outcomes: list[ChoiceName] | None = Field(default=None, min_length=1, max_length=100)
    lost_reasons: list[ChoiceName] | None = Field(default=None, min_length=1, max_length=100)
    business_hours: BusinessHours | None = None
    overdue_tells_team_heads: bool | None = Field(default=None, description=(
        "Default true: an overdue task's built-in notice goes to its assignee and to the "
        "heads of the assignee's teams. Turn it off when a `task_overdue` rule escalates "
        "instead, so a head is not told twice"))


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_region: str | None = None
    timezone: str | None = None
    settings: WorkspaceSettings | None = None

    _region = field_validator("default_region")(check_region)
    _timezone = field_validator("timezone")(check_timezone)


class WorkspaceRead(BaseModel):
    id: uuid.UUID
    name: str
    default_region: str
    timezone: str
    settings: dict[str, Any]
    created_at: datetime


class WorkspaceCreated(BaseModel):
    workspace: WorkspaceRead
    owner_id: uuid.UUID
    api_key: str = Field(description="Shown once. Store it now.")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    full_name: str = Field(default="", max_length=200)
    role: RoleName = "agent"
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(default=None, max_length=200)
    role: RoleName | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)
    is_active: bool | None = None


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    created_at: datetime


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    head_id: uuid.UUID | None = None
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    head_id: uuid.UUID | None = None
    member_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    head_id: uuid.UUID | None
    member_ids: list[uuid.UUID]
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scope: ScopeName = "read_write"


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    scope: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="Shown once. Store it now.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
