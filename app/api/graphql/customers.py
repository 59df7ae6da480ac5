"""GraphQL for the customer base: contacts and companies."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    check_q,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import (
    Company,
    CompanyConnection,
    CompanyEdge,
    CompanyInput,
    Contact,
    ContactConnection,
    ContactEdge,
    ContactInput,
    input_to_dict,
)
from app.domain.companies import service as companies
from app.domain.companies.schemas import CompanyCreate, CompanyUpdate
from app.domain.contacts import service as contacts
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="One contact by id; null when it does not exist or is not "
                                  "visible to you.")
    async def contact(self, info: strawberry.Info, id: strawberry.ID) -> Contact | None:
        async with info.context.db_lock:
            try:
                found = await contacts.get_contact(info.context.session, info.context.principal,
                                                   parse_id(id, "contact"))
            except DomainNotFound:
                return None
            return Contact.of(found)

    @strawberry.field(description="Contacts, newest first by default (`sort`: a sortable "
                                  "field, - for descending). `filter` takes the same JSON as "
                                  "POST /api/v1/contacts/search; `q` searches names, phones, "
                                  "emails and the company's name. `first` is 1–200.")
    async def contacts(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                       filter: JSON | None = None, q: str | None = None,
                       sort: str | None = None) -> ContactConnection:
        async with info.context.db_lock:
            rows, next_cursor = await contacts.list_contacts(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, contacts.LIST_SPEC, filter), q=check_q(q),
                page=page_of(first, after, sort))
            edges = [ContactEdge(cursor=row_cursor(contacts.LIST_SPEC, sort, c),
                                 node=Contact.of(c)) for c in rows]
        return ContactConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="One company by id; null when it does not exist or is not "
                                  "visible to you.")
    async def company(self, info: strawberry.Info, id: strawberry.ID) -> Company | None:
        async with info.context.db_lock:
            try:
                found = await companies.get_company(info.context.session,
                                                    info.context.principal, parse_id(id, "company"))
            except DomainNotFound:
                return None
            return Company.of(found)

    @strawberry.field(description="Companies, newest first by default. `filter` takes the same "
                                  "JSON as POST /api/v1/companies/search. `first` is 1–200.")
    async def companies(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                        filter: JSON | None = None, q: str | None = None,
                        sort: str | None = None) -> CompanyConnection:
        async with info.context.db_lock:
            rows, next_cursor = await companies.list_companies(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, companies.LIST_SPEC, filter), q=check_q(q),
                page=page_of(first, after, sort))
            edges = [CompanyEdge(cursor=row_cursor(companies.LIST_SPEC, sort, c),
                                 node=Company.of(c)) for c in rows]
        return CompanyConnection(edges=edges, page_info=page_info(edges, next_cursor))


ContactResult = Annotated[
    Contact | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("ContactResult")]
CompanyResult = Annotated[
    Company | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("CompanyResult")]


@strawberry.type
class CustomerMutation:
    @strawberry.mutation
    async def create_contact(self, info: strawberry.Info, input: ContactInput) -> ContactResult:
        async def run() -> Contact:
            data = ContactCreate.model_validate(input_to_dict(input))
            return Contact.of(await contacts.create_contact(info.context.session,
                                                            info.context.principal, data))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a contact; `version` refuses a lost update.")
    async def update_contact(self, info: strawberry.Info, id: strawberry.ID,
                             input: ContactInput, version: int | None = None) -> ContactResult:
        async def run() -> Contact:
            data = ContactUpdate.model_validate(input_to_dict(input))
            return Contact.of(await contacts.update_contact(
                info.context.session, info.context.principal, parse_id(id, "contact"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def delete_contact(self, info: strawberry.Info, id: strawberry.ID,
                             version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await contacts.delete_contact(info.context.session, info.context.principal,
                                          parse_id(id, "contact"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def merge_contacts(self, info: strawberry.Info, id: strawberry.ID,
                             source_id: strawberry.ID) -> ContactResult:
        async def run() -> Contact:
            return Contact.of(await contacts.merge_contacts(
                info.context.session, info.context.principal, parse_id(id, "contact"),
                parse_id(source_id, "contact")))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation
    async def create_company(self, info: strawberry.Info, input: CompanyInput) -> CompanyResult:
        async def run() -> Company:
            data = CompanyCreate.model_validate(input_to_dict(input))
            return Company.of(await companies.create_company(info.context.session,
                                                             info.context.principal, data))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def update_company(self, info: strawberry.Info, id: strawberry.ID,
                             input: CompanyInput, version: int | None = None) -> CompanyResult:
        async def run() -> Company:
            data = CompanyUpdate.model_validate(input_to_dict(input))
            return Company.of(await companies.update_company(
                info.context.session, info.context.principal, parse_id(id, "company"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def delete_company(self, info: strawberry.Info, id: strawberry.ID,
                             version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await companies.delete_company(info.context.session, info.context.principal,
                                           parse_id(id, "company"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)


QUERY_TYPES: list[type] = [CustomerQuery]
MUTATION_TYPES: list[type] = [CustomerMutation]
