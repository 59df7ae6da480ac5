"""Form definitions: create, read, list, update, delete, restore, rotate the key.

A definition is checked when saved: every mapping names a field the card or the deal has
(custom fields against the workspace's definitions), a field's type suits its target, the
pipeline, stage, user and team exist here, and every allowed origin is a bare
`scheme://host[:port]`. Every member reads forms; owners and admins write them."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.customfields.service import definitions_for
from app.domain.forms.models import Form, FormSubmission
from app.domain.forms.schemas import (
    CAPTURE_KEYS,
    FormCreate,
    FormFieldSpec,
    FormRead,
    FormUpdate,
    PublicField,
    PublicForm,
    SubmissionRead,
)
from app.domain.outbox.service import record_event
from app.domain.pipelines.service import first_open_stage, live_pipeline, live_stage
from app.domain.shared import records
from app.domain.shared.errors import NotFoundError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal
from app.domain.workspaces.models import Team
from app.domain.workspaces.service import require_users

ENTITY = "form"
KEY_PREFIX = "frm_"

CONTACT_TARGETS = {"first_name", "last_name", "middle_name", "full_name", "phone", "email"}
DEAL_TARGETS = {"title", "amount"}
# The field types whose value suits a target (custom fields are checked per value).
TARGET_TYPES = {
    "phone": {"phone", "text", "hidden"},
    "email": {"email", "text", "hidden"},
    "amount": {"text", "select", "hidden"},
}
NAME_TYPES = {"text", "select", "hidden", "textarea"}

LIST_SPEC = ListSpec(
    id_column=Form.id,
    fields={
        "id": FilterField(Form.id, "uuid"),
        "name": FilterField(Form.name, "str", sortable=True),
        "enabled": FilterField(Form.enabled, "bool"),
        "form_key": FilterField(Form.form_key, "str"),
        "pipeline_id": FilterField(Form.pipeline_id, "uuid"),
        "created_at": FilterField(Form.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Form.updated_at, "datetime", sortable=True),
    },
)

SUBMISSIONS_SPEC = ListSpec(
    id_column=FormSubmission.id,
    fields={
        "id": FilterField(FormSubmission.id, "uuid"),
        "form_id": FilterField(FormSubmission.form_id, "uuid"),
        "contact_id": FilterField(FormSubmission.contact_id, "uuid"),
        "deal_id": FilterField(FormSubmission.deal_id, "uuid"),
        "created_at": FilterField(FormSubmission.created_at, "datetime", sortable=True),
    },
)


def new_form_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


def submit_path(form_key: str) -> str:
    return f"/api/v1/forms/{form_key}/submissions"


def embed_path(form_key: str) -> str:
    return f"/api/v1/forms/{form_key}/embed.js"


def owner_of(form: Form) -> dict[str, Any]:
    if form.owner_strategy == "user":
        return {"strategy": "user", "user_id": str(form.owner_user_id)}
    if form.owner_strategy == "round_robin":
        return {"strategy": "round_robin", "team_id": str(form.owner_team_id)}
    return {"strategy": "none"}


def to_read(form: Form) -> FormRead:
    return FormRead(
        id=form.id, name=form.name, form_key=form.form_key, fields=form.fields,
        pipeline_id=form.pipeline_id, stage_id=form.stage_id, owner=owner_of(form),
        allowed_origins=form.allowed_origins, success_message=form.success_message,
        redirect_url=form.redirect_url, source=form.source, honeypot_field=form.honeypot_field,
        honeypot_count=form.honeypot_count, submissions_per_minute=form.submissions_per_minute,
        enabled=form.enabled, submit_url=submit_path(form.form_key),
        embed_url=embed_path(form.form_key), version=form.version, created_at=form.created_at,
        updated_at=form.updated_at, deleted_at=form.deleted_at, created_by=form.created_by,
        updated_by=form.updated_by)


def field_specs(form: Form) -> list[FormFieldSpec]:
    return [FormFieldSpec.model_validate(f) for f in form.fields]


def public_view(form: Form, base_url: str) -> PublicForm:
    return PublicForm(
        form_key=form.form_key, name=form.name, honeypot_field=form.honeypot_field,
        success_message=form.success_message, redirect_url=form.redirect_url,
        submit_url=base_url.rstrip("/") + submit_path(form.form_key),
        fields=[PublicField(name=f.name, label=f.label, type=f.type, required=f.required,
                            options=f.options, placeholder=f.placeholder, max_length=f.limit,
                            value=f.value) for f in field_specs(form)])


def submission_read(row: FormSubmission) -> SubmissionRead:
    return SubmissionRead.model_validate(row, from_attributes=True)


# Checks

def normalize_origin(value: str, loc: list[str | int]) -> str:
    """`https://Okna.example:443/` -> `https://okna.example`; anything with a path, a query,
    credentials or another scheme is refused."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError.at(loc, f"not an origin: {value!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError.at(loc, "an origin is scheme://host[:port] with http or https")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValidationError.at(loc, "an origin has no path, query, fragment or credentials "
                                      "(https://okna.example, not https://okna.example/page)")
    if "*" in parts.netloc:
        raise ValidationError.at(loc, "list each origin; wildcards are not allowed")
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _check_origins(origins: list[str]) -> list[str]:
    cleaned = [normalize_origin(o, ["body", "allowed_origins", i]) for i, o in enumerate(origins)]
    return list(dict.fromkeys(cleaned))


async def _check_fields(session: AsyncSession, fields: list[FormFieldSpec], *,
                        honeypot: str, has_pipeline: bool) -> None:
    names: set[str] = set()
    targets: dict[str, int] = {}
    customs: dict[str, set[str]] = {}
    for i, spec in enumerate(fields):
        loc: list[str | int] = ["body", "fields", i]
        if spec.name in names:
            raise ValidationError.at([*loc, "name"], f"two fields are named {spec.name!r}")
        if spec.name in CAPTURE_KEYS or spec.name == honeypot:
            raise ValidationError.at([*loc, "name"], (
                f"{spec.name!r} is taken by the submission itself (UTM, referrer, page_url, "
                "submission_id and the honeypot field)"))
        names.add(spec.name)
        if spec.maps_to is None:
            continue
        if spec.maps_to in targets:
            raise ValidationError.at([*loc, "maps_to"], (
                f"{spec.maps_to} is already filled by field {targets[spec.maps_to]}"))
        targets[spec.maps_to] = i
        obj, _, attr = spec.maps_to.partition(".")
        if attr.startswith("custom."):
            if obj not in customs:
                customs[obj] = {d.key for d in await definitions_for(session, obj)}
            key = attr.removeprefix("custom.")
            if key not in customs[obj]:
                raise ValidationError.at([*loc, "maps_to"], (
                    f"the workspace has no {obj} custom field {key!r} (see "
                    "/api/v1/custom-fields)"), "unknown_field")
        elif attr not in (CONTACT_TARGETS if obj == "contact" else DEAL_TARGETS):
            known = sorted(CONTACT_TARGETS if obj == "contact" else DEAL_TARGETS)
            raise ValidationError.at([*loc, "maps_to"], (
                f"a {obj} has no field {attr!r}; use one of "
                f"{', '.join(f'{obj}.{k}' for k in known)} or {obj}.custom.<key>"),
                "unknown_field")
        elif spec.type not in TARGET_TYPES.get(attr, NAME_TYPES):
            raise ValidationError.at([*loc, "type"], (
                f"a {spec.type} field cannot fill {spec.maps_to}; use one of "
                f"{', '.join(sorted(TARGET_TYPES.get(attr, NAME_TYPES)))}"))
        if obj == "deal" and not has_pipeline:
            raise ValidationError.at([*loc, "maps_to"], (
                "the form makes no deal (it has no pipeline_id or stage_id), so nothing "
                f"takes {spec.maps_to}"))
    if "contact.phone" not in targets and "contact.email" not in targets:
        raise ValidationError.at(["body", "fields"], (
            "map a field to contact.phone or contact.email: a lead is matched and reached "
            "by them"))


async def _check_target(session: AsyncSession, pipeline_id: uuid.UUID | None,
                        stage_id: uuid.UUID | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if stage_id is not None:
        stage = await live_stage(session, stage_id, ["body", "stage_id"])
        if stage.kind != "open":
            raise ValidationError.at(["body", "stage_id"], (
                f"stage {stage.name!r} is a {stage.kind} stage; new requests start in an "
                "open one"))
        if pipeline_id is not None and pipeline_id != stage.pipeline_id:
            raise ValidationError.at(["body", "stage_id"], (
                "the stage belongs to another pipeline"))
        return stage.pipeline_id, stage.id
    if pipeline_id is not None:
        await live_pipeline(session, pipeline_id, ["body", "pipeline_id"])
        stage = await first_open_stage(session, pipeline_id, ["body", "pipeline_id"])
        return pipeline_id, stage.id
    return None, None


async def _apply_owner(session: AsyncSession, form: Form, owner: Any) -> None:
    form.owner_strategy = owner.strategy
    form.owner_user_id = owner.user_id if owner.strategy == "user" else None
    form.owner_team_id = owner.team_id if owner.strategy == "round_robin" else None
    if form.owner_user_id is not None:
        await require_users(session, [form.owner_user_id], ["body", "owner", "user_id"])
    if form.owner_team_id is not None:
        found = (await session.execute(select(Team.id).where(
            Team.id == form.owner_team_id))).first()
        if found is None:
            raise ValidationError.at(["body", "owner", "team_id"], "no such team in this "
                                                                    "workspace")


def _dump_fields(fields: list[FormFieldSpec]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json", exclude_none=True) for f in fields]


# Writes

async def create_form(session: AsyncSession, principal: Principal, data: FormCreate) -> Form:
    principal.require_admin()
    pipeline_id, stage_id = await _check_target(session, data.pipeline_id, data.stage_id)
    await _check_fields(session, data.fields, honeypot=data.honeypot_field,
                        has_pipeline=stage_id is not None)
    form = Form(workspace_id=principal.workspace_id, created_by=principal.actor,
                updated_by=principal.actor, name=data.name, form_key=new_form_key(),
                fields=_dump_fields(data.fields), pipeline_id=pipeline_id, stage_id=stage_id,
                allowed_origins=_check_origins(data.allowed_origins),
                success_message=data.success_message, redirect_url=data.redirect_url,
                source=data.source, honeypot_field=data.honeypot_field,
                submissions_per_minute=data.submissions_per_minute, enabled=data.enabled)
    await _apply_owner(session, form, data.owner)
    session.add(form)
    await session.flush()
    await record_event(session, principal, type="form.created", entity_type=ENTITY,
                       entity_id=form.id, after=records.snapshot(form))
    return form


async def get_form(session: AsyncSession, principal: Principal, form_id: uuid.UUID, *,
                   include_deleted: bool = False, for_update: bool = False) -> Form:
    return await records.get_visible(session, Form, principal, form_id,
                                     include_deleted=include_deleted, for_update=for_update)


_NOT_NULL = ("name", "fields", "owner", "allowed_origins", "success_message", "source",
             "honeypot_field", "enabled")


async def update_form(session: AsyncSession, principal: Principal, form_id: uuid.UUID,
                      data: FormUpdate, *, expected_version: int | None = None) -> Form:
    principal.require_admin()
    form = await get_form(session, principal, form_id, for_update=True)
    records.check_version(form, expected_version)
    given = data.model_dump(exclude_unset=True)
    for key in _NOT_NULL:
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    before = records.snapshot(form)
    if "pipeline_id" in given or "stage_id" in given:
        # A stage alone names its pipeline; a pipeline alone starts at its first open stage.
        pipeline_id = given.get("pipeline_id")
        stage_id = given.get("stage_id")
        form.pipeline_id, form.stage_id = await _check_target(session, pipeline_id, stage_id)
    fields = data.fields if data.fields is not None else field_specs(form)
    honeypot = data.honeypot_field or form.honeypot_field
    await _check_fields(session, fields, honeypot=honeypot,
                        has_pipeline=form.stage_id is not None)
    form.fields = _dump_fields(fields)
    if data.owner is not None:
        await _apply_owner(session, form, data.owner)
    if data.allowed_origins is not None:
        form.allowed_origins = _check_origins(data.allowed_origins)
    for key in ("name", "success_message", "redirect_url", "source", "honeypot_field",
                "submissions_per_minute", "enabled"):
        if key in given:
            setattr(form, key, given[key])
    if records.snapshot(form) == before:
        return form
    records.touch(form, principal)
    await session.flush()
    await record_event(session, principal, type="form.updated", entity_type=ENTITY,
                       entity_id=form.id, before=before, after=records.snapshot(form))
    return form


async def rotate_key(session: AsyncSession, principal: Principal, form_id: uuid.UUID, *,
                     expected_version: int | None = None) -> Form:
    """A new public key: the old embed code and submit URL stop working at once."""
    principal.require_admin()
    form = await get_form(session, principal, form_id, for_update=True)
    records.check_version(form, expected_version)
    before = records.snapshot(form)
    form.form_key = new_form_key()
    records.touch(form, principal)
    await session.flush()
    await record_event(session, principal, type="form.updated", entity_type=ENTITY,
                       entity_id=form.id, before=before, after=records.snapshot(form))
    return form


async def delete_form(session: AsyncSession, principal: Principal, form_id: uuid.UUID, *,
                      expected_version: int | None = None) -> Form:
    """Soft delete: the public URLs answer 404; submissions stay; restorable for 30 days."""
    principal.require_admin()
    form = await get_form(session, principal, form_id, for_update=True)
    records.check_version(form, expected_version)
    await records.soft_delete(session, form, principal, ENTITY)
    return form


async def restore_form(session: AsyncSession, principal: Principal, form_id: uuid.UUID) -> Form:
    principal.require_admin()
    form = await get_form(session, principal, form_id, include_deleted=True, for_update=True)
    await records.restore(session, form, principal, ENTITY)
    return form


# Reads

async def list_forms(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                     page: Page, include_deleted: bool = False) -> tuple[list[Form], str | None]:
    query = select(Form).where(*conditions)
    if not include_deleted:
        query = query.where(Form.deleted_at.is_(None))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def list_submissions(session: AsyncSession, principal: Principal, *,
                           conditions: list[Any], page: Page
                           ) -> tuple[list[FormSubmission], str | None]:
    """Submissions hold what anonymous visitors typed: owners and admins read them."""
    principal.require_admin()
    query, cut = paginate(SUBMISSIONS_SPEC, select(FormSubmission).where(*conditions), page)
    return cut(list((await session.execute(query)).scalars()))


async def get_submission(session: AsyncSession, principal: Principal,
                         submission_id: uuid.UUID) -> FormSubmission:
    principal.require_admin()
    row = (await session.execute(select(FormSubmission).where(
        FormSubmission.id == submission_id))).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"form submission {submission_id} not found")
    return row
