"""webhooks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TENANT_TABLES = ['webhook_subscriptions', 'webhook_deliveries', 'webhook_attempts']


def upgrade() -> None:
    op.create_table('webhook_subscriptions',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('events', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('filters', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('previous_secret', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_threshold', sa.Integer(), nullable=False),
    sa.Column('failure_streak', sa.Integer(), nullable=False),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner_user_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_webhook_subscriptions_list', 'webhook_subscriptions', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('retries_from', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'subscription_id'], ['webhook_subscriptions.workspace_id', 'webhook_subscriptions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('uq_webhook_deliveries_event', 'webhook_deliveries', ['workspace_id', 'subscription_id', 'event_id'], unique=True)
    op.create_index('ix_webhook_deliveries_list', 'webhook_deliveries', ['workspace_id', 'subscription_id', 'id'], unique=False)
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['workspace_id', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_table('webhook_attempts',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('request_headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_headers', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('response_body', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'delivery_id'], ['webhook_deliveries.workspace_id', 'webhook_deliveries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['workspace_id', 'delivery_id', 'attempt'], unique=False)
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    # The sender finds workspaces with due deliveries before it knows which one to set.
    allow_owner_lookup('webhook_subscriptions')
    allow_owner_lookup('webhook_deliveries')
    op.execute("""
        CREATE FUNCTION relata_due_webhook_workspaces(due_before timestamptz)
        RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT DISTINCT d.workspace_id FROM webhook_deliveries d
          JOIN webhook_subscriptions s
            ON s.workspace_id = d.workspace_id AND s.id = d.subscription_id
          WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= due_before
            AND s.status = 'active' AND s.deleted_at IS NULL
          ORDER BY d.workspace_id $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_due_webhook_workspaces(timestamptz) FROM PUBLIC")
    op.execute('GRANT EXECUTE ON FUNCTION relata_due_webhook_workspaces(timestamptz) '
               f'TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_due_webhook_workspaces(timestamptz)")
    op.drop_index('ix_webhook_attempts_delivery', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries', postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.drop_index('ix_webhook_deliveries_list', table_name='webhook_deliveries')
    op.drop_index('uq_webhook_deliveries_event', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_subscriptions_list', table_name='webhook_subscriptions')
    op.drop_table('webhook_subscriptions')
