"""Engine, sessions and the unit of work.

The application connects with the configured URL but every transaction switches to the
unprivileged application role (`SET LOCAL ROLE relata_app`): that role owns nothing and has no
BYPASSRLS, so row-level security holds even when the URL logs in as a superuser. Each unit of
work starts by setting `app.workspace_id` for its transaction only (`set_config(..., true)`),
so a pooled connection never carries a workspace into the next transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings

SET_WORKSPACE = text("select set_config('app.workspace_id', :ws, true)")


def create_engine(settings: Settings, *, as_app_role: bool = True) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "relata", "timezone": "UTC"}},
    )
    if as_app_role:
        set_role = f'SET LOCAL ROLE "{settings.app_role}"'

        # Per transaction, not per connection: a connection reset after an error (RESET ALL)
        # would silently drop a session-level SET ROLE and leave the login's privileges.
        @event.listens_for(engine.sync_engine, "begin")
        def _become_app_role(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql(set_role)

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def set_workspace(session: AsyncSession, workspace_id: uuid.UUID | None) -> None:
    await session.execute(SET_WORKSPACE, {"ws": str(workspace_id) if workspace_id else ""})


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID | None
) -> AsyncIterator[AsyncSession]:
    """One transaction scoped to one workspace: commit on success, roll back on error."""
    async with sessions() as session, session.begin():
        await set_workspace(session, workspace_id)
        yield session
