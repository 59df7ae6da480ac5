"""Custom field definitions: create, list, update, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.customfields.models import CustomFieldDefinition
from app.domain.customfields.schemas import CustomFieldCreate, CustomFieldUpdate
from app.domain.outbox.service import record_event
from app.domain.shared.errors import ConflictError, NotFoundError, ValidationError
from app.domain.shared.listing import ListSpec, custom_field_key
from app.domain.shared.principal import Principal
from app.domain.shared.records import check_version, snapshot, soft_delete, touch


async def definitions_for(session: AsyncSession, object_type: str) -> list[CustomFieldDefinition]:
    """Definitions of one object type in the current workspace."""
    rows = await session.execute(select(CustomFieldDefinition).where(
        CustomFieldDefinition.object_type == object_type,
        CustomFieldDefinition.deleted_at.is_(None)).order_by(CustomFieldDefinition.key))
    return list(rows.scalars())


async def require_defined_filters(session: AsyncSession, spec: ListSpec, names: Iterable[str],
                                  loc: list[str | int], *, query: bool = False) -> None:
    """A filter on a custom field that the workspace has not defined is a 422 naming it, not
    an empty list (a typo in a key would look like "no such records"). `names`: the filter
    field names of a filter tree, or (`query`) the parameter names of a query string, which
    the error's `loc` then ends with."""
    named = [(name, key) for name in names if (key := custom_field_key(spec, name))]
    if not named or spec.custom_fields_object is None:
        return
    known = {d.key for d in await definitions_for(session, spec.custom_fields_object)}
    for name, key in named:
        if key not in known:
            raise ValidationError.at([*loc, name] if query else loc,
                                     f"unknown custom field {key!r}; defined: "
                                     + (", ".join(sorted(known)) or "none"))


async def list_definitions(session: AsyncSession, *, object_type: str | None
                           ) -> list[CustomFieldDefinition]:
    query = select(CustomFieldDefinition).where(CustomFieldDefinition.deleted_at.is_(None))
    if object_type:
        query = query.where(CustomFieldDefinition.object_type == object_type)
    rows = await session.execute(query.order_by(CustomFieldDefinition.object_type,
                                                CustomFieldDefinition.key))
    return list(rows.scalars())


def _check_options(field_type: str, options: list[str]) -> None:
    if field_type in ("select", "multiselect") and not options:
        raise ValidationError.at(["body", "options"], "select fields need at least one option")
    if len(set(options)) != len(options):
        raise ValidationError.at(["body", "options"], "options must be unique")


async def create_definition(session: AsyncSession, principal: Principal,
                            data: CustomFieldCreate) -> CustomFieldDefinition:
    principal.require_admin()
    _check_options(data.type, data.options)
    definition = CustomFieldDefinition(workspace_id=principal.workspace_id,
                                       created_by=principal.actor, updated_by=principal.actor,
                                       **data.model_dump())
    try:
        async with session.begin_nested():
            session.add(definition)
            await session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a {data.object_type} custom field {data.key!r} already exists"
                            ) from exc
    await record_event(session, principal, type="custom_field.created",
                       entity_type="custom_field", entity_id=definition.id,
                       after=snapshot(definition))
    return definition


async def get_definition(session: AsyncSession, definition_id: uuid.UUID) -> CustomFieldDefinition:
    definition = (await session.execute(select(CustomFieldDefinition).where(
        CustomFieldDefinition.id == definition_id,
        CustomFieldDefinition.deleted_at.is_(None)))).scalar_one_or_none()
    if definition is None:
        raise NotFoundError(f"custom field {definition_id} not found")
    return definition


async def update_definition(session: AsyncSession, principal: Principal,
                            definition_id: uuid.UUID, data: CustomFieldUpdate, *,
                            expected_version: int | None = None) -> CustomFieldDefinition:
    principal.require_admin()
    definition = await get_definition(session, definition_id)
    check_version(definition, expected_version)
    before = snapshot(definition)
    changes = data.model_dump(exclude_unset=True)
    if "options" in changes and changes["options"] is not None:
        _check_options(definition.type, changes["options"])
    for key, value in changes.items():
        if value is not None:
            setattr(definition, key, value)
    touch(definition, principal)
    await record_event(session, principal, type="custom_field.updated",
                       entity_type="custom_field", entity_id=definition.id, before=before,
                       after=snapshot(definition))
    return definition


async def delete_definition(session: AsyncSession, principal: Principal,
                            definition_id: uuid.UUID, *,
                            expected_version: int | None = None) -> None:
    principal.require_admin()
    definition = await get_definition(session, definition_id)
    check_version(definition, expected_version)
    # Free the key for reuse; stored values on records stay until overwritten.
    definition.key = f"{definition.key}__deleted_{definition.id.hex[:8]}"
    await soft_delete(session, definition, principal, "custom_field")
