"""A plain submission below the ORM (docs/decisions/0065-a-plain-form-submission-below-the-orm.md).

What a website form does all day is a new visitor's first request: a card that does not
exist yet, a deal in the form's stage, the inbox item and the events. Such a submission is
read in two statements and written in one, on the driver connection of the request's
transaction (`deps.driver_transaction`, the form's workspace set):

- the first read brings the live form, its workspace, the form's stage (live or not) and
  whether the form's fixed owner exists; the honeypot and the values are checked with the
  same code as the ORM path (`submissions.clean`);
- the second asks whether a card already holds the phone or email, and whether the
  submission id was used before;
- the card, the deal, the inbox item and the submission are built as model instances by the
  same code as the ORM path (`contacts.apply_own_fields`, `deals.apply_own_fields`,
  `transitions`, `scoring.rescore_with`, `inbox.new_item`, `submissions.card_patch` …), and
  written with their events in one data-modifying CTE.

Everything else returns None before anything is written and takes the ORM path, which does
and reports it: a card that exists (it is enriched, not created), a resubmission, custom-field
or amount mappings, a round-robin owner, a stage that takes no deals, a form gone or off.
A concurrent writer that takes the phone, email or submission id first makes the write fail:
`LostRace`, the transaction rolls back, and the ORM path matches or replays."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import DriverInsert
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact, ContactIdentity
from app.domain.contacts.schemas import ContactCreate
from app.domain.deals import scoring, scoring_engine, transitions
from app.domain.deals import service as deals
from app.domain.deals.models import Deal, DealContact, StageInterval
from app.domain.deals.moves import StageRef
from app.domain.deals.schemas import DealCreate
from app.domain.forms import submissions
from app.domain.forms.models import Form, FormSubmission
from app.domain.forms.submissions import FormView, Sender
from app.domain.inbox import service as inbox
from app.domain.inbox.models import InboxItem
from app.domain.outbox.service import EVENT_INSERT, event_values
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal
from app.domain.workspaces.models import Workspace


class LostRace(Exception):
    """A concurrent writer took the card's phone or email, or the submission id, between
    the read and the write: the transaction must roll back and the ORM path decide."""


@dataclass(frozen=True)
class Accepted:
    form: Form
    submission_id: uuid.UUID
    honeypot: bool = False


_FORM = [c.name for c in Form.__table__.columns]
_WORKSPACE = [c.name for c in Workspace.__table__.columns]

_READ = f"""
SELECT {", ".join(f"f.{c} AS f_{c}" for c in _FORM)},
  {", ".join(f"w.{c} AS w_{c}" for c in _WORKSPACE)},
  s.pipeline_id AS s_pipeline_id, s.name AS s_name, s.kind AS s_kind,
  s.probability AS s_probability,
  (s.id IS NOT NULL AND s.archived_at IS NULL AND s.deleted_at IS NULL
   AND sp.deleted_at IS NULL) AS s_live,
  (f.owner_user_id IS NULL OR EXISTS (
     SELECT 1 FROM users u WHERE u.workspace_id = f.workspace_id AND u.id = f.owner_user_id))
   AS owner_ok
FROM forms f
JOIN workspaces w ON w.id = f.workspace_id
LEFT JOIN stages s ON s.workspace_id = f.workspace_id AND s.id = f.stage_id
LEFT JOIN pipelines sp ON sp.workspace_id = s.workspace_id AND sp.id = s.pipeline_id
WHERE f.workspace_id = $1 AND f.id = $2 AND f.deleted_at IS NULL
"""

# Whether the lead's phone or email is held, or its submission id used: either way the ORM
# path takes it.
_TAKEN = """
SELECT EXISTS (SELECT 1 FROM contact_identities i
               JOIN unnest($2::text[], $3::text[]) AS g(kind, value)
                 ON i.kind = g.kind AND i.value = g.value
               WHERE i.workspace_id = $1)
    OR ($5::text IS NOT NULL AND EXISTS (
         SELECT 1 FROM form_submissions s
         WHERE s.workspace_id = $1 AND s.form_id = $4 AND s.client_submission_id = $5))
