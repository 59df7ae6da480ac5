"""Helpers every GraphQL area uses: ids, pages, filters, and the savepoint per mutation."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
    error_of,
    input_validation_error,
)
from app.domain.customfields.service import require_defined_filters
from app.domain.shared.errors import DomainError
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.errors import ValidationError as DomainValidationError
from app.domain.shared.listing import Page, check_limit, condition_from_tree, tree_fields

MAX_Q_LENGTH = 200  # as REST's `q`


def page_of(first: int, after: str | None, sort: str | None) -> Page:
    return Page(limit=check_limit(first, ["first"]), cursor=after, sort=sort)


def parse_id(value: strawberry.ID, loc: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise DomainNotFound(f"{loc} {value} not found") from exc


async def filter_conditions(session: AsyncSession, spec: Any, filter: JSON | None
                            ) -> list[Any]:
    # As REST search: no filter or an empty object is no condition.
    if filter is None or filter == {}:
        return []
    condition = condition_from_tree(spec, filter, ["filter"])
    await require_defined_filters(session, spec, tree_fields(filter), ["filter"])
    return [condition]


def check_q(q: str | None) -> str | None:
    if q is not None and len(q) > MAX_Q_LENGTH:
        raise DomainValidationError.at(["q"], f"at most {MAX_Q_LENGTH} characters")
    return q


def page_info(edges: list[Any], next_cursor: str | None) -> PageInfo:
    # Relay: endCursor is the last edge's cursor, also on the last page.
    return PageInfo(has_next_page=next_cursor is not None,
                    end_cursor=edges[-1].cursor if edges else None)


@strawberry.type
class DeleteSuccess:
    id: strawberry.ID


DeleteResult = Annotated[DeleteSuccess | ValidationError | ConflictError | NotFoundError
                         | PreconditionFailedError | ForbiddenError,
                         strawberry.union("DeleteResult")]


async def in_savepoint(info: strawberry.Info, action: Callable[[], Awaitable[Any]], *,
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
