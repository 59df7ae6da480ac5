"""Batch writes: each item in its own savepoint, so one bad item never sinks the others."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.shared.errors import DomainError, ValidationError
from app.domain.shared.principal import Principal
from app.domain.shared.writecache import batch_lookups


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one, so a malformed item fails alone.
    items: list[Any] = Field(min_length=1, max_length=1000,
                             json_schema_extra={"items": {"type": "object"}},
                             description="Up to 1,000 records, each as in a single create")
    upsert_on: Literal["email", "phone", "external_id"] | None = None


class BatchItemResult(BaseModel):
    index: int
    status: Literal["created", "updated", "unchanged", "error"]
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]


@dataclass
class BatchOps:
    schema: type[BaseModel]
    create: Callable[[AsyncSession, Principal, Any], Awaitable[Any]]
    find_existing: Callable[[AsyncSession, Principal, Any, str], Awaitable[Any]]
    update_existing: Callable[[AsyncSession, Principal, Any, Any], Awaitable[bool]]
    upsert_keys: tuple[str, ...] = ("email", "phone", "external_id")
    # Many creates at once, one outcome (record or error) per item, in order.
    bulk_create: Callable[[AsyncSession, Principal, list[Any]],
                          Awaitable[list[Any]]] | None = None


def problem_of(error: DomainError) -> dict[str, Any]:
    return {"type": f"https://relata.dev/problems/{error.type_slug}", "title": error.title,
            "status": error.status, "detail": error.detail, "errors": error.errors,
            **error.extra}


def problem_of_validation(error: PydanticValidationError) -> dict[str, Any]:
    return {"type": "https://relata.dev/problems/validation", "title": "Validation failed",
            "status": 422, "detail": "the item is not valid",
            "errors": [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                       for e in error.errors(include_url=False, include_input=False)]}


async def run_batch(session: AsyncSession, principal: Principal, ops: BatchOps,
                    items: list[dict[str, Any]], upsert_on: str | None) -> list[dict[str, Any]]:
    principal.require_write()
    if upsert_on is not None and upsert_on not in ops.upsert_keys:
        raise ValidationError.at(["body", "upsert_on"], "this resource upserts on "
                                 + " or ".join(ops.upsert_keys) + " only")
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, Any]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, ops.schema.model_validate(raw)))
        except PydanticValidationError as exc:
            results[index] = _error(index, problem_of_validation(exc))
    async with batch_lookups(session):
        creates, one_by_one = valid, []
        if upsert_on and ops.bulk_create:
            creates = []
            for index, data in valid:
                try:
                    found = await ops.find_existing(session, principal, data, upsert_on)
                except DomainError as exc:
                    results[index] = _error(index, problem_of(exc))
                    continue
                (one_by_one if found is not None else creates).append((index, data))
        if ops.bulk_create:
            outcomes = await ops.bulk_create(session, principal, [d for _, d in creates])
            for (index, data), outcome in zip(creates, outcomes, strict=True):
                if not isinstance(outcome, DomainError):
                    results[index] = {"index": index, "status": "created", "id": outcome.id}
                elif upsert_on and outcome.status == 409:
                    # The same key twice in one batch: the later item updates the earlier.
                    one_by_one.append((index, data))
                else:
                    results[index] = _error(index, problem_of(outcome))
        else:
            one_by_one = valid
        for index, data in sorted(one_by_one, key=lambda pair: pair[0]):
            results[index] = await _write_one(session, principal, ops, index, data, upsert_on)
    return [r for r in results if r is not None]


def _error(index: int, problem: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "status": "error", "error": problem}


async def _write_one(session: AsyncSession, principal: Principal, ops: BatchOps, index: int,
                     data: Any, upsert_on: str | None) -> dict[str, Any]:
    try:
        async with session.begin_nested():
            existing = (await ops.find_existing(session, principal, data, upsert_on)
                        if upsert_on else None)
            if existing is None:
                record = await ops.create(session, principal, data)
                status = "created"
            else:
                changed = await ops.update_existing(session, principal, existing, data)
                record, status = existing, "updated" if changed else "unchanged"
            await session.flush()
        return {"index": index, "status": status, "id": record.id}
    except DomainError as exc:
        return _error(index, problem_of(exc))
