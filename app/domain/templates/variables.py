"""The variables a template sees: a contact, company, deal, task, owner and the workspace.

`record_variables` is what every renderer uses (template previews, messages, documents, the
rules engine's conditions and title templates), so a template written once works everywhere.
Every value is plain JSON data (strings, numbers, lists, dicts): the sandbox never sees an ORM
object, and a rule can store or compare what it gets.

Records named by the caller must be visible to them (else a 404, as everywhere). Records
reached through a link — the deal's buyer, the task's deal — come with the record that links
them: a document for a deal names its buyer even when the caller could not open the buyer's
card (the deal already shows who it is). Deleted linked records are left out."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal, DealContact
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared import records
from app.domain.shared.principal import Principal
from app.domain.tasks.models import Task
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import User

# Columns that mean nothing in a template (bookkeeping and derived state).
_HIDDEN = {"version", "created_by", "updated_by", "deleted_at", "merged_into_id",
           "score_explanation", "score_adjusted_by", "score_adjusted_at", "rotting_since"}


def _plain(record: Any) -> dict[str, Any]:
    data = {k: v for k, v in records.snapshot(record).items() if k not in _HIDDEN}
    if "emails" in data:  # the first address and number, the ones a message goes to
        data["email"] = data["emails"][0].get("email") if data["emails"] else None
        data["phone"] = data["phones"][0].get("e164") if data.get("phones") else None
    return data


async def _load(session: AsyncSession, principal: Principal, model: type[Any],
                record_id: uuid.UUID | None, *, named: bool) -> Any:
    """A record the caller named (visible, or a 404) or one a link reaches (or None)."""
    if record_id is None:
        return None
    if named:
        return await records.get_visible(session, model, principal, record_id)
    return (await session.execute(select(model).where(
        model.id == record_id, model.deleted_at.is_(None)))).scalar_one_or_none()


async def _deal_variables(session: AsyncSession, deal: Deal) -> tuple[dict[str, Any],
                                                                       uuid.UUID | None]:
    """The deal with its stage, pipeline and line items; and its primary contact's id."""
    data = _plain(deal)
    row = (await session.execute(
        select(Stage.id, Stage.name, Stage.kind, Pipeline.id, Pipeline.name)
        .join(Pipeline, (Pipeline.workspace_id == Stage.workspace_id)
              & (Pipeline.id == Stage.pipeline_id))
        .where(Stage.id == deal.stage_id))).first()
    data["stage"] = {"id": str(row[0]), "name": row[1], "kind": row[2]} if row else None
    data["pipeline"] = {"id": str(row[3]), "name": row[4]} if row else None
    contact_ids = list((await session.execute(
        select(DealContact.contact_id).where(DealContact.deal_id == deal.id)
        .order_by(DealContact.position))).scalars())
    data["contact_ids"] = [str(c) for c in contact_ids]
    return data, (contact_ids[0] if contact_ids else None)


async def record_variables(session: AsyncSession, principal: Principal, *,
                           contact_id: uuid.UUID | None = None,
                           company_id: uuid.UUID | None = None,
                           deal_id: uuid.UUID | None = None,
                           task_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Template variables for the given records and the ones they link to.

    Keys: contact, company, deal (with line_items, amount, currency, stage, pipeline), task,
    owner (the deal's, else the contact's, the company's, the task's assignee) and
    workspace. A key is None when there is no such record."""
    named = {"contact": contact_id is not None, "company": company_id is not None,
             "deal": deal_id is not None}
    task = await _load(session, principal, Task, task_id, named=True)
    if task is not None:
        deal_id = deal_id or task.deal_id
        contact_id = contact_id or task.contact_id
        company_id = company_id or task.company_id
    deal = await _load(session, principal, Deal, deal_id, named=named["deal"])
    deal_vars: dict[str, Any] | None = None
    if deal is not None:
        deal_vars, primary_contact = await _deal_variables(session, deal)
        contact_id = contact_id or primary_contact
        company_id = company_id or deal.company_id
    contact = await _load(session, principal, Contact, contact_id, named=named["contact"])
    if contact is not None and company_id is None:
        company_id = contact.company_id
    company = await _load(session, principal, Company, company_id, named=named["company"])

    owner_id = next((r_owner for r_owner in (
        deal.owner_id if deal else None, contact.owner_id if contact else None,
        company.owner_id if company else None, task.assignee_id if task else None)
        if r_owner is not None), None)
    owner = None
    if owner_id is not None:
        row = (await session.execute(select(User.id, User.full_name, User.email).where(
            User.workspace_id == principal.workspace_id, User.id == owner_id))).first()
        if row is not None:
            owner = {"id": str(row[0]), "full_name": row[1], "email": row[2]}
    workspace = await current_workspace(session, principal)
    return {
        "contact": _plain(contact) if contact is not None else None,
        "company": _plain(company) if company is not None else None,
        "deal": deal_vars,
        "task": _plain(task) if task is not None else None,
        "owner": owner,
        "workspace": {"name": workspace.name, "timezone": workspace.timezone},
    }
