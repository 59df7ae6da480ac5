"""a contact found by a phone or an email in one statement: relata_contact_by_identity

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
from alembic import op
from app.dbsecurity import app_role

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Decision 0069: the lookup a phone's screen or an import script calls all day, in one
    # round trip, the way relata_contact_card reads a card (decision 0067, migration 0010):
    # the workspace is set for this statement's own transaction, SECURITY INVOKER so that
    # row-level security filters the read, and a transaction already in another workspace
    # is refused.
    op.execute("""
        CREATE FUNCTION relata_contact_by_identity(ws uuid, identity_kind text,
                                                   identity_value text)
        RETURNS SETOF public.contacts
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          IF relata_current_workspace() IS DISTINCT FROM ws
             AND relata_current_workspace() IS NOT NULL THEN
            RAISE EXCEPTION 'this transaction is in another workspace'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          PERFORM set_config('app.workspace_id', ws::text, true);
          RETURN QUERY SELECT c.* FROM public.contact_identities i
                       JOIN public.contacts c
                         ON c.workspace_id = i.workspace_id AND c.id = i.contact_id
                       WHERE i.workspace_id = ws AND i.kind = identity_kind
                         AND i.value = identity_value AND c.deleted_at IS NULL;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION relata_contact_by_identity(uuid, text, text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION relata_contact_by_identity(uuid, text, text) "
               f'TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION relata_contact_by_identity(uuid, text, text)")
