"""Integration request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.activities.schemas import _no_nul

Kind = Literal["telephony", "email", "messaging"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                 AfterValidator(_no_nul)]
Extension = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[\w*#+.-]+$")]


class IntegrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extensions: dict[Extension, uuid.UUID] = Field(
        default_factory=dict, max_length=1000,
        description="telephony: a PBX line or extension → the user it belongs to")


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: Name
    team_id: uuid.UUID | None = Field(default=None, description="telephony: missed calls of "
                                      "cards without an owner go round-robin through it")
    config: IntegrationConfig = Field(default_factory=IntegrationConfig)


class IntegrationUpdate(BaseModel):
    """JSON merge-patch."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    enabled: bool | None = None
    team_id: uuid.UUID | None = None
    config: IntegrationConfig | None = None


class IntegrationRead(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    enabled: bool
    team_id: uuid.UUID | None
    config: IntegrationConfig
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until then the old secret still verifies")
    last_used_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str


class IntegrationWithSecret(IntegrationRead):
    secret: str = Field(description="The signing secret (whsec_…): shown only now")
