"""inbox telephony email

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TENANT_TABLES = ['inbox_items', 'inbound_messages', 'integrations', 'email_messages']


def upgrade() -> None:
    op.create_table('inbox_items',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.Column('contact_created', sa.Boolean(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('decline_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_seconds', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id']),
    sa.ForeignKeyConstraint(['workspace_id', 'deal_id'], ['deals.workspace_id', 'deals.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('uq_inbox_items_source', 'inbox_items', ['workspace_id', 'channel', 'source_id'], unique=True)
    op.create_index('ix_inbox_items_list', 'inbox_items', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_inbox_items_status', 'inbox_items', ['workspace_id', 'status', 'created_at', 'id'], unique=False)
    op.create_index('ix_inbox_items_unanswered', 'inbox_items', ['workspace_id', 'contact_id'], unique=False, postgresql_where=sa.text('first_response_at IS NULL'))
    op.create_table('inbound_messages',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_seconds', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'activity_id'], ['activities.workspace_id', 'activities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'activity_id')
    )
    op.create_index('ix_inbound_messages_unanswered', 'inbound_messages', ['workspace_id', 'contact_id'], unique=False, postgresql_where=sa.text('first_response_at IS NULL'))
    op.create_index('ix_inbound_messages_received', 'inbound_messages', ['workspace_id', 'received_at'], unique=False)
    op.create_table('integrations',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('previous_secret', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'team_id'], ['teams.workspace_id', 'teams.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_integrations_list', 'integrations', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_table('email_messages',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('thread_id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.Column('in_reply_to', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'activity_id'], ['activities.workspace_id', 'activities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id']),
    sa.PrimaryKeyConstraint('workspace_id', 'message_id')
    )
    op.create_index('ix_email_messages_thread', 'email_messages', ['workspace_id', 'thread_id', 'received_at'], unique=False)
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    # A signed inbound request names its integration before its workspace is known: this
    # answers only which workspace and kind a live integration id belongs to (the secret is
    # then read under that workspace's row security).
    allow_owner_lookup('integrations')
    op.execute("""
        CREATE FUNCTION relata_integration_workspace(integration_id uuid)
        RETURNS TABLE (workspace_id uuid, kind text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT i.workspace_id, i.kind FROM integrations i
          WHERE i.id = integration_id AND i.deleted_at IS NULL AND i.enabled $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_integration_workspace(uuid) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION relata_integration_workspace(uuid) TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_integration_workspace(uuid)")
    op.drop_table('email_messages')
    op.drop_table('integrations')
    op.drop_table('inbound_messages')
    op.drop_table('inbox_items')
