"""Engine, sessions and the unit of work.

The application connects with the configured URL but every connection runs as the unprivileged
application role: that role owns nothing and has no BYPASSRLS, so row-level security holds even
when the URL logs in as a superuser. The role is a startup parameter of the connection (like
`options=-c role=relata_app`), so it costs no statement, and it is also the value `RESET ROLE`,
`RESET ALL` and `DISCARD ALL` return to: nothing on a pooled connection can fall back to the
login's privileges (see docs/decisions/0054-role-as-startup-parameter.md). Each unit of
work starts by setting `app.workspace_id` for its transaction only (`set_config(..., true)`),
so a pooled connection never carries a workspace into the next transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings

SET_WORKSPACE = text("select set_config('app.workspace_id', :ws, true)")

# orjson reads an integer beyond 64 bits as a float (precision lost) and refuses a number
# beyond a double (jsonb holds both, as numeric); the standard library keeps such an integer
# an int. Documents with a run of 19 digits or more (rare: a long number in a custom field),
# or that orjson refuses, take the standard library's path; everything else the fast one.
_LONG_NUMBER = re.compile(r"\d{19}")


def json_loads(text: str) -> Any:
    """JSON from PostgreSQL (json/jsonb columns), decoded as the standard library would."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def jsonb_param(value: Any) -> str:
    """A json/jsonb parameter for a statement on the driver connection (its codec takes
    text): orjson, or the standard library for what orjson refuses (an integer beyond 64
    bits), as the ORM's serializer would write it (None too: JSON null, not SQL NULL)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


class DriverInsert:
    """`INSERT INTO <table> (<columns>) VALUES ($n, …)` for a writer below the ORM, with the
    parameters taken from a model instance (or a dict of its columns): JSONB columns are
    encoded as the ORM's serializer writes them (`jsonb_param`), the rest go as they are."""

    def __init__(self, model: type[Any], columns: list[str] | None = None) -> None:
        table = model.__table__
        self.table: str = table.name
        self.columns = columns or [c.name for c in table.columns]
        self._json = {c.name for c in table.columns if isinstance(c.type, JSONB)}
        self._types = {c.name: c.type.compile(dialect=postgresql.dialect()).lower()
                       for c in table.columns}
        # Array columns (text[]): JSON text in `many_params`, since unnest flattens arrays.
        self._arrays = [i for i, name in enumerate(self.columns)
                        if name not in self._json and self._types[name].endswith("[]")]

    def sql(self, first: int, rows: int = 1) -> str:
        """The statement with its parameters numbered from `first`, `rows` rows of them."""
        width = len(self.columns)
        values = ", ".join(
            "(" + ", ".join(f"${first + r * width + i}" for i in range(width)) + ")"
            for r in range(rows))
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {values}"

    def many_sql(self) -> str:
        """One statement for any number of rows: each column's values as one array parameter
        (`many_params`), unnested. PostgreSQL runs one plan for the lot (an `executemany`
        runs it per row); JSONB and array columns travel as JSON text."""
        selected, arrays = [], []
        for i, name in enumerate(self.columns, start=1):
            kind = self._types[name]
            if name in self._json:
                arrays.append(f"${i}::text[]")
                selected.append(f"{name}::jsonb")
            elif kind.endswith("[]"):
                arrays.append(f"${i}::text[]")
                selected.append(f"CASE WHEN {name} IS NULL THEN NULL ELSE ARRAY(SELECT "
                                f"jsonb_array_elements_text({name}::jsonb)) END")
            else:
                arrays.append(f"${i}::{kind}[]")
                selected.append(name)
        return (f"INSERT INTO {self.table} ({', '.join(self.columns)}) SELECT "
                f"{', '.join(selected)} FROM unnest({', '.join(arrays)}) AS given("
                f"{', '.join(self.columns)})")

    def many_params(self, records: list[Any]) -> list[list[Any]]:
        """`many_sql`'s parameters: a list per column, in the rows' order."""
        rows = [self.params(r) for r in records]
        for index in self._arrays:
            for row in rows:
                if row[index] is not None:
                    row[index] = jsonb_param(row[index])
        return [list(column) for column in zip(*rows, strict=True)] if rows else \
            [[] for _ in self.columns]

    def params(self, record: Any) -> list[Any]:
        if isinstance(record, dict):
            values = [record[c] for c in self.columns]
        else:  # a new or transient instance holds every column in its __dict__
            held = record.__dict__
            values = [held[c] if c in held else getattr(record, c) for c in self.columns]
        return [jsonb_param(v) if c in self._json else v
                for c, v in zip(self.columns, values, strict=True)]


def pool_overflow(pool_size: int) -> int:
    """Connections opened beyond the pool under a burst (closed again when returned)."""
    return max(pool_size // 2, 1)


def create_engine(settings: Settings, *, as_app_role: bool = True) -> AsyncEngine:
    server_settings = {"application_name": "relata", "timezone": "UTC"}
    if as_app_role:
        server_settings["role"] = settings.app_role
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=pool_overflow(settings.db_pool_size),
        pool_pre_ping=False,
        json_deserializer=json_loads,
        connect_args={"server_settings": server_settings},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside its transaction, for a hot read that is
    cheaper as one prepared statement than through the ORM (a single-row GET). Only after the
    transaction's first statement (`set_workspace`), so the reads see its workspace and RLS."""
    fairy = await (await session.connection()).get_raw_connection()
    conn: asyncpg.Connection = fairy.driver_connection  # type: ignore[assignment]
    if not conn.is_in_transaction():
        raise RuntimeError("driver_connection() before the transaction's first statement")
    return conn


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
