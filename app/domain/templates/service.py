"""Templates: CRUD (owners and admins write, everyone reads) and preview.

A template is checked when it is saved: it must parse and must not reach for private
attributes (sandbox.check_syntax), so a broken or hostile template is a 422 at the moment
someone writes it, not when a rule sends it at night."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.errors import ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal
from app.domain.templates.models import Template
from app.domain.templates.sandbox import check_syntax, render_text
from app.domain.templates.schemas import (
    PreviewContext,
    TemplateCreate,
    TemplateFields,
    TemplatePreview,
    TemplateUpdate,
)
from app.domain.templates.variables import record_variables

ENTITY = "template"

LIST_SPEC = ListSpec(
    id_column=Template.id,
    fields={
        "id": FilterField(Template.id, "uuid"),
        "kind": FilterField(Template.kind, "str"),
        "name": FilterField(Template.name, "str"),
        "format": FilterField(Template.format, "str"),
        "created_at": FilterField(Template.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Template.updated_at, "datetime", sortable=True),
    },
)


def check_parts(kind: str, subject: str | None, body: str, format_: str | None,
                loc: list[str | int]) -> None:
    """The parts a kind has, each a valid template."""
    if subject is not None and kind != "email":
        raise ValidationError.at([*loc, "subject"], "only email templates have a subject")
    if format_ is not None and kind != "document":
        raise ValidationError.at([*loc, "format"], "only document templates have a format")
    if subject is not None:
        check_syntax(subject, [*loc, "subject"])
    check_syntax(body, [*loc, "body"])


def _apply(template: Template, data: TemplateFields) -> None:
    given = data.model_dump(exclude_unset=True)
    for name in ("name", "body"):
        if name in given and given[name] is None:
            raise ValidationError.at(["body", name], "cannot be null")
    if "name" in given:
        name = given["name"].strip()
        if not name:
            raise ValidationError.at(["body", "name"], "a template needs a name")
        template.name = name
    for name in ("subject", "body", "format"):
        if name in given:
            setattr(template, name, given[name])
    if template.kind == "document" and template.format is None:
        template.format = "html"
    check_parts(template.kind, template.subject, template.body, template.format, ["body"])


async def create_template(session: AsyncSession, principal: Principal,
                          data: TemplateCreate) -> Template:
    principal.require_admin()
    template = Template(workspace_id=principal.workspace_id, kind=data.kind, name="", body="",
                        created_by=principal.actor, updated_by=principal.actor)
    _apply(template, data)
    session.add(template)
    await session.flush()
    await record_event(session, principal, type="template.created", entity_type=ENTITY,
                       entity_id=template.id, after=records.snapshot(template))
    return template


async def get_template(session: AsyncSession, principal: Principal, template_id: uuid.UUID,
                       *, include_deleted: bool = False, for_update: bool = False) -> Template:
    return await records.get_visible(session, Template, principal, template_id,
                                     include_deleted=include_deleted, for_update=for_update)


async def require_template(session: AsyncSession, principal: Principal,
                           template_id: uuid.UUID, kinds: tuple[str, ...],
                           loc: list[str | int]) -> Template:
    """A live template of one of `kinds`, for a message or a document (422 otherwise)."""
    template = (await session.execute(select(Template).where(
        Template.id == template_id, Template.deleted_at.is_(None)))).scalar_one_or_none()
    if template is None:
        raise ValidationError.at(loc, "no such template")
    if template.kind not in kinds:
        raise ValidationError.at(loc, f"a {template.kind} template cannot be used here; "
                                      f"use a {' or '.join(kinds)} template")
    return template


async def update_template(session: AsyncSession, principal: Principal,
                          template_id: uuid.UUID, data: TemplateUpdate, *,
                          expected_version: int | None = None) -> Template:
    principal.require_admin()
    template = await get_template(session, principal, template_id, for_update=True)
    records.check_version(template, expected_version)
    before = records.snapshot(template)
    _apply(template, data)
    if records.snapshot(template) == before:
        return template
    records.touch(template, principal)
    await session.flush()
    await record_event(session, principal, type="template.updated", entity_type=ENTITY,
                       entity_id=template.id, before=before, after=records.snapshot(template))
    return template


async def delete_template(session: AsyncSession, principal: Principal, template_id: uuid.UUID,
                          *, expected_version: int | None = None) -> None:
    principal.require_admin()
    template = await get_template(session, principal, template_id, for_update=True)
    records.check_version(template, expected_version)
    await records.soft_delete(session, template, principal, ENTITY)


async def restore_template(session: AsyncSession, principal: Principal,
                           template_id: uuid.UUID) -> Template:
    principal.require_admin()
    template = await get_template(session, principal, template_id, include_deleted=True,
                                  for_update=True)
    await records.restore(session, template, principal, ENTITY)
    return template


async def list_templates(session: AsyncSession, principal: Principal, *,
                         conditions: list[Any], page: Page, include_deleted: bool = False
                         ) -> tuple[list[Template], str | None]:
    query = select(Template).where(*conditions)
    if not include_deleted:
        query = query.where(Template.deleted_at.is_(None))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def preview_variables(session: AsyncSession, principal: Principal,
                            context: PreviewContext) -> dict[str, Any]:
    variables = await record_variables(
        session, principal, contact_id=context.contact_id, company_id=context.company_id,
        deal_id=context.deal_id, task_id=context.task_id)
    return {**variables, **(context.variables or {})}


def render_parts(subject: str | None, body: str, variables: dict[str, Any],
                 loc: list[str | int]) -> tuple[str | None, str]:
    """A template's subject and body rendered; a failure points at the part."""
    rendered_subject = render_text(subject, variables, loc=[*loc, "subject"]) \
        if subject is not None else None
    return rendered_subject, render_text(body, variables, loc=[*loc, "body"])


async def preview(session: AsyncSession, principal: Principal, *, kind: str,
                  subject: str | None, body: str, format_: str | None,
                  context: PreviewContext, loc: list[str | int]) -> TemplatePreview:
    """Render a saved or unsaved template with the records' variables, writing nothing."""
    check_parts(kind, subject, body, format_, loc)
    variables = await preview_variables(session, principal, context)
    rendered_subject, rendered_body = render_parts(subject, body, variables, loc)
    return TemplatePreview(subject=rendered_subject, body=rendered_body, variables=variables)
