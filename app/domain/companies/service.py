"""Companies: create, read, list, update, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate, CompanyFields, CompanyRead, CompanyUpdate
from app.domain.deals import scoring
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.cardfields import (
    check_choice,
    normalize_emails,
    normalize_phones,
    normalize_tags,
    search_blob,
    validated_custom_fields,
)
from app.domain.shared.errors import DuplicateError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.normalize import fold_for_search, normalize_name
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.service import require_users

ENTITY = "company"

LIST_SPEC = ListSpec(
    id_column=Company.id,
    custom_fields_column=Company.custom_fields, custom_fields_object="company",
    fields={
        "id": FilterField(Company.id, "uuid"),
        "name": FilterField(Company.name, "str", sortable=True),
        "domain": FilterField(Company.domain, "str"),
        "kind": FilterField(Company.kind, "str"),
        "owner_id": FilterField(Company.owner_id, "uuid"),
        "tags": FilterField(Company.tags, "array"),
        "external_id": FilterField(Company.external_id, "str"),
        "created_at": FilterField(Company.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Company.updated_at, "datetime", sortable=True),
    },
)


def to_read(company: Company) -> CompanyRead:
    return CompanyRead.model_validate(records.snapshot(company))


async def _apply_fields(session: AsyncSession, principal: Principal, company: Company,
                        data: CompanyFields, *, creating: bool) -> None:
    workspace = await current_workspace(session, principal)
    given = data.model_dump(exclude_unset=True)
    if "name" in given:
        name = normalize_name(given["name"])
        if not name:
            raise ValidationError.at(["body", "name"], "a company needs a name")
        company.name = name
    if "domain" in given:
        company.domain = given["domain"].strip().lower() if given["domain"] else None
    if "phones" in given:
        company.phones = normalize_phones(data.phones or [], workspace.default_region)
    if "emails" in given:
        company.emails = normalize_emails(data.emails or [])
    if "address" in given:
        company.address = data.address.model_dump(exclude_none=True) if data.address else None
    if given.get("kind") is not None:
        check_choice(given["kind"], workspace.settings["company_kinds"], "kind")
        company.kind = given["kind"]
    elif creating:
        company.kind = workspace.settings["company_kinds"][0]
    if "owner_id" in given:
        if given["owner_id"] is not None:
            await require_users(session, [given["owner_id"]], ["body", "owner_id"])
        company.owner_id = given["owner_id"]
    elif creating and principal.user_id:
        company.owner_id = principal.user_id
    if "tags" in given:
        company.tags = normalize_tags(given["tags"] or [])
    if "external_id" in given:
        company.external_id = given["external_id"]
    if "custom_fields" in given or creating:
        company.custom_fields = await validated_custom_fields(
            session, "company", given.get("custom_fields"),
            region=workspace.default_region, existing=company.custom_fields,
            enforce_required=principal.fills_required_fields)
    company.search_text = search_blob(company.name, company.domain, phones=company.phones,
                                      emails=company.emails)


async def _flush(session: AsyncSession, company: Company, *, check_external_id: bool) -> None:
    await records.flush_with_external_id(session, company, ENTITY,
                                         check_external_id=check_external_id)


async def create_company(session: AsyncSession, principal: Principal,
                         data: CompanyCreate) -> Company:
    principal.require_write()
    company = Company(workspace_id=principal.workspace_id, created_by=principal.actor,
                      updated_by=principal.actor)
    await _apply_fields(session, principal, company, data, creating=True)
    session.add(company)
    await _flush(session, company, check_external_id=True)
    await record_event(session, principal, type="company.created", entity_type=ENTITY,
                       entity_id=company.id, after=records.snapshot(company))
    return company


async def get_company(session: AsyncSession, principal: Principal, company_id: uuid.UUID,
                      *, include_deleted: bool = False) -> Company:
    return await records.get_visible(session, Company, principal, company_id,
                                     include_deleted=include_deleted)


async def update_company(session: AsyncSession, principal: Principal, company_id: uuid.UUID,
                         data: CompanyUpdate, *, expected_version: int | None = None) -> Company:
    principal.require_write()
    company = await records.get_visible(session, Company, principal, company_id, for_update=True)
    records.check_version(company, expected_version)
    return await _update_loaded(session, principal, company, data)


async def _update_loaded(session: AsyncSession, principal: Principal, company: Company,
                         data: CompanyFields) -> Company:
    before = records.snapshot(company)
    await _apply_fields(session, principal, company, data, creating=False)
    if records.snapshot(company) == before:
        return company
    records.touch(company, principal)
    await _flush(session, company,
                 check_external_id=company.external_id != before["external_id"])
    await record_event(session, principal, type="company.updated", entity_type=ENTITY,
                       entity_id=company.id, before=before, after=records.snapshot(company))
    await scoring.company_changed(session, principal, company.id)
    return company


async def delete_company(session: AsyncSession, principal: Principal, company_id: uuid.UUID,
                         *, expected_version: int | None = None) -> None:
    principal.require_write()
    company = await records.get_visible(session, Company, principal, company_id, for_update=True)
    records.check_version(company, expected_version)
    await records.soft_delete(session, company, principal, ENTITY)
    await scoring.company_changed(session, principal, company.id)


async def restore_company(session: AsyncSession, principal: Principal,
                          company_id: uuid.UUID) -> Company:
    principal.require_write()
    company = await records.get_visible(session, Company, principal, company_id,
                                        include_deleted=True, for_update=True)
    await records.restore(session, company, principal, ENTITY)
    await scoring.company_changed(session, principal, company.id)
    return company


async def list_companies(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                         q: str | None, page: Page, include_deleted: bool = False
                         ) -> tuple[list[Company], str | None]:
    query = select(Company).where(records.visibility_condition(Company, principal), *conditions)
    if not include_deleted:
        query = query.where(Company.deleted_at.is_(None))
    if q:
        needle = fold_for_search(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Company.search_text.like(f"%{needle}%", escape="\\"))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def upsert_target(session: AsyncSession, principal: Principal, data: CompanyCreate,
                        upsert_on: str) -> Company | None:
    if upsert_on != "external_id":
        raise ValidationError.at(["body", "upsert_on"], "companies upsert on external_id only")
    if not data.external_id:
        raise ValidationError.at(["body", "external_id"], "required for upsert_on=external_id")
    existing = (await session.execute(select(Company).where(
        Company.external_id == data.external_id, Company.deleted_at.is_(None)))
    ).scalar_one_or_none()
    if existing is not None and not principal.can_see_owner(existing.owner_id):
        raise DuplicateError("a matching company exists that you may not change")
    return existing


async def apply_upsert(session: AsyncSession, principal: Principal, existing: Company,
                       data: CompanyCreate) -> bool:
    version = existing.version
    await _update_loaded(session, principal, existing,
                         CompanyUpdate.model_validate(data.model_dump(exclude_unset=True)))
    return existing.version != version
