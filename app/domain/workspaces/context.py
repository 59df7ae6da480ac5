"""The current workspace's configuration, loaded once per transaction."""

from __future__ import annotations

import time
import uuid

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


_TIMEZONE_TTL = 5.0  # seconds; like the principal cache: other processes see a change soon
_timezones: dict[uuid.UUID, tuple[float, str]] = {}


async def workspace_timezone(session: AsyncSession, principal: Principal) -> str:
    """The workspace's time zone without loading its row (settings and all) on every request:
    the agenda needs it on every call. Cached per process for a few seconds."""
    now = time.monotonic()
    hit = _timezones.get(principal.workspace_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    timezone = (await current_workspace(session, principal)).timezone
    _timezones[principal.workspace_id] = (now + _TIMEZONE_TTL, timezone)
    return timezone


def forget_workspace(workspace_id: uuid.UUID) -> None:
    """After a change of the workspace: this process sees it at once."""
    _timezones.pop(workspace_id, None)
