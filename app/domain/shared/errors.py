"""Domain errors. Each carries its HTTP-like status; REST and GraphQL map them once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}


class NotFoundError(DomainError):
    status, title, type_slug = 404, "Not found", "not-found"


class ValidationError(DomainError):
    status, title, type_slug = 422, "Validation failed", "validation"

    @classmethod
    def at(cls, loc: list[str | int], msg: str, type_: str = "value_error") -> ValidationError:
        return cls(msg, errors=[{"loc": loc, "msg": msg, "type": type_}])


class ConflictError(DomainError):
    status, title, type_slug = 409, "Conflict", "conflict"


class DuplicateError(ConflictError):
    title, type_slug = "Duplicate record", "duplicate"


class PreconditionFailedError(DomainError):
    status, title, type_slug = 412, "Precondition failed", "precondition-failed"


class ForbiddenError(DomainError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class UnauthenticatedError(DomainError):
    status, title, type_slug = 401, "Unauthenticated", "unauthenticated"


class RateLimitedError(DomainError):
    status, title, type_slug = 429, "Too many requests", "rate-limited"
