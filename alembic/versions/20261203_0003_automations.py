"""automations: pipeline rules, runs, scheduled actions; the event relay

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from alembic import op
from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TENANT_TABLES = ['rules', 'rule_runs', 'scheduled_actions', 'round_robin_turns']


def install_relay_support() -> None:
    """A commit that wrote events wakes the relay (LISTEN relata_events); the relay asks
    which workspaces have unhandled events through a narrow SECURITY DEFINER function, so
    the application role itself never reads across workspaces."""
    op.execute("""
        CREATE FUNCTION relata_notify_events() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('relata_events', ''); RETURN NULL; END $$""")
    op.execute("""
        CREATE TRIGGER events_notify AFTER INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION relata_notify_events()""")
    allow_owner_lookup('events')
    op.execute("""
        CREATE FUNCTION relata_event_backlog() RETURNS TABLE (workspace_id uuid, pending bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT workspace_id, count(*) FROM events WHERE handled_at IS NULL
          GROUP BY workspace_id ORDER BY workspace_id $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_event_backlog() FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION relata_event_backlog() TO "{app_role()}"')


def upgrade() -> None:
    op.create_table('round_robin_turns',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('turn', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'key')
    )
    op.create_table('rules',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('trigger_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('trigger', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('conditions', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('actions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_rules_list', 'rules', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_rules_trigger', 'rules', ['workspace_id', 'trigger_type'], unique=False, postgresql_where=sa.text('enabled AND deleted_at IS NULL'))
    op.create_table('rule_runs',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('trigger_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('explanation', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('actions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('cause_run_id', sa.Uuid(), nullable=True),
    sa.Column('chain_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'rule_id'], ['rules.workspace_id', 'rules.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_rule_runs_chain', 'rule_runs', ['workspace_id', 'chain_key'], unique=False)
    op.create_index('ix_rule_runs_retry', 'rule_runs', ['workspace_id', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'retrying'"))
    op.create_index('ix_rule_runs_rule', 'rule_runs', ['workspace_id', 'rule_id', 'id'], unique=False)
    op.create_index('uq_rule_runs_trigger', 'rule_runs', ['workspace_id', 'rule_id', 'trigger_key'], unique=True)
    op.create_table('scheduled_actions',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id', 'run_id'], ['rule_runs.workspace_id', 'rule_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_scheduled_actions_due', 'scheduled_actions', ['workspace_id', 'due_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_scheduled_actions_run', 'scheduled_actions', ['workspace_id', 'run_id'], unique=False)
    op.add_column('events', sa.Column('cause_run_id', sa.Uuid(), nullable=True))
    op.add_column('events', sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('events', sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True))
    # Events written before the relay existed are history, not work: rules never saw them.
    op.execute("UPDATE events SET dispatched_at = occurred_at, handled_at = occurred_at")
    op.create_index('ix_events_unhandled', 'events', ['workspace_id', 'txid', 'seq'], unique=False, postgresql_where=sa.text('handled_at IS NULL'))
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    install_relay_support()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_event_backlog()")
    op.execute("DROP POLICY IF EXISTS owner_lookup ON events")
    op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS relata_notify_events()")
    op.drop_index('ix_events_unhandled', table_name='events', postgresql_where=sa.text('handled_at IS NULL'))
    op.drop_column('events', 'handled_at')
    op.drop_column('events', 'dispatched_at')
    op.drop_column('events', 'cause_run_id')
    op.drop_index('ix_scheduled_actions_run', table_name='scheduled_actions')
    op.drop_index('ix_scheduled_actions_due', table_name='scheduled_actions', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('scheduled_actions')
    op.drop_index('uq_rule_runs_trigger', table_name='rule_runs')
    op.drop_index('ix_rule_runs_rule', table_name='rule_runs')
    op.drop_index('ix_rule_runs_chain', table_name='rule_runs')
    op.drop_index('ix_rule_runs_retry', table_name='rule_runs', postgresql_where=sa.text("status = 'retrying'"))
    op.drop_table('rule_runs')
    op.drop_index('ix_rules_trigger', table_name='rules', postgresql_where=sa.text('enabled AND deleted_at IS NULL'))
    op.drop_index('ix_rules_list', table_name='rules')
    op.drop_table('rules')
    op.drop_table('round_robin_turns')
