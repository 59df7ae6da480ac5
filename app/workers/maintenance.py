"""Housekeeping jobs. Each workspace is handled in its own unit of work (RLS applies)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, or_, text

from app.db import unit_of_work
from app.domain.shared.clock import clock
from app.domain.workspaces.models import RefreshToken

log = structlog.get_logger("relata.worker")


async def all_workspace_ids(sessions: Any) -> list[Any]:
    async with unit_of_work(sessions, None) as session:
        return list((await session.execute(text("select * from relata_workspace_ids()"))).scalars())


async def purge_expired_refresh_tokens(ctx: dict[str, Any]) -> int:
    """Refresh tokens that expired or were revoked over a day ago are deleted."""
    sessions = ctx["sessions"]
    cutoff = clock.now() - timedelta(days=1)
    purged = 0
    for workspace_id in await all_workspace_ids(sessions):
        async with unit_of_work(sessions, workspace_id) as session:
            result = await session.execute(delete(RefreshToken).where(or_(
                RefreshToken.expires_at < clock.now(), RefreshToken.revoked_at < cutoff)))
            purged += result.rowcount or 0
    log.info("purged refresh tokens", count=purged)
    return purged
