"""Integrations: create (the secret is shown once), list, read, change, rotate, delete; and
authenticating a signed inbound request (docs/decisions/0039-signed-inbound-integrations.md).

An inbound request names its integration in the `relata-integration` header and is signed
with Standard Webhooks headers. The request does not know its workspace yet: the narrow
SECURITY DEFINER function `relata_integration_workspace(id)` answers only which workspace
and kind the id belongs to; the secret is then read under that workspace's row security."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_workspace
from app.domain.integrations.models import Integration
from app.domain.integrations.schemas import (
    IntegrationCreate,
    IntegrationRead,
    IntegrationUpdate,
    IntegrationWithSecret,
)
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import UnauthenticatedError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal
from app.domain.workspaces.models import Team
from app.domain.workspaces.service import require_users
from app.integrations.signing import SignatureError, new_secret, verify

ENTITY = "integration"
HEADER = "relata-integration"
ROTATION_GRACE = timedelta(hours=24)
_USE_EVERY = timedelta(minutes=1)
_SECRET_FIELDS = {"secret", "previous_secret"}

LIST_SPEC = ListSpec(
    id_column=Integration.id,
    fields={
        "id": FilterField(Integration.id, "uuid"),
        "kind": FilterField(Integration.kind, "str"),
        "name": FilterField(Integration.name, "str"),
        "enabled": FilterField(Integration.enabled, "bool"),
        "created_at": FilterField(Integration.created_at, "datetime", sortable=True),
    },
)


def to_read(integration: Integration) -> IntegrationRead:
    return IntegrationRead.model_validate(integration, from_attributes=True)


def with_secret(integration: Integration) -> IntegrationWithSecret:
    return IntegrationWithSecret.model_validate(integration, from_attributes=True)


def _snapshot(integration: Integration) -> dict[str, Any]:
    """Events and history never carry the secret."""
    return {k: v for k, v in records.snapshot(integration).items() if k not in _SECRET_FIELDS}


async def _check_refs(session: AsyncSession, team_id: uuid.UUID | None,
                      extensions: Mapping[str, uuid.UUID]) -> None:
    if team_id is not None and (await session.execute(
            select(Team.id).where(Team.id == team_id))).scalar_one_or_none() is None:
        raise ValidationError.at(["body", "team_id"], "no such team")
    if extensions:
        await require_users(session, sorted(set(extensions.values())),
                            ["body", "config", "extensions"])


async def create_integration(session: AsyncSession, principal: Principal,
                             data: IntegrationCreate) -> Integration:
    principal.require_admin()
    await _check_refs(session, data.team_id, data.config.extensions)
    integration = Integration(workspace_id=principal.workspace_id, kind=data.kind,
                              name=data.name, secret=new_secret(), team_id=data.team_id,
                              config=data.config.model_dump(mode="json"),
                              created_by=principal.actor, updated_by=principal.actor)
    session.add(integration)
    await session.flush()
    await record_event(session, principal, type="integration.created", entity_type=ENTITY,
                       entity_id=integration.id, after=_snapshot(integration))
    return integration


async def get_integration(session: AsyncSession, principal: Principal,
                          integration_id: uuid.UUID, *, for_update: bool = False) -> Integration:
    principal.require_admin()
    return await records.get_visible(session, Integration, principal, integration_id,
                                     for_update=for_update)


async def list_integrations(session: AsyncSession, principal: Principal, *,
                            conditions: list[Any], page: Page
                            ) -> tuple[list[Integration], str | None]:
    principal.require_admin()
    query = select(Integration).where(Integration.deleted_at.is_(None), *conditions)
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def update_integration(session: AsyncSession, principal: Principal,
                             integration_id: uuid.UUID, data: IntegrationUpdate, *,
                             expected_version: int | None = None) -> Integration:
    integration = await get_integration(session, principal, integration_id, for_update=True)
    records.check_version(integration, expected_version)
    given = data.model_dump(exclude_unset=True)
    for name in ("name", "enabled"):
        if name in given and given[name] is None:
            raise ValidationError.at(["body", name], "cannot be cleared")
    await _check_refs(session, given.get("team_id"),
                      data.config.extensions if data.config else {})
    before = _snapshot(integration)
    for name in ("name", "enabled", "team_id"):
        if name in given:
            setattr(integration, name, given[name])
    if "config" in given:
        integration.config = (data.config.model_dump(mode="json") if data.config
                              else {"extensions": {}})
    if _snapshot(integration) != before:
        records.touch(integration, principal)
        await session.flush()
        await record_event(session, principal, type="integration.updated", entity_type=ENTITY,
                           entity_id=integration.id, before=before, after=_snapshot(integration))
    return integration


async def rotate_secret(session: AsyncSession, principal: Principal,
                        integration_id: uuid.UUID) -> Integration:
    """A new secret (shown once); the old one keeps verifying for 24 hours."""
    integration = await get_integration(session, principal, integration_id, for_update=True)
    before = _snapshot(integration)
    integration.previous_secret = integration.secret
    integration.previous_secret_expires_at = clock.now() + ROTATION_GRACE
    integration.secret = new_secret()
    records.touch(integration, principal)
    await session.flush()
    await record_event(session, principal, type="integration.secret_rotated",
                       entity_type=ENTITY, entity_id=integration.id, before=before,
                       after=_snapshot(integration))
    return integration


async def delete_integration(session: AsyncSession, principal: Principal,
                             integration_id: uuid.UUID) -> None:
    integration = await get_integration(session, principal, integration_id, for_update=True)
    before = _snapshot(integration)
    integration.deleted_at = clock.now()
    integration.enabled = False
    records.touch(integration, principal)
    await session.flush()
    await record_event(session, principal, type="integration.deleted", entity_type=ENTITY,
                       entity_id=integration.id, before=before, after=_snapshot(integration))


# Inbound requests

_next_use: dict[uuid.UUID, float] = {}


def _use_due(integration_id: uuid.UUID) -> bool:
    now = time.monotonic()
    if _next_use.get(integration_id, 0.0) > now:
        return False
    if len(_next_use) > 10_000:
        _next_use.clear()
    _next_use[integration_id] = now + _USE_EVERY.total_seconds()
    return True

_REFUSED = "sign the request with the integration's secret (Standard Webhooks headers) and " \
           f"name the integration in the {HEADER} header"


async def authenticate(session: AsyncSession, headers: Mapping[str, str], body: bytes, *,
                       kind: str) -> tuple[Integration, Principal]:
    """The integration that signed this request, with the workspace set on `session`; 401
    for a missing or unknown integration, one of another kind, a disabled one, a bad or
    stale signature. Nothing is read from the workspace before the signature checks out."""
    raw = headers.get(HEADER, "").strip()
    try:
        integration_id = uuid.UUID(raw)
    except ValueError:
        raise UnauthenticatedError(_REFUSED) from None
    row = (await session.execute(text(
        "SELECT workspace_id, kind FROM relata_integration_workspace(:id)"),
        {"id": integration_id})).first()
    if row is None or row.kind != kind:
        raise UnauthenticatedError(_REFUSED)
    await set_workspace(session, row.workspace_id)
    integration = await session.get(Integration, (row.workspace_id, integration_id))
    if integration is None or integration.deleted_at is not None or not integration.enabled:
        raise UnauthenticatedError(_REFUSED)
    now = clock.now()
    secrets = [integration.secret]
    if integration.previous_secret and integration.previous_secret_expires_at \
            and integration.previous_secret_expires_at > now:
        secrets.append(integration.previous_secret)
    try:
        verify(secrets, headers, body, now=now)
    except SignatureError as exc:
        raise UnauthenticatedError(f"{exc}; {_REFUSED}") from None
    if _use_due(integration.id):
        # At most one write a minute per process: concurrent calls do not queue on the row.
        integration.last_used_at = now
    principal = Principal(workspace_id=integration.workspace_id, kind="integration",
                          id=integration.id)
    return integration, principal
