"""The GraphQL schema: the same services as REST, Relay-style connections, union errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from pydantic import ValidationError as PydanticValidationError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON

from app.api.graphql.context import get_context
from app.api.graphql.types.common import (
    ConflictError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
    error_of,
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
from app.domain.shared.batch import problem_of_validation
from app.domain.shared.errors import DomainError
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import Page, check_limit, condition_from_tree, row_cursor

MAX_DEPTH = 8
MAX_ALIASES = 30
MAX_TOKENS = 2000


def _page(first: int, after: str | None, sort: str | None) -> Page:
    return Page(limit=check_limit(first, ["first"]), cursor=after, sort=sort)


def _id(value: strawberry.ID, loc: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise DomainNotFound(f"{loc} {value} not found") from exc


@strawberry.type
class Query:
    @strawberry.field(description="One contact by id; null when it does not exist or is not "
                                  "visible to you.")
    async def contact(self, info: strawberry.Info, id: strawberry.ID) -> Contact | None:
        try:
            found = await contacts.get_contact(info.context.session, info.context.principal,
                                               _id(id, "contact"))
        except DomainNotFound:
            return None
        return Contact.of(found)

    @strawberry.field(description="Contacts, newest first by default. `filter` takes the same "
                                  "JSON as POST /api/v1/contacts/search.")
    async def contacts(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                       filter: JSON | None = None, q: str | None = None,
                       sort: str | None = None) -> ContactConnection:
        conditions = [condition_from_tree(contacts.LIST_SPEC, filter, ["filter"])] \
            if filter else []
        rows, next_cursor = await contacts.list_contacts(
            info.context.session, info.context.principal, conditions=conditions, q=q,
            page=_page(first, after, sort))
        return ContactConnection(
            edges=[ContactEdge(cursor=row_cursor(contacts.LIST_SPEC, sort, c), node=Contact.of(c))
                   for c in rows],
            page_info=PageInfo(has_next_page=next_cursor is not None, end_cursor=next_cursor))

    @strawberry.field
    async def company(self, info: strawberry.Info, id: strawberry.ID) -> Company | None:
        try:
            found = await companies.get_company(info.context.session, info.context.principal,
                                                _id(id, "company"))
        except DomainNotFound:
            return None
        return Company.of(found)

    @strawberry.field
    async def companies(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                        filter: JSON | None = None, q: str | None = None,
                        sort: str | None = None) -> CompanyConnection:
        conditions = [condition_from_tree(companies.LIST_SPEC, filter, ["filter"])] \
            if filter else []
        rows, next_cursor = await companies.list_companies(
            info.context.session, info.context.principal, conditions=conditions, q=q,
            page=_page(first, after, sort))
        return CompanyConnection(
            edges=[CompanyEdge(cursor=row_cursor(companies.LIST_SPEC, sort, c), node=Company.of(c))
                   for c in rows],
            page_info=PageInfo(has_next_page=next_cursor is not None, end_cursor=next_cursor))


ContactResult = Annotated[
    Contact | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("ContactResult")]
CompanyResult = Annotated[
    Company | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("CompanyResult")]


@strawberry.type
class DeleteSuccess:
    id: strawberry.ID


DeleteResult = Annotated[DeleteSuccess | NotFoundError | PreconditionFailedError
                         | ForbiddenError, strawberry.union("DeleteResult")]


async def _in_savepoint(info: strawberry.Info, action: Callable[[], Awaitable[Any]]) -> Any:
    """Each mutation runs in its own savepoint: an expected error undoes only its writes."""
    try:
        async with info.context.session.begin_nested():
            return await action()
    except DomainError as exc:
        return error_of(exc)
    except PydanticValidationError as exc:
        problem = problem_of_validation(exc)
        return ValidationError(message=problem["detail"], errors=[
            FieldError(loc=[str(p) for p in e["loc"][1:]], msg=e["msg"], type=e["type"])
            for e in problem["errors"]])


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_contact(self, info: strawberry.Info, input: ContactInput) -> ContactResult:
        async def run() -> Contact:
            data = ContactCreate.model_validate(input_to_dict(input))
            return Contact.of(await contacts.create_contact(info.context.session,
                                                            info.context.principal, data))
        return await _in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a contact; `version` refuses a lost update.")
    async def update_contact(self, info: strawberry.Info, id: strawberry.ID,
                             input: ContactInput, version: int | None = None) -> ContactResult:
        async def run() -> Contact:
            data = ContactUpdate.model_validate(input_to_dict(input))
            return Contact.of(await contacts.update_contact(
                info.context.session, info.context.principal, _id(id, "contact"), data,
                expected_version=version))
        return await _in_savepoint(info, run)

    @strawberry.mutation
    async def delete_contact(self, info: strawberry.Info, id: strawberry.ID,
                             version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await contacts.delete_contact(info.context.session, info.context.principal,
                                          _id(id, "contact"), expected_version=version)
            return DeleteSuccess(id=id)
        return await _in_savepoint(info, run)

    @strawberry.mutation
    async def merge_contacts(self, info: strawberry.Info, id: strawberry.ID,
                             source_id: strawberry.ID) -> ContactResult:
        async def run() -> Contact:
            return Contact.of(await contacts.merge_contacts(
                info.context.session, info.context.principal, _id(id, "contact"),
                _id(source_id, "contact")))
        return await _in_savepoint(info, run)

    @strawberry.mutation
    async def create_company(self, info: strawberry.Info, input: CompanyInput) -> CompanyResult:
        async def run() -> Company:
            data = CompanyCreate.model_validate(input_to_dict(input))
            return Company.of(await companies.create_company(info.context.session,
                                                             info.context.principal, data))
        return await _in_savepoint(info, run)

    @strawberry.mutation
    async def update_company(self, info: strawberry.Info, id: strawberry.ID,
                             input: CompanyInput, version: int | None = None) -> CompanyResult:
        async def run() -> Company:
            data = CompanyUpdate.model_validate(input_to_dict(input))
            return Company.of(await companies.update_company(
                info.context.session, info.context.principal, _id(id, "company"), data,
                expected_version=version))
        return await _in_savepoint(info, run)

    @strawberry.mutation
    async def delete_company(self, info: strawberry.Info, id: strawberry.ID,
                             version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await companies.delete_company(info.context.session, info.context.principal,
                                           _id(id, "company"), expected_version=version)
            return DeleteSuccess(id=id)
        return await _in_savepoint(info, run)


class DomainErrorsAsGraphQLErrors(strawberry.extensions.SchemaExtension):
    """Query-side domain errors (a bad filter, a bad cursor) become GraphQL errors with the
    problem's status and field errors in `extensions`."""

    def on_execute(self):  # type: ignore[no-untyped-def]
        yield
        result = self.execution_context.result
        if not result or not result.errors:
            return
        for error in result.errors:
            original = error.original_error
            if isinstance(original, DomainError):
                error.extensions = {"status": original.status, "type": original.type_slug,
                                    "errors": original.errors}


schema = strawberry.Schema(
    query=Query, mutation=Mutation,
    extensions=[QueryDepthLimiter(max_depth=MAX_DEPTH), MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
                MaxTokensLimiter(max_token_count=MAX_TOKENS), DomainErrorsAsGraphQLErrors],
)


def graphql_router() -> GraphQLRouter[Any, Any]:
    return GraphQLRouter(schema, context_getter=get_context)
