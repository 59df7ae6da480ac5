"""JSON read from PostgreSQL comes back exactly as stored: the fast decoder (orjson) must not
turn a long integer into a float or refuse a number a jsonb column holds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB

from app.config import Settings
from app.db import create_engine, driver_connection, session_factory

DOCUMENTS = [
    '{"name": "Анна", "tags": ["vip"], "n": 42, "x": 2.5, "ok": true, "none": null}',
    '{"account": 123456789012345678901234567890}',  # beyond 64 bits
    '{"low": -9223372036854775809}',  # just below int64
    '{"huge": 1e400, "tiny": 1e-400}',  # numerics in jsonb, beyond a double
    '[1, "two", {"three": [3]}]',
]


@pytest.fixture
async def sessions(settings: Settings) -> Any:
    engine = create_engine(settings)
    yield session_factory(engine)
    await engine.dispose()


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_jsonb_reads_back_as_the_standard_library_decodes_its_text(
        sessions: Any, document: str) -> None:
    async with sessions() as session, session.begin():
        through_orm = (await session.execute(
            text("select cast(:doc as jsonb) as doc").columns(doc=JSONB()),
            {"doc": document})).scalar_one()
        conn = await driver_connection(session)
        raw = await conn.fetchval("select $1::text::jsonb", document)
        stored_text = await conn.fetchval("select $1::text::jsonb::text", document)
    expected = json.loads(stored_text)
    # == between an int and a float is exact in Python: a rounded integer would differ.
    assert through_orm == expected
    assert raw == expected
    assert repr(through_orm) == repr(expected)
