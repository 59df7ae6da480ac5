"""Shared GraphQL types: errors as union members, Relay page info, JSON scalar."""

from __future__ import annotations

from typing import Any

import strawberry
from pydantic import ValidationError as PydanticValidationError
from strawberry.scalars import JSON
from strawberry.utils.str_converters import to_camel_case

from app.domain.shared.cardfields import EmailIn, PhoneIn
from app.domain.shared.errors import DomainError


@strawberry.type(description="One invalid value.")
class FieldError:
    loc: list[str] = strawberry.field(description=(
        "Where the value is, from the argument as written in the operation: "
        '["input", "phones", "0"], ["sourceId"]. Query errors carry the same in '
        "`extensions.errors` (for example [\"filter\", \"and\", \"0\"] or [\"after\"])."))
    msg: str
    type: str


@strawberry.type
class ValidationError:
    message: str
    errors: list[FieldError]


@strawberry.type(description="A phone, email or external_id that another record holds.")
class ConflictError:
    message: str
    existing_id: strawberry.ID | None = strawberry.field(
        default=None, description="The record that holds it")


@strawberry.type(description="No such record, or not one you may see.")
class NotFoundError:
    message: str


@strawberry.type(description="`version` is not the record's current version.")
class PreconditionFailedError:
    message: str
    current_version: int | None = strawberry.field(
        default=None, description="Fetch the record again, then retry with this version")


@strawberry.type
class ForbiddenError:
    message: str


ErrorTypes = (ValidationError, ConflictError, NotFoundError, PreconditionFailedError,
              ForbiddenError)


# Where REST puts a value (`body`, `path`, `query`) is not where GraphQL does: REST query
# parameters that GraphQL names differently.
_ARGUMENT_NAMES = {"cursor": "after", "limit": "first"}


def graphql_loc(loc: list[Any] | tuple[Any, ...], *, body: str | None = "input") -> list[str]:
    """A domain error location (`["body", "first_name"]`, `["query", "cursor"]`) as the
    GraphQL argument path the client wrote (`["input", "firstName"]`, `["after"]`).

    `body` names the input argument that carries the REST body; None when the body's fields
    are arguments themselves (mergeContacts' `sourceId`). Only the field name is camel-cased:
    what follows it (list indexes, custom field keys, JSON keys) is the client's data."""
    parts = [str(p) for p in loc]
    head = parts.pop(0) if parts and parts[0] in ("body", "path", "query") else None
    if parts:
        name = _ARGUMENT_NAMES.get(parts[0], parts[0]) if head == "query" else parts[0]
        parts[0] = to_camel_case(name)
    if head == "body" and body:
        parts.insert(0, body)
    return parts


def field_errors(errors: list[dict[str, Any]], *, body: str | None = "input") -> list[FieldError]:
    return [FieldError(loc=graphql_loc(e.get("loc", []), body=body), msg=e.get("msg", ""),
                       type=e.get("type", "")) for e in errors]


# Phones and emails are `PhoneIn | str` in the domain schema; GraphQL always sends the object.
_UNION_TAGS = {PhoneIn.__name__, EmailIn.__name__}
_STRING_BRANCH_TAGS = {"str", "constrained-str"}


def input_validation_error(exc: PydanticValidationError, *,
                           body: str | None = "input") -> ValidationError:
    """A pydantic error on the input, as the union member. The string branch of those unions
    can never apply to a GraphQL input object, so its complaint is dropped and the object
    branch's tag left out of the location."""
    errors = []
    for e in exc.errors(include_url=False, include_input=False):
        loc = list(e["loc"])
        if len(loc) >= 2 and isinstance(loc[-2], int) and loc[-1] in _STRING_BRANCH_TAGS \
                and e["type"] == "string_type":
            continue  # `phones[i]` is not a string: of course, it is a PhoneInput
        errors.append({"loc": ["body", *(p for p in loc if p not in _UNION_TAGS)],
                       "msg": e["msg"], "type": e["type"]})
    return ValidationError(message="the input is not valid",
                           errors=field_errors(errors, body=body))


def error_of(exc: DomainError, *, body: str | None = "input") -> Any:
    """The union member for a domain error; the one mapping from domain errors to GraphQL."""
    if exc.status == 404:
        return NotFoundError(message=exc.detail)
    if exc.status == 409:
        existing = exc.extra.get("existing_id")
        return ConflictError(message=exc.detail, existing_id=existing)
    if exc.status == 412:
        return PreconditionFailedError(message=exc.detail,
                                       current_version=exc.extra.get("current_version"))
    if exc.status == 403:
        return ForbiddenError(message=exc.detail)
    return ValidationError(message=exc.detail, errors=field_errors(exc.errors, body=body))


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


__all__ = ["JSON", "ErrorTypes", "PageInfo", "error_of", "field_errors", "graphql_loc",
           "input_validation_error"]
