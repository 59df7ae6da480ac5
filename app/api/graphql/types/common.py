"""Shared GraphQL types: errors as union members, Relay page info, JSON scalar."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.domain.shared.errors import DomainError


@strawberry.type
class FieldError:
    loc: list[str]
    msg: str
    type: str


@strawberry.type
class ValidationError:
    message: str
    errors: list[FieldError]


@strawberry.type
class ConflictError:
    message: str
    existing_id: strawberry.ID | None = None


@strawberry.type
class NotFoundError:
    message: str


@strawberry.type
class PreconditionFailedError:
    message: str
    current_version: int | None = None


@strawberry.type
class ForbiddenError:
    message: str


ErrorTypes = (ValidationError, ConflictError, NotFoundError, PreconditionFailedError,
              ForbiddenError)


def error_of(exc: DomainError) -> Any:
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
    return ValidationError(message=exc.detail, errors=[
        FieldError(loc=[str(p) for p in e.get("loc", [])], msg=e.get("msg", ""),
                   type=e.get("type", "")) for e in exc.errors])


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


__all__ = ["JSON", "PageInfo", "error_of", "ErrorTypes"]
