"""Housekeeping runs per workspace through RLS, with the worker's own engine."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.config import Settings
from app.db import create_engine, session_factory, unit_of_work
from app.domain.shared.clock import clock
from app.domain.workspaces.models import RefreshToken
from app.workers.maintenance import purge_expired_refresh_tokens
from tests.conftest import Workspace


async def test_expired_refresh_tokens_are_purged_in_every_workspace(
        ws: Workspace, client: httpx.AsyncClient, settings: Settings) -> None:
    user = await ws.post("/api/v1/users", json={"email": "agent@example.com", "role": "agent",
                                                 "password": "agent-password-1"})
    assert user.status_code == 201, user.text
    tokens = await client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": "agent@example.com",
        "password": "agent-password-1", "workspace_id": ws.id})
    assert tokens.status_code == 200, tokens.text
    engine = create_engine(settings)
    ctx: dict[str, Any] = {"sessions": session_factory(engine)}
    try:
        async def live_tokens() -> int:
            async with unit_of_work(ctx["sessions"], uuid.UUID(ws.id)) as session:
                return (await session.execute(select(func.count()).select_from(RefreshToken))
                        ).scalar_one()

        assert await live_tokens() == 1
        await purge_expired_refresh_tokens(ctx)
        assert await live_tokens() == 1, "an unexpired token must survive"
        clock.freeze(clock.now() + timedelta(days=settings.refresh_token_days + 1))
        try:
            assert await purge_expired_refresh_tokens(ctx) >= 1
        finally:
            clock.freeze(None)
        assert await live_tokens() == 0
    finally:
        await engine.dispose()
