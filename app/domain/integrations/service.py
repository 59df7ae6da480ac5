"""Integrations: create (the secret is shown once), list, read, change, rotate, delete; and
authenticating a signed inbound request (docs/decisions/0039-signed-inbound-integrations.md).

An inbound request names its integration in the `relata-integration` header and is signed
with Standard Webhooks headers. The request does not know its workspace yet: the narrow
SECURITY DEFINER function `relata_integration_workspace(id)` answers only which workspace
and kind the id belongs to; the secret is then read under that workspace's row security."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
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
    forget_integration(integration.id)
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
    forget_integration(integration.id)
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
    forget_integration(integration.id)
    before = _snapshot(integration)
    integration.deleted_at = clock.now()
    integration.enabled = False
    records.touch(integration, principal)
    await session.flush()
    await record_event(session, principal, type="integration.deleted", entity_type=ENTITY,
                       entity_id=integration.id, before=before, after=_snapshot(integration))


# Inbound requests

@dataclass(frozen=True, slots=True)
class SignedIntegration:
    """What an inbound request needs of its integration, cached per process for a few
    seconds (like the principal cache): a PBX's every call would otherwise read the
    integration row, and the workspace id before it. A change made in this process (update,
    rotation, deletion) is seen at once; one made in another process within `_AUTH_TTL`."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    team_id: uuid.UUID | None
    config: Mapping[str, Any]

    def secrets(self, now: datetime) -> list[str]:
        """The secrets a request may be signed with now (the old one during a rotation)."""
        if self.previous_secret and self.previous_secret_expires_at \
                and self.previous_secret_expires_at > now:
            return [self.secret, self.previous_secret]
        return [self.secret]


_AUTH_TTL = 5.0  # seconds
_signed: dict[uuid.UUID, tuple[float, SignedIntegration]] = {}
_next_use: dict[uuid.UUID, float] = {}


def forget_integration(integration_id: uuid.UUID) -> None:
    """After a change of the integration: this process's next request reads it afresh."""
    _signed.pop(integration_id, None)


async def _signed_integration(session: AsyncSession,
                              integration_id: uuid.UUID) -> SignedIntegration | None:
    """The live, enabled integration with this id (any kind), the workspace set on `session`;
    None when there is none."""
    hit = _signed.get(integration_id)
    if hit is not None and hit[0] > time.monotonic():
        await set_workspace(session, hit[1].workspace_id)
        return hit[1]
    row = (await session.execute(text(
        "SELECT workspace_id, kind FROM relata_integration_workspace(:id)"),
        {"id": integration_id})).first()
    if row is None:
        return None
    await set_workspace(session, row.workspace_id)
    integration = await session.get(Integration, (row.workspace_id, integration_id))
    if integration is None or integration.deleted_at is not None or not integration.enabled:
        return None
    signed = SignedIntegration(
        id=integration.id, workspace_id=integration.workspace_id, kind=integration.kind,
        secret=integration.secret, previous_secret=integration.previous_secret,
        previous_secret_expires_at=integration.previous_secret_expires_at,
        team_id=integration.team_id, config=dict(integration.config or {}))
    if len(_signed) > 10_000:
        _signed.clear()
    _signed[integration_id] = (time.monotonic() + _AUTH_TTL * random.uniform(0.5, 1.0), signed)
    return signed


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
                       kind: str) -> tuple[SignedIntegration, Principal]:
    """The integration that signed this request, with the workspace set on `session`; 401
    for a missing or unknown integration, one of another kind, a disabled one, a bad or
    stale signature. Nothing is read from the workspace before the signature checks out."""
    raw = headers.get(HEADER, "").strip()
    try:
        integration_id = uuid.UUID(raw)
    except ValueError:
        raise UnauthenticatedError(_REFUSED) from None
    integration = await _signed_integration(session, integration_id)
    if integration is None or integration.kind != kind:
        raise UnauthenticatedError(_REFUSED)
    now = clock.now()
    try:
        verify(integration.secrets(now), headers, body, now=now)
    except SignatureError as exc:
        raise UnauthenticatedError(f"{exc}; {_REFUSED}") from None
    if _use_due(integration.id):
        # At most one write a minute per process: concurrent calls do not queue on the row.
        await session.execute(update(Integration).where(
            Integration.workspace_id == integration.workspace_id,
            Integration.id == integration.id).values(last_used_at=now))
    principal = Principal(workspace_id=integration.workspace_id, kind="integration",
                          id=integration.id)
    return integration, principal
