"""The current workspace's configuration, loaded once per transaction."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.shared.errors import NotFoundError
from app.domain.shared.principal import Principal
from app.domain.workspaces.models import Workspace


async def current_workspace(session: AsyncSession, principal: Principal) -> Workspace:
    cached = session.info.get("workspace")
    if cached is not None and cached.id == principal.workspace_id:
        return cached
    workspace = await session.get(Workspace, principal.workspace_id)
    if workspace is None:
        raise NotFoundError("workspace not found")
    session.info["workspace"] = workspace
    return workspace


async def lock_current_workspace(session: AsyncSession, principal: Principal) -> Workspace:
    """The workspace row, locked and freshly read: writers of its settings (the workspace
    PATCH, the scoring configuration) take turns, so none overwrites another's keys."""
    workspace = (await session.execute(
        select(Workspace).where(Workspace.id == principal.workspace_id).with_for_update()
        .execution_options(populate_existing=True))).scalar_one_or_none()
    if workspace is None:
        raise NotFoundError("workspace not found")
    session.info["workspace"] = workspace
    return workspace


_BASICS_TTL = 5.0  # seconds; like the principal cache: other processes see a change soon


@dataclass(frozen=True, slots=True)
class WorkspaceBasics:
    timezone: str
    default_region: str


_basics: dict[uuid.UUID, tuple[float, WorkspaceBasics]] = {}


def cached_basics(workspace_id: uuid.UUID) -> WorkspaceBasics | None:
    """`workspace_basics` when this process has them, for a path with no session."""
    hit = _basics.get(workspace_id)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


async def workspace_basics(session: AsyncSession, principal: Principal) -> WorkspaceBasics:
    """The workspace's time zone and phone region without loading its row (settings and all)
    on every request: the agenda and the phone lookup need them on every call. Cached per
    process for a few seconds."""
    hit = cached_basics(principal.workspace_id)
    if hit is not None:
        return hit
    now = time.monotonic()
    workspace = await current_workspace(session, principal)
    basics = WorkspaceBasics(timezone=workspace.timezone,
                             default_region=workspace.default_region)
    # A random 50-100 % of the TTL, as the principal cache does: workspaces first seen
    # together would otherwise all expire at once, and every one of their lookups would take
    # the ORM path in the same instant (a burst each TTL, seen in the lookup's p99).
    _basics[principal.workspace_id] = (now + _BASICS_TTL * random.uniform(0.5, 1.0), basics)
    return basics


async def workspace_timezone(session: AsyncSession, principal: Principal) -> str:
    return (await workspace_basics(session, principal)).timezone


def forget_workspace(workspace_id: uuid.UUID) -> None:
    """After a change of the workspace: this process sees it at once."""
    _basics.pop(workspace_id, None)
