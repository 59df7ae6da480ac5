"""imports exports

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from app.dbsecurity import allow_owner_lookup, app_role, protect_tenant_table

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TENANT_TABLES = ['imports', 'import_records', 'import_rejections']


def upgrade() -> None:
    op.create_table('imports',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('object', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('silent', sa.Boolean(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('file_format', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('encoding', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('delimiter', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('has_header', sa.Boolean(), nullable=False),
    sa.Column('columns', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('mapping', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('row_offset', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_imports_list', 'imports', ['workspace_id', 'created_at', 'id'], unique=False)
    op.create_table('import_records',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('import_id', sa.Uuid(), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'import_id'], ['imports.workspace_id', 'imports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'import_id', 'entity_id')
    )
    op.create_index('ix_import_records_entity', 'import_records', ['workspace_id', 'entity_id'], unique=False)
    op.create_table('import_rejections',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('import_id', sa.Uuid(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('cells', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id', 'import_id'], ['imports.workspace_id', 'imports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'import_id', 'row_number')
    )
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    # The worker finds imports to run (queued, or running with a stale heartbeat: its worker
    # died) across workspaces before it knows which workspace to set.
    allow_owner_lookup('imports')
    op.execute("""
        CREATE FUNCTION relata_import_backlog(stale_after interval)
        RETURNS TABLE (workspace_id uuid, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT i.workspace_id, i.id FROM imports i
          WHERE i.state = 'queued'
             OR (i.state = 'running' AND i.heartbeat_at < now() - stale_after)
          ORDER BY i.created_at $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_import_backlog(interval) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION relata_import_backlog(interval) TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS relata_import_backlog(interval)")
    op.drop_table('import_rejections')
    op.drop_index('ix_import_records_entity', table_name='import_records')
    op.drop_table('import_records')
    op.drop_index('ix_imports_list', table_name='imports')
    op.drop_table('imports')
