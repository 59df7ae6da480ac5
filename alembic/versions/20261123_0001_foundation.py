"""foundation

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 15:20:26.601957
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from app.dbsecurity import (
    allow_owner_lookup,
    app_role,
    grant_sequences,
    install_extensions_and_role,
    protect_tenant_table,
)

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_extensions_and_role()
    op.create_table('workspaces',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('default_region', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('api_keys',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_api_keys_id', 'api_keys', ['id'], unique=False)
    op.create_table('custom_field_definitions',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('meta', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id'),
    sa.UniqueConstraint('workspace_id', 'object_type', 'key', name='uq_custom_fields_key')
    )
    op.create_table('events',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('txid', sa.BigInteger(), server_default=sa.text('(pg_current_xact_id())::text::bigint'), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('changed', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_events_commit_order', 'events', ['workspace_id', 'txid', 'seq'], unique=False)
    op.create_index('ix_events_entity', 'events', ['workspace_id', 'entity_id', 'seq'], unique=False)
    op.create_table('users',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id'),
    sa.UniqueConstraint('workspace_id', 'email', name='uq_users_workspace_email')
    )
    op.create_index('ix_users_email', 'users', ['email'], unique=False)
    op.create_table('companies',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('phones', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('emails', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('search_text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'owner_id'], ['users.workspace_id', 'users.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_companies_list', 'companies', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_companies_search', 'companies', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.create_index('uq_companies_external_id', 'companies', ['workspace_id', 'external_id'], unique=True, postgresql_where=sa.text('external_id IS NOT NULL'))
    op.create_table('refresh_tokens',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'user_id'], ['users.workspace_id', 'users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_refresh_tokens_id', 'refresh_tokens', ['id'], unique=False)
    op.create_table('teams',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('head_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'head_id'], ['users.workspace_id', 'users.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id'),
    sa.UniqueConstraint('workspace_id', 'name', name='uq_teams_workspace_name')
    )
    op.create_table('contacts',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('middle_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('phones', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('emails', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('company_id', sa.Uuid(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('utm', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('search_text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('merged_into_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'company_id'], ['companies.workspace_id', 'companies.id'], ),
    sa.ForeignKeyConstraint(['workspace_id', 'owner_id'], ['users.workspace_id', 'users.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_contacts_company', 'contacts', ['workspace_id', 'company_id'], unique=False)
    op.create_index('ix_contacts_list', 'contacts', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_contacts_owner', 'contacts', ['workspace_id', 'owner_id'], unique=False)
    op.create_index('ix_contacts_search', 'contacts', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.create_index('ix_contacts_tags', 'contacts', ['tags'], unique=False, postgresql_using='gin')
    op.create_index('uq_contacts_external_id', 'contacts', ['workspace_id', 'external_id'], unique=True, postgresql_where=sa.text('external_id IS NOT NULL'))
    op.create_table('team_members',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'team_id'], ['teams.workspace_id', 'teams.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'user_id'], ['users.workspace_id', 'users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'team_id', 'user_id')
    )
    op.create_table('contact_identities',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'kind', 'value')
    )
    op.create_index('ix_contact_identities_contact', 'contact_identities', ['workspace_id', 'contact_id'], unique=False)

    protect_tenant_table("workspaces", column="id")
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    for table in ("workspaces", "users", "api_keys", "refresh_tokens"):
        allow_owner_lookup(table)
    grant_sequences()
    install_auth_functions()


TENANT_TABLES = ("users", "teams", "team_members", "api_keys", "refresh_tokens", "companies",
                 "contacts", "contact_identities", "custom_field_definitions", "events")


def install_auth_functions() -> None:
    """Token resolution before the workspace is known: narrow, read-only, definer-rights."""
    role = app_role()
    op.execute("""
        CREATE FUNCTION relata_api_key_lookup(key_id uuid)
        RETURNS TABLE (workspace_id uuid, secret_hash text, scope text, revoked boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT k.workspace_id, k.secret_hash, k.scope, k.revoked_at IS NOT NULL
          FROM api_keys k WHERE k.id = key_id $$""")
    op.execute("""
        CREATE FUNCTION relata_user_login_lookup(login_email text)
        RETURNS TABLE (workspace_id uuid, user_id uuid, password_hash text, is_active boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT u.workspace_id, u.id, u.password_hash, u.is_active
          FROM users u WHERE u.email = lower(login_email) $$""")
    op.execute("""
        CREATE FUNCTION relata_refresh_token_lookup(token_id uuid)
        RETURNS TABLE (workspace_id uuid, user_id uuid, secret_hash text,
                       expires_at timestamptz, revoked boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT t.workspace_id, t.user_id, t.secret_hash, t.expires_at, t.revoked_at IS NOT NULL
          FROM refresh_tokens t WHERE t.id = token_id $$""")
    op.execute("""
        CREATE FUNCTION relata_workspace_ids() RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT id FROM workspaces ORDER BY id $$""")
    for fn in AUTH_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {fn} TO "{role}"')


AUTH_FUNCTIONS = ("relata_api_key_lookup(uuid)", "relata_user_login_lookup(text)",
                  "relata_refresh_token_lookup(uuid)", "relata_workspace_ids()")


def downgrade() -> None:
    for fn in AUTH_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_index('ix_contact_identities_contact', table_name='contact_identities')
    op.drop_table('contact_identities')
    op.drop_table('team_members')
    op.drop_index('uq_contacts_external_id', table_name='contacts', postgresql_where=sa.text('external_id IS NOT NULL'))
    op.drop_index('ix_contacts_tags', table_name='contacts', postgresql_using='gin')
    op.drop_index('ix_contacts_search', table_name='contacts', postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.drop_index('ix_contacts_owner', table_name='contacts')
    op.drop_index('ix_contacts_list', table_name='contacts')
    op.drop_index('ix_contacts_company', table_name='contacts')
    op.drop_table('contacts')
    op.drop_table('teams')
    op.drop_index('ix_refresh_tokens_id', table_name='refresh_tokens')
    op.drop_table('refresh_tokens')
    op.drop_index('uq_companies_external_id', table_name='companies', postgresql_where=sa.text('external_id IS NOT NULL'))
    op.drop_index('ix_companies_search', table_name='companies', postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.drop_index('ix_companies_list', table_name='companies')
    op.drop_table('companies')
    op.drop_index('ix_users_email', table_name='users')
    op.drop_table('users')
    op.drop_index('ix_events_entity', table_name='events')
    op.drop_index('ix_events_commit_order', table_name='events')
    op.drop_table('events')
    op.drop_table('custom_field_definitions')
    op.drop_index('ix_api_keys_id', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('workspaces')
