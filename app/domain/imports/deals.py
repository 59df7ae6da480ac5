"""Importing deals: pipeline and stage by name, owner by email, the contact by phone or
email (found, or created as a card), the company by name.

Deals go through the deal service one by one, each in a savepoint, like companies: a deal
touches its stage history, score and contacts, and files of deals are thousands of rows, not
millions. A row that names an unknown pipeline, stage or owner is rejected with the names
that exist, so the rejected-rows file says how to fix it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.contacts import service as contacts
from app.domain.contacts.schemas import ContactCreate
from app.domain.deals import service as deals
from app.domain.deals.models import Deal
from app.domain.deals.schemas import DealCreate
from app.domain.imports.models import ImportJob, ImportRecord
from app.domain.imports.rows import RowError, RowPlan, _date, given_fields
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared.errors import DomainError
from app.domain.shared.normalize import EmailError, PhoneError, normalize_email, normalize_phone
from app.domain.shared.principal import Principal
from app.domain.workspaces.models import User

_AMOUNT_JUNK = re.compile(r"[\s\u00a0\u202f'’]")


@dataclass
class Directory:
    """The workspace's pipelines, stages and users, looked up by name or email."""

    pipelines: dict[str, Pipeline]
    default_pipeline: Pipeline | None
    stages: dict[uuid.UUID, dict[str, Stage]]
    first_stage: dict[uuid.UUID, Stage]
    users: dict[str, uuid.UUID]
    contacts_made: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)


async def load_directory(session: AsyncSession) -> Directory:
    pipelines = list((await session.execute(select(Pipeline).where(
        Pipeline.deleted_at.is_(None)).order_by(Pipeline.position))).scalars())
    stages = list((await session.execute(select(Stage).where(
        Stage.deleted_at.is_(None), Stage.archived_at.is_(None))
        .order_by(Stage.pipeline_id, Stage.position))).scalars())
    by_pipeline: dict[uuid.UUID, dict[str, Stage]] = {}
    first: dict[uuid.UUID, Stage] = {}
    for stage in stages:
        by_pipeline.setdefault(stage.pipeline_id, {})[stage.name.casefold()] = stage
        if stage.kind == "open":
            first.setdefault(stage.pipeline_id, stage)
    users = {email.casefold(): user_id for email, user_id in await session.execute(
        select(User.email, User.id).where(User.is_active))}
    return Directory(pipelines={p.name.casefold(): p for p in pipelines},
                     default_pipeline=next((p for p in pipelines if p.is_default),
                                           pipelines[0] if pipelines else None),
                     stages=by_pipeline, first_stage=first, users=users)


