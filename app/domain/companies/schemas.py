from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.domain.shared.cardfields import Address, EmailOut, EmailsIn, PhoneOut, PhonesIn, Tag


class CompanyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    domain: Annotated[str, StringConstraints(max_length=253)] | None = None
    phones: PhonesIn | None = Field(default=None, max_length=20)
    emails: EmailsIn | None = Field(default=None, max_length=20)
    address: Address | None = None
    kind: str | None = Field(default=None, max_length=50)
    owner_id: uuid.UUID | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = Field(default=None, max_length=200)
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class CompanyCreate(CompanyFields):
    name: Annotated[str, StringConstraints(min_length=1, max_length=300)]


class CompanyUpdate(CompanyFields):
    """JSON merge-patch: a field that is present is set (null clears it); absent ones stay."""


class CompanyRead(BaseModel):
    id: uuid.UUID
    name: str
    domain: str | None
    phones: list[PhoneOut]
    emails: list[EmailOut]
    address: dict[str, Any] | None
    kind: str
    owner_id: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    external_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str
