"""GraphQL object and input types for contacts and companies."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.types.common import PageInfo
from app.domain.companies.models import Company as CompanyModel
from app.domain.contacts import service as contacts_service
from app.domain.contacts.models import Contact as ContactModel


@strawberry.type
class Phone:
    e164: str
    original: str
    label: str | None


@strawberry.type
class Email:
    email: str
    label: str | None


@strawberry.type
class Company:
    id: strawberry.ID
    name: str
    domain: str | None
    phones: list[Phone]
    emails: list[Email]
    address: JSON | None
    kind: str
    owner_id: strawberry.ID | None
    tags: list[str]
    custom_fields: JSON
    external_id: str | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, c: CompanyModel) -> Company:
        return cls(id=strawberry.ID(str(c.id)), name=c.name, domain=c.domain,
                   phones=[Phone(**p) for p in c.phones], emails=[Email(**e) for e in c.emails],
                   address=c.address, kind=c.kind,
                   owner_id=strawberry.ID(str(c.owner_id)) if c.owner_id else None,
                   tags=c.tags, custom_fields=c.custom_fields, external_id=c.external_id,
                   version=c.version, created_at=c.created_at, updated_at=c.updated_at)


@strawberry.type
class Contact:
    id: strawberry.ID
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    full_name: str
    phones: list[Phone]
    emails: list[Email]
    address: JSON | None
    timezone: str | None
    local_time: str | None
    status: str
    kind: str
    owner_id: strawberry.ID | None
    company_id: strawberry.ID | None
    source: str | None
    utm: JSON | None
    birthday: datetime.date | None
    tags: list[str]
    custom_fields: JSON
    external_id: str | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field
    async def company(self, info: strawberry.Info) -> Company | None:
        if self.company_id is None:
            return None
        found = await info.context.loaders.company.load(uuid.UUID(str(self.company_id)))
        return Company.of(found) if found else None

    @classmethod
    def of(cls, c: ContactModel) -> Contact:
        read = contacts_service.to_read(c)
        return cls(id=strawberry.ID(str(c.id)), first_name=c.first_name, last_name=c.last_name,
                   middle_name=c.middle_name, full_name=c.full_name,
                   phones=[Phone(**p) for p in c.phones], emails=[Email(**e) for e in c.emails],
                   address=c.address, timezone=c.timezone, local_time=read.local_time,
                   status=c.status, kind=c.kind,
                   owner_id=strawberry.ID(str(c.owner_id)) if c.owner_id else None,
                   company_id=strawberry.ID(str(c.company_id)) if c.company_id else None,
                   source=c.source, utm=c.utm, birthday=c.birthday, tags=c.tags,
                   custom_fields=c.custom_fields, external_id=c.external_id,
                   version=c.version, created_at=c.created_at, updated_at=c.updated_at)


@strawberry.type
class ContactEdge:
    cursor: str
    node: Contact


@strawberry.type
class ContactConnection:
    edges: list[ContactEdge]
    page_info: PageInfo


@strawberry.type
class CompanyEdge:
    cursor: str
    node: Company


@strawberry.type
class CompanyConnection:
    edges: list[CompanyEdge]
    page_info: PageInfo


@strawberry.input
class PhoneInput:
    number: str
    label: str | None = None


@strawberry.input
class EmailInput:
    email: str
    label: str | None = None


@strawberry.input(description="Fields of a contact; on update, omitted fields stay as they "
                              "are and null clears a field (merge-patch).")
class ContactInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    middle_name: str | None = strawberry.UNSET
    full_name: str | None = strawberry.UNSET
    phones: list[PhoneInput] | None = strawberry.UNSET
    emails: list[EmailInput] | None = strawberry.UNSET
    address: JSON | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    kind: str | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    company_id: strawberry.ID | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    utm: JSON | None = strawberry.UNSET
    birthday: datetime.date | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    custom_fields: JSON | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input(description="Fields of a company; on update, omitted fields stay as they "
                              "are and null clears a field (merge-patch).")
class CompanyInput:
    name: str | None = strawberry.UNSET
    domain: str | None = strawberry.UNSET
    phones: list[PhoneInput] | None = strawberry.UNSET
    emails: list[EmailInput] | None = strawberry.UNSET
    address: JSON | None = strawberry.UNSET
    kind: str | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    custom_fields: JSON | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


def input_to_dict(value: Any) -> Any:
    """Strawberry input -> plain data for the pydantic schema; UNSET fields are left out."""
    if isinstance(value, list):
        return [input_to_dict(v) for v in value]
    if hasattr(value, "__strawberry_definition__"):
        return {k: input_to_dict(v) for k, v in vars(value).items()
                if v is not strawberry.UNSET}
    return value

