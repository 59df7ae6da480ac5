"""a contact's card in one statement: relata_contact_card(workspace, id)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
from alembic import op
from app.dbsecurity import app_role

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Decision 0067: the card a phone or a frontend opens all day, read in one round trip.
    # Called outside any transaction, the statement is its own transaction: the workspace is
    # set for it alone and is gone when it ends. SECURITY INVOKER (the default), so
    # row-level security filters the read as it filters every other one. Inside a
    # transaction already in another workspace it refuses, so it can never move a caller's
    # transaction to a workspace it did not choose.
    op.execute("""
        CREATE FUNCTION relata_contact_card(ws uuid, card uuid) RETURNS SETOF public.contacts
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          IF relata_current_workspace() IS DISTINCT FROM ws
             AND relata_current_workspace() IS NOT NULL THEN
            RAISE EXCEPTION 'this transaction is in another workspace'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          PERFORM set_config('app.workspace_id', ws::text, true);
          RETURN QUERY SELECT * FROM public.contacts c
                       WHERE c.workspace_id = ws AND c.id = card
                         AND c.deleted_at IS NULL;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_contact_card(uuid, uuid) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION relata_contact_card(uuid, uuid) TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION relata_contact_card(uuid, uuid)")
