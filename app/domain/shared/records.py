"""What every versioned, owned, soft-deletable record does the same way."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.base import manager_of_class

from app.domain.outbox.service import record_event
from app.domain.shared.clock import clock
from app.domain.shared.errors import DuplicateError, NotFoundError, PreconditionFailedError
from app.domain.shared.models import TenantRecord
from app.domain.shared.principal import Principal

R = TypeVar("R", bound=TenantRecord)

RESTORE_WINDOW = timedelta(days=30)
# Columns that never appear in API payloads or events.
INTERNAL_FIELDS = {"search_text", "workspace_id"}


def visibility_condition(model: type[Any], principal: Principal) -> ColumnElement[bool]:
    """Row filter for the principal's record visibility (owner-based)."""
    column = getattr(model, "__owner_column__", "owner_id")
    if principal.visible_owner_ids is None or column is None:
        return true()
    owner = getattr(model, column)
    parts = [owner.in_(list(principal.visible_owner_ids))] if principal.visible_owner_ids else []
    if principal.sees_unowned:
        parts.append(owner.is_(None))
    return or_(*parts) if parts else false()


def transient(model: type[R], values: dict[str, Any]) -> R:
    """An instance of `model` holding `values` (every column) the way the ORM's loader fills
    one, without an attribute event per column: for a path that reads and writes below the
    ORM and runs the model's code on the record (decision 0062). It is in no session, so
    nothing writes it; later changes are tracked as usual."""
    record = manager_of_class(model).new_instance()
    record.__dict__.update(values)
    return record  # type: ignore[no-any-return]


class Draft(dict[str, Any]):
    """A new record's columns while they are worked out, read and set as attributes (as the
    services' field code does to a record): far cheaper than a model instance, which runs
    every field's default and tracks each change. `transient(model, draft)` makes the
    record once it is complete."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


_DEFAULTS: dict[type[Any], tuple[dict[str, Any], list[tuple[str, Any]]]] = {}


def draft(model: type[Any], **values: Any) -> Draft:
    """Every column of `model` at its default (factories called), then `values`."""
    if model not in _DEFAULTS:
        constants, factories = {}, []
        for name, info in model.model_fields.items():
            if info.default_factory is not None:
                factories.append((name, info.default_factory))
            else:
                constants[name] = info.default
        _DEFAULTS[model] = constants, factories
    constants, factories = _DEFAULTS[model]
    record = Draft(constants)
    for name, factory in factories:
        record[name] = factory()
    record.update(values)
    return record


def entity_name(model: type[Any]) -> str:
    """companies -> company, deals -> deal: the singular a message names."""
    table = model.__tablename__
    return table[:-3] + "y" if table.endswith("ies") else table.removesuffix("s")


def snapshot(record: TenantRecord) -> dict[str, Any]:
    """The record as JSON-compatible data, as it is shown in events and history."""
    return record.model_dump(mode="json", exclude=INTERNAL_FIELDS)


async def get_visible(session: AsyncSession, model: type[R], principal: Principal,
                      record_id: uuid.UUID, *, include_deleted: bool = False,
                      for_update: bool = False) -> R:
    query = select(model).where(model.id == record_id,
                                visibility_condition(model, principal))
    if not include_deleted:
        query = query.where(model.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update()
    record = (await session.execute(query)).scalar_one_or_none()
    if record is None:
        raise NotFoundError(f"{entity_name(model)} {record_id} not found")
    return record


async def visible_by_ids(session: AsyncSession, model: type[R], principal: Principal,
                         ids: list[uuid.UUID]) -> dict[uuid.UUID, R]:
    """Batch load for DataLoaders: the visible, live records among `ids`."""
    if not ids:
        return {}
    rows = await session.execute(select(model).where(
        model.id.in_(ids), model.deleted_at.is_(None), visibility_condition(model, principal)))
    return {r.id: r for r in rows.scalars()}


def check_version(record: TenantRecord, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != record.version:
        raise PreconditionFailedError(
            f"the record is at version {record.version}, not {expected_version}; "
            "fetch it again and retry", extra={"current_version": record.version})


def touch(record: TenantRecord, principal: Principal) -> None:
    record.version += 1
    record.updated_at = clock.now()
    record.updated_by = principal.actor


async def soft_delete(session: AsyncSession, record: TenantRecord, principal: Principal,
                      entity: str) -> None:
    before = snapshot(record)
    record.deleted_at = clock.now()
    touch(record, principal)
    await record_event(session, principal, type=f"{entity}.deleted", entity_type=entity,
                       entity_id=record.id, before=before, after=snapshot(record))


async def restore(session: AsyncSession, record: TenantRecord, principal: Principal,
                  entity: str) -> None:
    if record.deleted_at is None:
        return
    if clock.now() - record.deleted_at > RESTORE_WINDOW:
        raise NotFoundError(f"{entity} {record.id} was deleted more than "
                            f"{RESTORE_WINDOW.days} days ago and cannot be restored")
    before = snapshot(record)
    record.deleted_at = None
    touch(record, principal)
    await record_event(session, principal, type=f"{entity}.restored", entity_type=entity,
                       entity_id=record.id, before=before, after=snapshot(record))


async def require_external_id_free(session: AsyncSession, record: Any, entity: str) -> None:
    """A 409 naming the other record of its kind that holds `record.external_id` (deleted
    ones too: the unique index keeps them)."""
    if record.external_id is None:
        return
    model = type(record)
    holder = (await session.execute(select(model.id, model.deleted_at).where(
        model.external_id == record.external_id, model.id != record.id))).first()
    if holder is not None:
        state = " (deleted: restore it or use another external_id)" if holder.deleted_at else ""
        raise DuplicateError(
            f"{entity} {holder.id} already has the external_id {record.external_id!r}{state}",
            errors=[{"loc": ["body", "external_id"], "type": "duplicate",
                     "msg": f"belongs to {entity} {holder.id}"}],
            extra={"existing_id": str(holder.id), "field": "external_id",
                   "value": record.external_id})


async def flush_with_external_id(session: AsyncSession, record: Any, entity: str, *,
                                 check_external_id: bool) -> None:
    """Write the record; an external_id that another record of its kind holds is a 409 naming
    that record (deleted ones too: the unique index keeps them)."""
    if check_external_id:
        await require_external_id_free(session, record, entity)
    external_id = record.external_id  # a failed flush expires the instance
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent writer took the external_id after the check
        raise DuplicateError(f"a {entity} with external_id {external_id!r} exists",
                             extra={"field": "external_id"}) from exc
