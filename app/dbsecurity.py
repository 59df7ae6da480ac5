"""SQL that migrations use to make the database itself enforce tenancy.

Every tenant table gets row-level security, ENABLEd and FORCEd, with one policy comparing its
workspace column to `relata_current_workspace()` (the transaction-local `app.workspace_id`).
The application role owns nothing and has no BYPASSRLS. The migration owner may read the
authentication tables through narrow SECURITY DEFINER functions, so a token can be resolved
before its workspace is known without giving the application role that power.
"""

from __future__ import annotations

from alembic import op
from app.config import get_settings


def app_role() -> str:
    return get_settings().app_role


def install_extensions_and_role() -> None:
    for ext in ("pg_trgm", "unaccent", "btree_gin"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    role = app_role()
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$""")
    # Lets a non-superuser migration login `SET ROLE` to the app role too.
    op.execute(f"""
        DO $$ BEGIN
          IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', '{role}', current_user);
          END IF;
        END $$""")
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    op.execute("""
        CREATE OR REPLACE FUNCTION relata_current_workspace() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE AS
        $$ SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid $$""")


def protect_tenant_table(table: str, column: str = "workspace_id") -> None:
    role = app_role()
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'''CREATE POLICY tenant_isolation ON "{table}"
                   USING ({column} = relata_current_workspace())
                   WITH CHECK ({column} = relata_current_workspace())''')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')


def allow_owner_lookup(table: str) -> None:
    """Let the migration owner (and so SECURITY DEFINER functions) read every row."""
    op.execute(f'CREATE POLICY owner_lookup ON "{table}" FOR SELECT TO CURRENT_USER USING (true)')


def grant_sequences() -> None:
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{app_role()}"')
