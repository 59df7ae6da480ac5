"""templates messages documents

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from alembic import op
from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TENANT_TABLES = ['templates', 'documents', 'messages']


def install_message_queue_lookup() -> None:
    """The message worker asks which workspaces have messages due through a narrow
    SECURITY DEFINER function (as the relay does for events), instead of opening a
    transaction in every workspace every few seconds."""
    allow_owner_lookup('messages')
    op.execute("""
        CREATE FUNCTION relata_due_message_workspaces(due_before timestamptz)
        RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT DISTINCT workspace_id FROM messages
          WHERE status IN ('queued', 'scheduled', 'sending') AND next_attempt_at <= due_before
            AND deleted_at IS NULL
          ORDER BY workspace_id $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_due_message_workspaces(timestamptz) FROM PUBLIC")
    op.execute('GRANT EXECUTE ON FUNCTION relata_due_message_workspaces(timestamptz) '
               f'TO "{app_role()}"')


def upgrade() -> None:
    op.create_table('templates',
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
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_templates_list', 'templates', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_table('documents',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('template_id', sa.Uuid(), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('html', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('pdf_size', sa.Integer(), nullable=False),
    sa.Column('html_size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'deal_id'], ['deals.workspace_id', 'deals.id'], ),
    sa.ForeignKeyConstraint(['workspace_id', 'template_id'], ['templates.workspace_id', 'templates.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_documents_deal', 'documents', ['workspace_id', 'deal_id', 'created_at', 'id'], unique=False)
    op.create_table('messages',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=True),
    sa.Column('deal_id', sa.Uuid(), nullable=True),
    sa.Column('template_id', sa.Uuid(), nullable=True),
    sa.Column('to', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('document_ids', postgresql.ARRAY(postgresql.UUID()), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('message_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('provider_response', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'contact_id'], ['contacts.workspace_id', 'contacts.id'], ),
    sa.ForeignKeyConstraint(['workspace_id', 'deal_id'], ['deals.workspace_id', 'deals.id'], ),
    sa.ForeignKeyConstraint(['workspace_id', 'template_id'], ['templates.workspace_id', 'templates.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_messages_contact', 'messages', ['workspace_id', 'contact_id', 'created_at'], unique=False)
    op.create_index('ix_messages_deal', 'messages', ['workspace_id', 'deal_id', 'created_at'], unique=False)
    op.create_index('ix_messages_due', 'messages', ['workspace_id', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('queued', 'scheduled', 'sending')"))
    op.create_index('ix_messages_list', 'messages', ['workspace_id', 'created_at', 'id'], unique=False)
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    install_message_queue_lookup()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_due_message_workspaces(timestamptz)")
    op.drop_index('ix_messages_list', table_name='messages')
    op.drop_index('ix_messages_due', table_name='messages', postgresql_where=sa.text("status IN ('queued', 'scheduled', 'sending')"))
    op.drop_index('ix_messages_deal', table_name='messages')
    op.drop_index('ix_messages_contact', table_name='messages')
    op.drop_table('messages')
    op.drop_index('ix_documents_deal', table_name='documents')
    op.drop_table('documents')
    op.drop_index('ix_templates_list', table_name='templates')
    op.drop_table('templates')
