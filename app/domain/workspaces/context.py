"""The current workspace's configuration, loaded once per transaction."""

from __future__ import annotations

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
