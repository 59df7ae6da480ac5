"""messenger senders by handle: an index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A handle-only sender (a Telegram id) is matched through the last inbound message from
    # that handle on that channel; without this index that read scans the activities.
    op.execute(
        "CREATE INDEX ix_activities_sender_handle ON activities "
        "(workspace_id, channel, (data ->> 'sender_handle'), occurred_at DESC) "
        "WHERE direction = 'in' AND deleted_at IS NULL "
        "AND (data ->> 'sender_handle') IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_activities_sender_handle")
