"""forms

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TENANT_TABLES = ['forms', 'form_submissions']


def install_form_lookup() -> None:
    """A public submission knows only the form's key: the workspace is found through a
    narrow SECURITY DEFINER function that answers (workspace, form) for a live form's key
    and nothing else, so the application role itself never reads across workspaces."""
    allow_owner_lookup('forms')
    op.execute("""
        CREATE FUNCTION relata_form_lookup(key text)
        RETURNS TABLE (workspace_id uuid, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT f.workspace_id, f.id FROM forms f
          WHERE f.form_key = key AND f.deleted_at IS NULL $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_form_lookup(text) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION relata_form_lookup(text) TO "{app_role()}"')


def upgrade() -> None:
    op.create_table('forms',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('form_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('pipeline_id', sa.Uuid(), nullable=True),
    sa.Column('stage_id', sa.Uuid(), nullable=True),
    sa.Column('owner_strategy', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_user_id', sa.Uuid(), nullable=True),
    sa.Column('owner_team_id', sa.Uuid(), nullable=True),
    sa.Column('allowed_origins', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('success_message', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('redirect_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('honeypot_field', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('honeypot_count', sa.Integer(), nullable=False),
    sa.Column('submissions_per_minute', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'pipeline_id'], ['pipelines.workspace_id', 'pipelines.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'stage_id'], ['stages.workspace_id', 'stages.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'owner_user_id'], ['users.workspace_id', 'users.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'owner_team_id'], ['teams.workspace_id', 'teams.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'id'),
    sa.UniqueConstraint('workspace_id', 'form_key', name='uq_forms_form_key')
    )
    op.create_index('ix_forms_key', 'forms', ['form_key'], unique=False)
    op.create_index('ix_forms_list', 'forms', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_table('form_submissions',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('form_id', sa.Uuid(), nullable=False),
    sa.Column('client_submission_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('utm', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('referrer', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('page_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('contact_id', sa.Uuid(), nullable=True),
    sa.Column('contact_created', sa.Boolean(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=True),
    sa.Column('inbox_item_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'form_id'], ['forms.workspace_id', 'forms.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'deal_id'], ['deals.workspace_id', 'deals.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'id'),
    sa.UniqueConstraint('workspace_id', 'form_id', 'client_submission_id', name='uq_form_submissions_client_id')
    )
    op.create_index('ix_form_submissions_list', 'form_submissions', ['workspace_id', 'form_id', 'created_at', 'id'], unique=False)
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    install_form_lookup()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_form_lookup(text)")
    op.drop_index('ix_form_submissions_list', table_name='form_submissions')
    op.drop_table('form_submissions')
    op.drop_index('ix_forms_list', table_name='forms')
    op.drop_index('ix_forms_key', table_name='forms')
    op.drop_table('forms')
