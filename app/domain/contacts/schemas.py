from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.domain.shared.cardfields import Address, EmailOut, EmailsIn, PhoneOut, PhonesIn, Tag

Name = Annotated[str, StringConstraints(max_length=200)]


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    full_name: Annotated[str, StringConstraints(max_length=600)] | None = Field(
        default=None, description="Set directly, or composed from first/middle/last name")
    phones: PhonesIn | None = Field(default=None, max_length=20)
    emails: EmailsIn | None = Field(default=None, max_length=20)
    address: Address | None = None
    timezone: str | None = Field(default=None, max_length=64,
                                 description="IANA zone; derived from the phone when not given")
    status: str | None = Field(default=None, max_length=50)
    kind: str | None = Field(default=None, max_length=50)
    owner_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    source: str | None = Field(default=None, max_length=200)
    utm: dict[str, Annotated[str, StringConstraints(max_length=500)]] | None = Field(
        default=None, max_length=20)
    birthday: date | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = Field(default=None, max_length=200)
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ContactCreate(ContactFields):
    pass


class ContactUpdate(ContactFields):
    """JSON merge-patch: a field that is present is set (null clears it); absent ones stay."""


class ContactRead(BaseModel):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    full_name: str
    phones: list[PhoneOut]
    emails: list[EmailOut]
    address: dict[str, Any] | None
    timezone: str | None
    local_time: str | None = Field(description="The contact's current local time")
    status: str
    kind: str
    owner_id: uuid.UUID | None
    company_id: uuid.UUID | None
    source: str | None
    utm: dict[str, Any] | None
    birthday: date | None
    tags: list[str]
    custom_fields: dict[str, Any]
    external_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str


class ContactMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: uuid.UUID = Field(description="The duplicate card merged into this one")
