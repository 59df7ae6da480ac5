"""The current workspace's configuration, loaded once per transaction."""

from __future__ import annotations

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
