"""The database itself enforces tenancy: forced RLS, an unprivileged app role, per-transaction
workspace, composite keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db import create_engine, session_factory, unit_of_work
from app.domain.registry import metadata
from app.domain.shared.models import GLOBAL_TABLES
from tests.conftest import Workspace


@pytest.fixture
async def app_engine(settings: Settings) -> Any:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_engine(settings: Settings) -> Any:
    engine = create_engine(settings, as_app_role=False)
    yield engine
    await engine.dispose()


async def test_every_tenant_table_has_forced_rls_and_a_policy(owner_engine: Any) -> None:
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("""
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind = 'r'"""))).all()
    tables = {r.relname: r for r in rows}
    assert set(metadata.tables) <= set(tables), "a model table is missing from the database"
    unprotected = [name for name, r in tables.items() if name not in GLOBAL_TABLES
                   and not (r.relrowsecurity and r.relforcerowsecurity and r.policies > 0)]
    assert unprotected == []


async def test_every_tenant_key_and_unique_constraint_leads_with_workspace(
        owner_engine: Any) -> None:
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(text("""
            select c.relname as tbl, con.conname, con.contype,
                   (select a.attname from pg_attribute a
                    where a.attrelid = con.conrelid and a.attnum = con.conkey[1]) as first_col
            from pg_constraint con join pg_class c on c.oid = con.conrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and con.contype in ('p', 'u', 'f')"""))).all()
        unique_indexes = (await conn.execute(text("""
            select t.relname as tbl, i.relname as idx,
                   (select a.attname from pg_attribute a
                    where a.attrelid = t.oid and a.attnum = ix.indkey[0]) as first_col
            from pg_index ix join pg_class i on i.oid = ix.indexrelid
            join pg_class t on t.oid = ix.indrelid join pg_namespace n on n.oid = t.relnamespace
            where n.nspname = 'public' and ix.indisunique"""))).all()
    offenders = [f"{r.tbl}.{r.conname}" for r in rows
                 if r.tbl not in GLOBAL_TABLES | {"workspaces"}
                 and r.first_col != "workspace_id"]
    offenders += [f"{r.tbl}.{r.idx}" for r in unique_indexes
                  if r.tbl not in GLOBAL_TABLES | {"workspaces"} and r.first_col != "workspace_id"]
    assert offenders == []


async def test_app_role_owns_nothing_and_cannot_bypass_rls(app_engine: Any) -> None:
    async with app_engine.connect() as conn:
        row = (await conn.execute(text("""
            select current_user as who, r.rolsuper, r.rolbypassrls,
                   (select count(*) from pg_class c where c.relowner = r.oid) as owned
            from pg_roles r where r.rolname = current_user"""))).one()
    assert row.who == "relata_app"
    assert (row.rolsuper, row.rolbypassrls, row.owned) == (False, False, 0)


async def test_session_without_workspace_sees_zero_rows(ws: Workspace, app_engine: Any) -> None:
    created = await ws.post("/api/v1/contacts", json={"full_name": "Visible Only In Tenant"})
    assert created.status_code == 201
    async with unit_of_work(session_factory(app_engine), None) as session:
        for table in ("contacts", "users", "api_keys", "workspaces", "events"):
            count = (await session.execute(text(f"select count(*) from {table}"))).scalar()
            assert count == 0, table
    async with unit_of_work(session_factory(app_engine), uuid.UUID(ws.id)) as session:
        assert (await session.execute(text("select count(*) from contacts"))).scalar() == 1


async def test_pooled_connection_carries_no_workspace_into_next_transaction(
        ws: Workspace, settings: Settings) -> None:
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        sessions = session_factory(engine)
        await ws.post("/api/v1/contacts", json={"full_name": "Pooled"})
        async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
            backend = (await session.execute(text("select pg_backend_pid()"))).scalar()
            assert (await session.execute(text("select count(*) from contacts"))).scalar() == 1
        async with sessions() as session, session.begin():
            assert (await session.execute(text("select pg_backend_pid()"))).scalar() == backend
            setting = (await session.execute(
                text("select current_setting('app.workspace_id', true)"))).scalar()
            assert setting in (None, "")
            assert (await session.execute(text("select count(*) from contacts"))).scalar() == 0
    finally:
        await engine.dispose()


@asynccontextmanager
async def connection_in_no_transaction(settings: Settings) -> AsyncIterator[Any]:
    """An app-role asyncpg connection outside any transaction, as `pooled_driver` gives one."""
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("commit")  # out of SQLAlchemy's implicit BEGIN
            yield (await conn.get_raw_connection()).driver_connection
    finally:
        await engine.dispose()


async def test_the_card_function_sets_its_workspace_for_its_own_statement_only(
        ws: Workspace, other_ws: Workspace, settings: Settings) -> None:
    """`relata_contact_card` (decision 0067), outside a transaction, reads one card of the
    workspace it is given and no other workspace's; the connection keeps no workspace after
    it; and inside a transaction already in another workspace it refuses to switch."""
    mine = (await ws.post("/api/v1/contacts", json={"full_name": "Mine"})).json()["id"]
    theirs = (await other_ws.post("/api/v1/contacts", json={"full_name": "Theirs"})).json()["id"]
    async with connection_in_no_transaction(settings) as raw:
        card = "select full_name from relata_contact_card($1, $2)"
        assert not raw.is_in_transaction()
        assert await raw.fetchval(card, uuid.UUID(ws.id), uuid.UUID(mine)) == "Mine"
        assert await raw.fetchval("select current_setting('app.workspace_id', true)") \
            in (None, "")
        assert await raw.fetchval("select count(*) from contacts") == 0
        # another workspace's id: not visible, as on every route
        assert await raw.fetchrow(card, uuid.UUID(ws.id), uuid.UUID(theirs)) is None
        assert await raw.fetchval(card, uuid.UUID(other_ws.id), uuid.UUID(theirs)) \
            == "Theirs"
        await raw.execute("begin")
        await raw.execute("select set_config('app.workspace_id', $1, true)", ws.id)
        assert await raw.fetchval(card, uuid.UUID(ws.id), uuid.UUID(mine)) == "Mine"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="another workspace"):
            await raw.fetchval(card, uuid.UUID(other_ws.id), uuid.UUID(theirs))
        await raw.execute("rollback")


async def test_the_lookup_function_sets_its_workspace_for_its_own_statement_only(
        ws: Workspace, other_ws: Workspace, settings: Settings) -> None:
    """`relata_contact_by_identity` (decision 0069) holds to what the card function does:
    only the given workspace's identities are found, nothing stays set on the connection,
    and a transaction in another workspace is refused."""
    phone = "+74951234567"
    await ws.post("/api/v1/contacts", json={"full_name": "Mine", "phones": [phone]})
    await other_ws.post("/api/v1/contacts", json={"full_name": "Theirs", "phones": [phone],
                                                   "emails": ["theirs@example.com"]})
    async with connection_in_no_transaction(settings) as raw:
        find = "select full_name from relata_contact_by_identity($1, $2, $3)"
        mine, theirs = uuid.UUID(ws.id), uuid.UUID(other_ws.id)
        assert await raw.fetchval(find, mine, "phone", phone) == "Mine"
        assert await raw.fetchval(find, theirs, "phone", phone) == "Theirs"
        assert await raw.fetchrow(find, mine, "email", "theirs@example.com") is None
        assert await raw.fetchval("select current_setting('app.workspace_id', true)") \
            in (None, "")
        assert await raw.fetchval("select count(*) from contact_identities") == 0
        await raw.execute("begin")
        await raw.execute("select set_config('app.workspace_id', $1, true)", ws.id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="another workspace"):
            await raw.fetchval(find, theirs, "phone", phone)
        await raw.execute("rollback")


async def test_cross_workspace_reference_is_refused_by_the_database(
        ws: Workspace, other_ws: Workspace, app_engine: Any) -> None:
    company = await other_ws.post("/api/v1/companies", json={"name": "Theirs"})
    foreign_company_id = company.json()["id"]
    async with unit_of_work(session_factory(app_engine), uuid.UUID(ws.id)) as session:
        with pytest.raises(Exception) as caught:
            async with session.begin_nested():
                await session.execute(text("""
                    insert into contacts (workspace_id, id, version, created_at, updated_at,
                      created_by, updated_by, full_name, phones, emails, status, kind, tags,
                      custom_fields, search_text, company_id)
                    values (:ws, gen_random_uuid(), 1, now(), now(), 'test', 'test', 'x',
                      '[]', '[]', 'new', 'customer', '{}', '{}', '', :company)"""),
                    {"ws": ws.id, "company": foreign_company_id})
        assert "foreign key" in str(caught.value).lower()


async def test_writing_into_another_workspace_is_refused(ws: Workspace, other_ws: Workspace,
                                                         app_engine: Any) -> None:
    async with unit_of_work(session_factory(app_engine), uuid.UUID(ws.id)) as session:
        with pytest.raises(Exception) as caught:
            async with session.begin_nested():
                await session.execute(text("""
                    insert into companies (workspace_id, id, version, created_at, updated_at,
                      created_by, updated_by, name, phones, emails, kind, tags, custom_fields,
                      search_text) values (:other, gen_random_uuid(), 1, now(), now(), 't',
                      't', 'x', '[]', '[]', 'customer', '{}', '{}', '')"""),
                    {"other": other_ws.id})
        assert "row-level security" in str(caught.value).lower()


async def test_app_role_survives_a_failed_transaction_on_a_pooled_connection(
        ws: Workspace, other_ws: Workspace, settings: Settings) -> None:
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    sessions = session_factory(engine)
    try:
        await other_ws.post("/api/v1/contacts", json={"full_name": "Not yours"})
        with pytest.raises(DBAPIError, match="division by zero"):
            async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
                await session.execute(text("select 1/0"))
        async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
            assert (await session.execute(text("select current_user"))).scalar() == "relata_app"
            names = (await session.execute(text("select full_name from contacts"))).scalars()
            assert "Not yours" not in list(names)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("reset", ["RESET ROLE", "RESET ALL", "DISCARD ALL"])
async def test_no_reset_gives_a_pooled_connection_the_login_back(
        ws: Workspace, other_ws: Workspace, settings: Settings, reset: str) -> None:
    """The role is a startup parameter of each connection: whatever a session resets, the
    next transaction on that connection is still the application role under RLS."""
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    sessions = session_factory(engine)
    try:
        await other_ws.post("/api/v1/contacts", json={"full_name": "Not yours either"})
        async with engine.connect() as conn:
            await conn.exec_driver_sql("commit")
            await conn.exec_driver_sql(reset)
        async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
            assert (await session.execute(text("select current_user"))).scalar() == "relata_app"
            names = (await session.execute(text("select full_name from contacts"))).scalars()
            assert "Not yours either" not in list(names)
    finally:
        await engine.dispose()
