"""The GraphQL schema: the same services as REST, Relay-style connections, union errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from graphql import GraphQLError
from pydantic import ValidationError as PydanticValidationError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON
from strawberry.types import ExecutionContext

from app.api.graphql.context import get_context
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
    error_of,
    graphql_loc,
    input_validation_error,
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
from app.domain.shared.errors import DomainError
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.errors import ValidationError as DomainValidationError
from app.domain.shared.listing import Page, check_limit, condition_from_tree, row_cursor

MAX_DEPTH = 8
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_Q_LENGTH = 200  # as REST's `q`


def _page(first: int, after: str | None, sort: str | None) -> Page:
    return Page(limit=check_limit(first, ["first"]), cursor=after, sort=sort)


def _id(value: strawberry.ID, loc: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise DomainNotFound(f"{loc} {value} not found") from exc


def _conditions(spec: Any, filter: JSON | None) -> list[Any]:
    # As REST search: no filter or an empty object is no condition.
    return [] if filter is None or filter == {} else [condition_from_tree(spec, filter,
                                                                           ["filter"])]


def _check_q(q: str | None) -> str | None:
    if q is not None and len(q) > MAX_Q_LENGTH:
        raise DomainValidationError.at(["q"], f"at most {MAX_Q_LENGTH} characters")
    return q


def _page_info(edges: list[Any], next_cursor: str | None) -> PageInfo:
    # Relay: endCursor is the last edge's cursor, also on the last page.
    return PageInfo(has_next_page=next_cursor is not None,
                    end_cursor=edges[-1].cursor if edges else None)


@strawberry.type
class Query:
    @strawberry.field(description="One contact by id; null when it does not exist or is not "
                                  "visible to you.")
    async def contact(self, info: strawberry.Info, id: strawberry.ID) -> Contact | None:
        async with info.context.db_lock:
            try:
                found = await contacts.get_contact(info.context.session, info.context.principal,
                                                   _id(id, "contact"))
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
                conditions=_conditions(contacts.LIST_SPEC, filter), q=_check_q(q),
                page=_page(first, after, sort))
            edges = [ContactEdge(cursor=row_cursor(contacts.LIST_SPEC, sort, c),
                                 node=Contact.of(c)) for c in rows]
        return ContactConnection(edges=edges, page_info=_page_info(edges, next_cursor))

    @strawberry.field(description="One company by id; null when it does not exist or is not "
                                  "visible to you.")
    async def company(self, info: strawberry.Info, id: strawberry.ID) -> Company | None:
        async with info.context.db_lock:
            try:
                found = await companies.get_company(info.context.session,
                                                    info.context.principal, _id(id, "company"))
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
                conditions=_conditions(companies.LIST_SPEC, filter), q=_check_q(q),
                page=_page(first, after, sort))
            edges = [CompanyEdge(cursor=row_cursor(companies.LIST_SPEC, sort, c),
                                 node=Company.of(c)) for c in rows]
        return CompanyConnection(edges=edges, page_info=_page_info(edges, next_cursor))


ContactResult = Annotated[
    Contact | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("ContactResult")]
CompanyResult = Annotated[
    Company | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("CompanyResult")]


@strawberry.type
class DeleteSuccess:
    id: strawberry.ID


DeleteResult = Annotated[DeleteSuccess | ValidationError | ConflictError | NotFoundError
                         | PreconditionFailedError | ForbiddenError,
                         strawberry.union("DeleteResult")]


async def _in_savepoint(info: strawberry.Info, action: Callable[[], Awaitable[Any]], *,
                        body: str | None = "input") -> Any:
    """Each mutation runs in its own savepoint: an expected error undoes only its writes.

    `body` is the argument that carries what REST takes as the body, for error locations."""
    try:
        async with info.context.db_lock, info.context.session.begin_nested():
            return await action()
    except DomainError as exc:
        return error_of(exc, body=body)
    except PydanticValidationError as exc:
        return input_validation_error(exc, body=body)
    finally:
        info.context.loaders.clear_all()


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
        return await _in_savepoint(info, run, body=None)

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
                error.extensions = {
                    "status": original.status, "type": original.type_slug,
                    "errors": [{"loc": graphql_loc(e.get("loc", []), body=None),
                                "msg": e.get("msg", ""), "type": e.get("type", "")}
                               for e in original.errors]}


def _is_unexpected(error: GraphQLError) -> bool:
    """A resolver failed for a reason that is not the client's (a bug, the database)."""
    original = error.original_error
    return error.path is not None and original is not None \
        and not isinstance(original, DomainError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """As REST's 500: the client learns that something failed, never SQL, parameters or
    tracebacks. Strawberry has logged the real error by the time it is masked."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected,
                         error_message="something went wrong on our side")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"status": 500, "type": "internal"}
        return masked


class RelataSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        """Log what failed on our side; a client's bad query is its answer, not our error."""
        super().process_errors([e for e in errors if _is_unexpected(e)], execution_context)


schema = RelataSchema(
    query=Query, mutation=Mutation,
    extensions=[QueryDepthLimiter(max_depth=MAX_DEPTH),
                MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
                MaxTokensLimiter(max_token_count=MAX_TOKENS), DomainErrorsAsGraphQLErrors,
                MaskUnexpectedErrors()],
)


class RelataGraphQLRouter(GraphQLRouter[Any, Any]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL in dev and test; production does not serve it."""
        if request.app.state.resources.settings.env == "production":
            raise HTTPException(status_code=404, detail="GraphiQL is not served in production")
        return await super().render_graphql_ide(request)


def graphql_router() -> GraphQLRouter[Any, Any]:
    return RelataGraphQLRouter(schema, context_getter=get_context)
