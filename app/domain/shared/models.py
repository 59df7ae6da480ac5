"""Column helpers and the base of every tenant-owned record."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import DateTime, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from app.domain.shared.clock import clock
from app.domain.shared.ids import new_id

# Tables that do not hold tenant data (checked by the RLS test).
GLOBAL_TABLES = {"alembic_version"}


def utc_now() -> datetime:
    return clock.now()


utc_now.__signature__ = inspect.Signature()  # type: ignore[attr-defined]  # see fast_factory


def ts_field(*, nullable: bool = False, index: bool = False, default: Any = ...) -> Any:
    kwargs: dict[str, Any] = {"sa_type": DateTime(timezone=True), "nullable": nullable,
                              "index": index}
    if default is ...:
        kwargs["default_factory"] = utc_now
    else:
        kwargs["default"] = default
    return Field(**kwargs)


F = TypeVar("F", bound=Callable[..., Any])


def fast_factory(factory: F) -> F:
    """pydantic inspects a default factory's signature on every model construction
    (`inspect.signature`: ~45 µs for a function, ~450 µs for the builtins `list`/`dict`).
    A precomputed `__signature__` makes that lookup free."""
    factory.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
    return factory


@fast_factory
def empty_list() -> list[Any]:
    return []


@fast_factory
def empty_dict() -> dict[str, Any]:
    return {}


@fast_factory
def no_value() -> None:
    return None


_FACTORIES: dict[Any, Any] = {list: empty_list, dict: empty_dict, None: no_value}


def jsonb_field(default_factory: Any, *, nullable: bool = False) -> Any:
    factory = _FACTORIES.get(default_factory) or fast_factory(default_factory)
    return Field(default_factory=factory, sa_type=JSONB, nullable=nullable)


def text_array_field() -> Any:
    return Field(default_factory=empty_list, sa_type=ARRAY(Text), nullable=False)


class TenantRecord(SQLModel):
    """A versioned, soft-deletable record of one workspace; (workspace_id, id) is its key.

    `__owner_column__` names the column that decides visibility (see records.py); None means
    every member of the workspace sees the record (pipelines, stages)."""

    __owner_column__: ClassVar[str | None] = "owner_id"

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    version: int = Field(default=1, nullable=False)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    deleted_at: datetime | None = ts_field(nullable=True, default=None)
    created_by: str = Field(nullable=False)
    updated_by: str = Field(nullable=False)
