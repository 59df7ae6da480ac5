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


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