"""

_HONEYPOT = "UPDATE forms SET honeypot_count = honeypot_count + 1 WHERE workspace_id = $1 " \
            "AND id = $2"

_CONTACTS = DriverInsert(Contact)
_DEALS = DriverInsert(Deal)
_LINKS = DriverInsert(DealContact)
_INTERVALS = DriverInsert(StageInterval)
_ITEMS = DriverInsert(InboxItem)
_SUBMISSIONS = DriverInsert(FormSubmission)
_IDENTITY = ContactIdentity.__tablename__


def _write_sql(with_deal: bool) -> str:
    """$1 workspace, $2 contact id, $3 identity kinds, $4 identity values; then the rows."""
    parts, n = [], 5
    for name, insert in (("card", _CONTACTS), *((("deal", _DEALS), ("link", _LINKS),
                                                 ("stay", _INTERVALS)) if with_deal else ()),
                         ("item", _ITEMS), ("submission", _SUBMISSIONS)):
        parts.append(f"{name} AS ({insert.sql(n)})")
        n += len(insert.columns)
    parts.append(f"identities AS (INSERT INTO {_IDENTITY} (workspace_id, kind, value, "
                 "contact_id) SELECT $1::uuid, kind, value, $2::uuid "
                 "FROM unnest($3::text[], $4::text[]) AS given(kind, value))")
    events = 4 if with_deal else 3
    return f"WITH {', '.join(parts)}\n{EVENT_INSERT.sql(n, events)}"


_WRITE = {True: _write_sql(True), False: _write_sql(False)}


def _plain(form: Form, lead: submissions.Lead, row: asyncpg.Record) -> bool:
    """A submission this module writes (see the module's docstring)."""
    if lead.has_custom_values or "deal.amount" in lead.mapped or not row["owner_ok"]:
        return False
    if form.owner_strategy not in ("none", "user"):
        return False
    if form.stage_id is None:
        return True
    return bool(row["s_live"]) and row["s_kind"] == "open" \
        and row["s_pipeline_id"] == (form.pipeline_id or row["s_pipeline_id"])


async def submit_on(conn: asyncpg.Connection, view: FormView, payload: dict[str, Any],
                    sender: Sender) -> Accepted | None:
    """The submission written in the caller's transaction on `conn` (its workspace set), or
    None, with nothing written, when the ORM path must take it. 4xx errors for the values
    are raised as the ORM path raises them; `LostRace` when the write lost a race."""
    row = await conn.fetchrow(_READ, view.workspace_id, view.id)
    if row is None or not row["f_enabled"]:
        return None
    form = records.transient(Form, {c: row[f"f_{c}"] for c in _FORM})
    if submissions.honeypot_filled(form, payload):
        await conn.execute(_HONEYPOT, form.workspace_id, form.id)
        return Accepted(form=form, submission_id=new_id(), honeypot=True)
    workspace = records.transient(Workspace, {c: row[f"w_{c}"] for c in _WORKSPACE})
    cleaned = submissions.clean(form, payload, region=workspace.default_region)
    lead = submissions.Lead.of(form, cleaned)
    if not _plain(form, lead, row):
        return None
    principal = submissions.form_principal(form)
    assert not principal.fills_required_fields  # so a card or deal takes no custom values
    try:
        e164, address = inbox.identity_keys(workspace.default_region, lead.phone, lead.email)
    except ValidationError:  # the ORM path reports it, named by the form's field
        return None
    if e164 is None and address is None:
        return None
    wanted = [k for k in (("phone", e164), ("email", address)) if k[1]]
    submission = submissions.submission_row(form, cleaned, sender)
    if await conn.fetchval(_TAKEN, form.workspace_id, [k for k, _ in wanted],
                           [v for _, v in wanted], form.id, submission.client_submission_id):
        return None
    owner_id = form.owner_user_id if form.owner_strategy == "user" else None

    contact = _new_card(form, workspace, principal, lead, cleaned, e164, address, owner_id)
    events = [event_values(principal, type="contact.created", entity_type=contacts.ENTITY,
                           entity_id=contact.id, after=records.snapshot(contact))]
    stage_ok = form.stage_id is not None
    deal: Deal | None = None
    deal_rows: list[list[Any]] = []
    if stage_ok:
        deal, deal_rows = _new_deal(form, workspace, principal, lead, contact, owner_id, row)
        events.append(event_values(principal, type="deal.created",
                                   entity_type=transitions.ENTITY, entity_id=deal.id,
                                   after=transitions.snapshot(deal, [contact.id])))

    deal_id = deal.id if deal else None
    lead_data = submissions.lead_data(form, cleaned, submission, stage_ok=stage_ok)
    item = inbox.new_item(principal, channel="form", source_id=str(submission.id),
                          contact_id=contact.id, data=lead_data, deal_id=deal_id,
                          accepted=deal_id is not None, contact_created=True)
    events.append(event_values(principal, type="inbox.item_received", entity_type=inbox.ENTITY,
                               entity_id=item.id, after=records.snapshot(item)))
    events.append(event_values(
        principal, type="form.submitted", entity_type="deal" if deal_id else "contact",
        entity_id=deal_id or contact.id,
        after=submissions.submitted_after(lead_data, submission, contact.id, True, deal_id,
                                          item.id)))
    submission.contact_id, submission.contact_created = contact.id, True
    submission.deal_id, submission.inbox_item_id = deal_id, item.id
    try:
        await conn.execute(
            _WRITE[deal is not None], form.workspace_id, contact.id, [k for k, _ in wanted],
            [v for _, v in wanted], *_CONTACTS.params(contact),
            *(p for params in deal_rows for p in params), *_ITEMS.params(item),
            *_SUBMISSIONS.params(submission),
            *(p for event in events for p in EVENT_INSERT.params(event)))
    except asyncpg.UniqueViolationError as exc:
        raise LostRace from exc
    return Accepted(form=form, submission_id=submission.id)


# The card and the deal are worked out as drafts (decision 0066), made records once complete,
# by the code of the ORM path: `contacts.create_contact` and `deals.create_deal` less what
# they read (the workspace is read here; a plain lead has no custom values, its owner is
# checked by the read).

def _new_card(form: Form, workspace: Workspace, principal: Principal, lead: submissions.Lead,
              cleaned: submissions.Cleaned, e164: str | None, address: str | None,
              owner_id: uuid.UUID | None) -> Contact:
    draft = records.draft(Contact, workspace_id=form.workspace_id, created_by=principal.actor,
                          updated_by=principal.actor)
    card = ContactCreate.model_validate(inbox.lead_card(
        e164, address, lead.name, form.source, submissions.card_patch(None, lead, cleaned,
                                                                      owner_id)))
    contacts.apply_own_fields(draft, card.model_dump(exclude_unset=True), card,  # type: ignore[arg-type]
                              workspace, principal, creating=True)
    draft.custom_fields = {}
    contacts.refresh_search_text(draft)  # type: ignore[arg-type]
    return records.transient(Contact, draft)


def _new_deal(form: Form, workspace: Workspace, principal: Principal, lead: submissions.Lead,
              contact: Contact, owner_id: uuid.UUID | None, row: asyncpg.Record
              ) -> tuple[Deal, list[list[Any]]]:
    """The deal in the form's stage, and the parameters of its row, its contact link and its
    first stage interval."""
    now = clock.now()
    stage = StageRef(id=form.stage_id, pipeline_id=row["s_pipeline_id"],  # type: ignore[arg-type]
                     name=row["s_name"], kind=row["s_kind"], probability=row["s_probability"])
    draft = records.draft(Deal, workspace_id=form.workspace_id, created_by=principal.actor,
                          updated_by=principal.actor, created_at=now, updated_at=now,
                          custom_fields={}, status="open")
    data = DealCreate.model_validate(submissions.deal_data(form, contact, lead, owner_id))
    deals.apply_own_fields(draft, data.model_dump(exclude_unset=True), data,  # type: ignore[arg-type]
                           workspace, principal, creating=True)
    deal = records.transient(Deal, draft)
    transitions.enter(deal, stage, None, now)
    config = scoring_engine.config_from_dict(workspace.settings.get(scoring.SETTINGS_KEY))
    scoring.rescore_with(config, deal, stage, contact if config.uses("contact") else None, None)
    return deal, [_DEALS.params(deal), _LINKS.params({
        "workspace_id": form.workspace_id, "deal_id": deal.id, "contact_id": contact.id,
        "position": 0}), _INTERVALS.params(transitions.interval_values(
            principal, deal, stage, now, None))]