def parse_amount(text: str) -> str:
    """'1 250,50' / '1,250.50' / '1250.5' -> '1250.50'-style decimal strings."""
    value = _AMOUNT_JUNK.sub("", text)
    if "," in value and "." in value:
        value = value.replace(",", "")
    elif "," in value:
        value = value.replace(",", ".")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise RowError(f"amount {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise RowError(f"amount {text!r} must be zero or more")
    return str(amount)


def wanted_contact(plan: RowPlan, given: dict[str, Any]) -> dict[str, Any] | None:
    """The row's contact — its name, phones and emails, normalized — or None."""
    region = (plan.transform("phone").region or plan.region).upper()
    phones, emails = [], []
    for raw in given.get("phones", []):
        try:
            phones.append(normalize_phone(raw, region))
        except PhoneError as exc:
            raise RowError(f"phone {raw!r}: {exc}") from None
    for raw in given.get("emails", []):
        try:
            emails.append(normalize_email(raw))
        except EmailError as exc:
            raise RowError(f"email {raw!r}: {exc}") from None
    if phones or emails or given.get("contact"):
        return {"full_name": given.get("contact"), "phones": phones, "emails": emails}
    return None


def user_for(directory: Directory, email: str | None, target: str) -> uuid.UUID | None:
    if not email:
        return None
    user = directory.users.get(email.casefold())
    if user is None:
        raise RowError(f"{target} {email!r} is not an active user's email")
    return user


@dataclass
class DealRow:
    body: dict[str, Any]  # DealCreate fields, ids resolved
    contact: dict[str, Any] | None  # a card to find or create: full_name, phones, emails
    company: str | None


def prepare_deal(plan: RowPlan, cells: list[Any], directory: Directory) -> DealRow:
    given = given_fields(plan, cells)
    body: dict[str, Any] = {k: given[k] for k in ("title", "currency", "source", "tags",
                                                  "external_id", "lost_reason",
                                                  "custom_fields") if k in given}
    if "amount" in given:
        body["amount"] = parse_amount(given["amount"])
    if "expected_close_date" in given:
        try:
            body["expected_close_date"] = _date(given["expected_close_date"][:10],
                                                plan.transform("expected_close_date"))
        except RowError:
            raise RowError(f"expected_close_date {given['expected_close_date']!r} is not a "
                           "date (give transforms.expected_close_date.date_format)") from None
    pipeline = directory.default_pipeline
    if given.get("pipeline"):
        pipeline = directory.pipelines.get(given["pipeline"].casefold())
        if pipeline is None:
            raise RowError(f"no pipeline {given['pipeline']!r}; the pipelines are "
                           + ", ".join(p.name for p in directory.pipelines.values()))
    if pipeline is None:
        raise RowError("the workspace has no pipeline")
    stage = directory.first_stage.get(pipeline.id)
    if given.get("stage"):
        stage = directory.stages.get(pipeline.id, {}).get(given["stage"].casefold())
        if stage is None:
            raise RowError(f"no stage {given['stage']!r} in {pipeline.name!r}; its stages are "
                           + ", ".join(s.name for s in directory.stages.get(pipeline.id,
                                                                            {}).values()))
    if stage is None:
        raise RowError(f"pipeline {pipeline.name!r} has no open stage")
    body["pipeline_id"], body["stage_id"] = pipeline.id, stage.id
    if given.get("owner"):
        body["owner_id"] = user_for(directory, given["owner"], "owner")
    contact = wanted_contact(plan, given)
    company = given.get("company")
    if not body.get("title"):
        body["title"] = (given.get("contact") or company
                         or (contact and (contact["phones"] or contact["emails"] or [None])[0])
                         or "")
        if not body["title"]:
            raise RowError("the row has no title, contact or company")
    try:
        DealCreate.model_validate({k: v for k, v in body.items()})
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "row"
        raise RowError(f"{where}: {first['msg']}") from None
    return DealRow(body=body, contact=contact, company=company)


async def contact_for(session: AsyncSession, principal: Principal, job: ImportJob,
                       wanted: dict[str, Any], directory: Directory) -> uuid.UUID:
    """The card with one of the phones or emails, else a new card (recorded for undo)."""
    keys = {("phone", p) for p in wanted["phones"]} | {("email", e) for e in wanted["emails"]}
    for key in sorted(keys):
        if key in directory.contacts_made:
            return directory.contacts_made[key]
    found = await contacts.find_by_identities(session, keys)
    if found:
        return next(iter(sorted(found.items())))[1]
    card = await contacts.create_contact(session, principal, ContactCreate(
        full_name=wanted["full_name"], phones=wanted["phones"] or None,
        emails=wanted["emails"] or None))
    await session.execute(insert(ImportRecord).values(
        workspace_id=job.workspace_id, import_id=job.id, entity_id=card.id,
        entity_type="contact", action="created"))
    directory.contacts_made.update(dict.fromkeys(keys, card.id))
    return card.id


async def write_deals(session: AsyncSession, principal: Principal, job: ImportJob,
                      plan: RowPlan, batch: list[tuple[int, list[Any]]], outcome: Any,
                      company_ids_for: Any) -> None:
    """Writes one batch into `outcome` (the runner's BatchOutcome); `company_ids_for(names)`
    gives the company id of each name, creating missing ones."""
    directory = await load_directory(session)
    dedupe_on: list[str] = job.options.get("dedupe_on", ["external_id"])
    strategy: str = job.options.get("on_duplicate", "skip")
    for number, cells in batch:
        try:
            row = prepare_deal(plan, cells, directory)
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        existing = None
        if "external_id" in dedupe_on and row.body.get("external_id") and strategy != "create":
            existing = (await session.execute(select(Deal).where(
                Deal.external_id == row.body["external_id"], Deal.deleted_at.is_(None)))
            ).scalar_one_or_none()
        if existing is not None and strategy == "skip":
            outcome.skipped += 1
            continue
        if job.dry_run:
            if existing is None:
                outcome.created += 1
            else:
                outcome.updated += 1
            continue
        try:
            async with session.begin_nested():
                body = dict(row.body)
                if row.company:
                    body["company_id"] = (await company_ids_for({row.company}))[
                        row.company.casefold()]
                if row.contact is not None:
                    contact_id = await contact_for(session, principal, job, row.contact,
                                                    directory)
                    body["contact_ids"] = [contact_id]
                data = DealCreate.model_validate(body)
                if existing is None:
                    deal = await deals.create_deal(session, principal, data)
                    action = "created"
                else:
                    await deals.apply_upsert(session, principal, existing, data)
                    deal, action = existing, "updated"
                await session.execute(insert(ImportRecord).values(
                    workspace_id=job.workspace_id, import_id=job.id, entity_id=deal.id,
                    entity_type="deal", action=action))
        except DomainError as exc:
            outcome.reject(number, exc.errors[0]["msg"] if exc.errors else exc.detail, cells)
            continue
        if action == "created":
            outcome.created += 1
        else:
            outcome.updated += 1
