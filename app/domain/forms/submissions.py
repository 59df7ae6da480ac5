"""A public submission: the form found by its key, the values checked and cleaned, then in
the caller's one transaction the card (found or created), the deal, the inbox item and the
`form.submitted` event (docs/integrations/forms.md).

Nothing here trusts the sender: every value is checked against its field (type, length,
choices), unknown keys are refused, and a filled honeypot is answered like a success while
only a counter moves."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from email_validator import EmailNotValidError
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_workspace
from app.domain.automations.actions import resolve_who
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactUpdate
from app.domain.customfields.service import definitions_for
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.forms.models import Form, FormSubmission
from app.domain.forms.schemas import CAPTURE_KEYS, UTM_KEYS, FormFieldSpec
from app.domain.forms.service import field_specs
from app.domain.inbox import service as inbox
from app.domain.outbox.service import record_event
from app.domain.pipelines.service import live_stage
from app.domain.shared.clock import clock
from app.domain.shared.errors import DomainError, ValidationError
from app.domain.shared.ids import new_id
from app.domain.shared.normalize import normalize_email, try_normalize_phone
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import workspace_setting

KEY_RE = re.compile(r"^frm_[A-Za-z0-9_-]{10,60}$")
MAX_CAPTURE_LENGTH = {"referrer": 2000, "page_url": 2000, "submission_id": 200}
MAX_UTM_LENGTH = 500
_TRUE = {"on", "true", "1", "yes"}
_FALSE = {"off", "false", "0", "no", ""}


class SubmissionTooLargeError(DomainError):
    status, title, type_slug = 413, "Payload too large", "too-large"


@dataclass(frozen=True)
class FormView:
    """What the public endpoints need before the workspace's transaction: cacheable."""
    workspace_id: uuid.UUID
    id: uuid.UUID
    form_key: str
    enabled: bool
    allowed_origins: frozenset[str]
    submissions_per_minute: int | None


@dataclass
class Sender:
    """Where a submission came from, as the adapter saw it."""
    origin: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    client_submission_id: str | None = None


@dataclass
class Cleaned:
    values: dict[str, Any]
    utm: dict[str, str] = field(default_factory=dict)
    referrer: str | None = None
    page_url: str | None = None
    submission_id: str | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(orjson.dumps(self.values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def form_principal(form: Form | FormView) -> Principal:
    """The form acts: its writes name `form:<id>`, and it sees the whole workspace (to
    find the card a lead already has)."""
    return Principal(workspace_id=form.workspace_id, kind="form", id=form.id)


def view_of(form: Form) -> FormView:
    return FormView(workspace_id=form.workspace_id, id=form.id, form_key=form.form_key,
                    enabled=form.enabled, allowed_origins=frozenset(form.allowed_origins),
                    submissions_per_minute=form.submissions_per_minute)


async def find_form(session: AsyncSession, form_key: str) -> Form | None:
    """The live form with this key, and its workspace set for the rest of the transaction;
    None for an unknown, malformed or deleted key."""
    if not KEY_RE.match(form_key):
        return None
    row = (await session.execute(text("select * from relata_form_lookup(:key)"),
                                 {"key": form_key})).first()
    if row is None:
        return None
    await set_workspace(session, row.workspace_id)
    return (await session.execute(select(Form).where(
        Form.id == row.id, Form.deleted_at.is_(None)))).scalar_one_or_none()


async def count_honeypot(session: AsyncSession, form_id: uuid.UUID) -> None:
    forms = Form.__table__
    await session.execute(update(forms).where(forms.c.id == form_id).values(
        honeypot_count=forms.c.honeypot_count + 1))


def honeypot_filled(form: Form, payload: dict[str, Any]) -> bool:
    value = payload.get(form.honeypot_field)
    return value not in (None, "", False) and not (isinstance(value, str) and not value.strip())


# Cleaning

def _scalar(value: Any) -> str | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise TypeError


def _clean_one(spec: FormFieldSpec, raw: Any, region: str) -> tuple[Any, str | None]:
    """(value, error); value None means left empty."""
    if spec.type == "checkbox":
        flag = raw if isinstance(raw, bool) else (raw or "").lower()
        if flag in _TRUE or flag is True:
            return True, None
        if flag in _FALSE or flag is False:
            return (None, "must be checked") if spec.required else (False, None)
        return None, "a checkbox is on or off (true/false)"
    if raw in (None, ""):
        return None, "is required" if spec.required else None
    assert isinstance(raw, str)
    if "\x00" in raw:
        return None, "contains a character that is not allowed (U+0000)"
    if spec.type == "email":
        try:
            normalize_email(raw)
        except (EmailNotValidError, ValueError):
            return None, "not a valid email address"
    elif spec.type == "phone" or spec.maps_to == "contact.phone":
        if try_normalize_phone(raw, region) is None:
            return None, "not a valid phone number"
    elif spec.type == "select" and raw not in spec.options:
        return None, f"choose one of: {', '.join(spec.options)}"
    return raw, None


def _too_long(loc: str, limit: int) -> dict[str, Any]:
    return {"loc": ["body", loc], "msg": f"at most {limit} characters", "type": "too_long"}


def clean(form: Form, payload: dict[str, Any], *, region: str) -> Cleaned:
    """Check the submitted values against the form: 413 for a value over its field's cap,
    422 naming every faulty field otherwise."""
    specs = field_specs(form)
    by_name = {s.name: s for s in specs}
    errors: list[dict[str, Any]] = []
    too_long: list[dict[str, Any]] = []
    unknown = [k for k in payload if k not in by_name and k not in CAPTURE_KEYS
               and k != form.honeypot_field]
    for key in unknown[:20]:
        errors.append({"loc": ["body", key[:100]], "msg": "the form has no such field",
                       "type": "unknown_field"})
    scalars: dict[str, Any] = {}
    for key, raw in payload.items():
        if key in unknown:
            continue
        try:
            scalars[key] = _scalar(raw)
        except TypeError:
            errors.append({"loc": ["body", key], "msg": "give a single value (a string)",
                           "type": "type_error"})
    values: dict[str, Any] = {}
    for spec in specs:
        raw = scalars.get(spec.name)
        if raw in (None, "") and spec.value is not None:
            raw = spec.value
        if isinstance(raw, bool) and spec.type != "checkbox":
            raw = str(raw).lower()
        if isinstance(raw, str) and len(raw) > spec.limit:
            too_long.append(_too_long(spec.name, spec.limit))
            continue
        value, error = _clean_one(spec, raw, region)
        if error:
            errors.append({"loc": ["body", spec.name], "msg": error, "type": "value_error"})
        elif value is not None:
            values[spec.name] = value
    cleaned = Cleaned(values=values)
    for key in CAPTURE_KEYS:
        raw = scalars.get(key)
        if raw in (None, ""):
            continue
        if not isinstance(raw, str) or "\x00" in raw:
            errors.append({"loc": ["body", key], "msg": "a string without U+0000",
                           "type": "type_error"})
            continue
        limit = MAX_UTM_LENGTH if key in UTM_KEYS else MAX_CAPTURE_LENGTH[key]
        if len(raw) > limit:
            too_long.append(_too_long(key, limit))
        elif key in UTM_KEYS:
            cleaned.utm[key] = raw
        else:
            setattr(cleaned, key, raw)
    if too_long:
        raise SubmissionTooLargeError("a value is longer than its field takes",
                                      errors=too_long)
    mapped = {s.maps_to for s in specs if s.maps_to and s.name in values}
    if not errors and not mapped & {"contact.phone", "contact.email"}:
        errors.extend({"loc": ["body", s.name], "msg": "give a phone number or an email",
                       "type": "value_error"}
                      for s in specs if s.maps_to in ("contact.phone", "contact.email"))
    if errors:
        raise ValidationError("the submission is not valid", errors=errors)
    return cleaned


# Writing

def _relocate(exc: DomainError | PydanticValidationError, where: dict[str, str]) -> DomainError:
    """A card or deal error names the form's field that carried the value."""
    if isinstance(exc, PydanticValidationError):
        raw = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
               for e in exc.errors()]
    else:
        raw = [{**e, "loc": [str(p) for p in e.get("loc", []) if p != "body"]}
               for e in exc.errors]
    errors = []
    for e in raw:
        loc = e["loc"]
        name = where.get(".".join(loc[:2])) or where.get(loc[0] if loc else "")
        errors.append({"loc": ["body", name] if name else ["body"], "msg": e["msg"],
                       "type": e["type"]})
    return ValidationError("the submission is not valid", errors=errors)


def _where(specs: list[FormFieldSpec], obj: str) -> dict[str, str]:
    """The form field behind each card (or deal) attribute, as its errors name it:
    `first_name`, `custom_fields.visits`, and `phone`/`email` for the inbox's match."""
    where = {}
    for spec in specs:
        target = spec.maps_to or ""
        if target.startswith(obj + "."):
            attr = target.removeprefix(obj + ".")
            where[attr.replace("custom.", "custom_fields.", 1)] = spec.name
    return where


async def _owner_for(session: AsyncSession, principal: Principal, form: Form) -> uuid.UUID | None:
    if form.owner_strategy == "user":
        return form.owner_user_id
    if form.owner_strategy == "round_robin" and form.owner_team_id is not None:
        users = await resolve_who(session, principal, {
            "strategy": "round_robin", "team_id": str(form.owner_team_id)}, {}, "deal",
            one=True)
        return users[0] if users else None
    return None


def submission_row(form: Form, cleaned: Cleaned, sender: Sender) -> FormSubmission:
    """The submission as it is stored, before its lead is written."""
    return FormSubmission(
        workspace_id=form.workspace_id, id=new_id(), form_id=form.id,
        client_submission_id=sender.client_submission_id or cleaned.submission_id,
        fingerprint=cleaned.fingerprint, data=cleaned.values, utm=cleaned.utm,
        referrer=cleaned.referrer,
        page_url=cleaned.page_url or (sender.referer[:2000] if sender.referer else None),
        origin=sender.origin, ip=sender.ip,
        user_agent=sender.user_agent[:500] if sender.user_agent else None,
        created_at=clock.now())


async def _claim(session: AsyncSession, form: Form, cleaned: Cleaned, sender: Sender
                 ) -> tuple[FormSubmission, bool]:
    """Write the submission row first: a resubmission with the same client id waits for
    the first one's transaction, then gets its result (True) instead of a second lead."""
    row = submission_row(form, cleaned, sender)
    client_id = row.client_submission_id
    table = FormSubmission.__table__  # Core: no ORM bulk-insert machinery for one row
    statement = pg_insert(table).values({c.name: getattr(row, c.name) for c in table.columns})
    if client_id is not None:
        statement = statement.on_conflict_do_nothing(constraint="uq_form_submissions_client_id")
    inserted = (await session.execute(statement.returning(table.c.id))).first()
    if inserted is not None:
        return row, False
    first = (await session.execute(select(FormSubmission).where(
        FormSubmission.form_id == form.id,
        FormSubmission.client_submission_id == client_id))).scalar_one()
    if first.fingerprint != cleaned.fingerprint:
        raise ValidationError.at(["header", "Idempotency-Key"], (
            "this submission id was already used with other values"), "idempotency")
    return first, True


@dataclass
class Lead:
    """What a submission's values mean for the card and the deal, by the form's mapping."""

    mapped: dict[str, Any]  # "contact.phone" -> value, ...
    card_fields: dict[str, str]  # the form field behind each card attribute (for errors)
    deal_fields: dict[str, str]

    @classmethod
    def of(cls, form: Form, cleaned: Cleaned) -> Lead:
        specs = [s for s in field_specs(form) if s.maps_to and s.name in cleaned.values]
        return cls(mapped={s.maps_to: cleaned.values[s.name] for s in specs},  # type: ignore[misc]
                   card_fields=_where(specs, "contact"), deal_fields=_where(specs, "deal"))

    @property
    def phone(self) -> str | None:
        return self.mapped.get("contact.phone")  # type: ignore[no-any-return]

    @property
    def email(self) -> str | None:
        return self.mapped.get("contact.email")  # type: ignore[no-any-return]

    @property
    def name(self) -> str | None:
        return self.mapped.get("contact.full_name") or " ".join(
            p for p in (self.mapped.get(f"contact.{k}") for k in ("first_name", "middle_name",
                                                                  "last_name")) if p) or None

    @property
    def has_custom_values(self) -> bool:
        return any(".custom." in key for key in self.mapped)


def card_patch(contact: Contact | None, lead: Lead, cleaned: Cleaned,
               owner_id: uuid.UUID | None) -> dict[str, Any]:
    """What the form gives the card: everything it maps to a new card (`contact` None, which
    also takes the owner); to a card found by phone or email only what it lacks — an
    anonymous form never overwrites what a manager entered."""
    created = contact is None
    patch: dict[str, Any] = {}
    for attr in ("first_name", "middle_name", "last_name", "full_name"):
        value = lead.mapped.get(f"contact.{attr}")
        if value and (created or not getattr(contact, attr)):
            patch[attr] = value
    custom = {k.removeprefix("contact.custom."): v for k, v in lead.mapped.items()
              if k.startswith("contact.custom.")
              and (created or k.removeprefix("contact.custom.") not in contact.custom_fields)}
    if custom:
        patch["custom_fields"] = custom
    if cleaned.utm and (created or not contact.utm):  # type: ignore[union-attr]
        patch["utm"] = cleaned.utm
    if created and owner_id is not None:
        patch["owner_id"] = owner_id
    return patch


def deal_data(form: Form, contact: Contact, lead: Lead, owner_id: uuid.UUID | None
              ) -> dict[str, Any]:
    """The deal a submission makes in the form's stage, as a `DealCreate` body."""
    who = contact.full_name or lead.phone or lead.email or "website"
    data: dict[str, Any] = {
        "title": (lead.mapped.get("deal.title") or f"{form.name}: {who}")[:300],
        "pipeline_id": form.pipeline_id, "stage_id": form.stage_id,
        "contact_ids": [contact.id], "source": form.source}
    if owner_id is not None:
        data["owner_id"] = owner_id
    if lead.mapped.get("deal.amount") is not None:
        data["amount"] = lead.mapped["deal.amount"]
    custom = {k.removeprefix("deal.custom."): v for k, v in lead.mapped.items()
              if k.startswith("deal.custom.")}
    if custom:
        data["custom_fields"] = custom
    return data


NO_DEAL_NOTE = "the form's stage takes no deals now: the lead waits in the inbox"


def lead_data(form: Form, cleaned: Cleaned, submission: FormSubmission, *,
              stage_ok: bool) -> dict[str, Any]:
    """The inbox item's data (and the bulk of `form.submitted`)."""
    lead = {"form_id": str(form.id), "form_name": form.name, "submission_id": str(submission.id),
            "fields": cleaned.values, "utm": cleaned.utm, "referrer": submission.referrer,
            "page_url": submission.page_url}
    if form.stage_id is not None and not stage_ok:
        lead["note"] = NO_DEAL_NOTE
    return lead


def submitted_after(lead: dict[str, Any], submission: FormSubmission, contact_id: uuid.UUID,
                    created: bool, deal_id: uuid.UUID | None, item_id: uuid.UUID
                    ) -> dict[str, Any]:
    """`form.submitted`'s after: the lead and where it went."""
    return {**lead, "origin": submission.origin, "contact_id": str(contact_id),
            "contact_created": created, "deal_id": str(deal_id) if deal_id else None,
            "inbox_item_id": str(item_id)}


async def submit(session: AsyncSession, form: Form, cleaned: Cleaned, sender: Sender
                 ) -> tuple[FormSubmission, bool]:
    """The lead, in the caller's transaction. Returns (submission, replayed)."""
    principal = form_principal(form)
    submission, replayed = await _claim(session, form, cleaned, sender)
    if replayed:
        return submission, True
    lead = Lead.of(form, cleaned)
    await _typed_custom_values(session, principal, lead.mapped)
    stage_ok = form.stage_id is not None and await _stage_takes_deals(session, form.stage_id)
    # The owner is chosen before the card is written when that turns no round robin for
    # nothing: a deal needs one anyway, or it is a fixed user.
    owner_first = stage_ok or form.owner_strategy != "round_robin"
    owner_id = await _owner_for(session, principal, form) if owner_first else None
    try:
        contact, created = await inbox.match_or_create_contact(
            session, principal, phone=lead.phone, email=lead.email, name=lead.name,
            source=form.source, new_card=card_patch(None, lead, cleaned, owner_id))
    except (ValidationError, PydanticValidationError) as exc:
        raise _relocate(exc, lead.card_fields) from exc
    if not created:
        await _update_card(session, principal, contact, card_patch(contact, lead, cleaned,
                                                                   None), lead.card_fields)
    elif not owner_first:
        owner_id = await _owner_for(session, principal, form)
        if owner_id is not None:
            await _update_card(session, principal, contact, {"owner_id": owner_id},
                               lead.card_fields)
    deal_id = None
    if stage_ok:
        deal_id = await _create_deal(session, principal, deal_data(form, contact, lead, owner_id),
                                     lead.deal_fields)
    data = lead_data(form, cleaned, submission, stage_ok=stage_ok)
    item, _ = await inbox.receive_lead(
        session, principal, channel="form", source_id=str(submission.id), contact_id=contact.id,
        data=data, deal_id=deal_id, accepted=deal_id is not None, contact_created=created)
    await record_event(
        session, principal, type="form.submitted",
        entity_type="deal" if deal_id else "contact", entity_id=deal_id or contact.id,
        after=submitted_after(data, submission, contact.id, created, deal_id, item.id))
    rows = FormSubmission.__table__
    await session.execute(update(rows).where(rows.c.id == submission.id).values(
        contact_id=contact.id, contact_created=created, deal_id=deal_id,
        inbox_item_id=item.id))
    submission.contact_id, submission.contact_created = contact.id, created
    submission.deal_id, submission.inbox_item_id = deal_id, item.id
    return submission, False


_NUMBER_RE = re.compile(r"^-?\d{1,15}$")


def _typed(kind: str, value: Any, currency: str) -> Any:
    """A web form sends text: a number, money, yes/no or a one-choice multiselect custom
    field gets the value it stores (anything else is left for its own check to refuse)."""
    if not isinstance(value, str):
        return value
    if kind == "number":
        if _NUMBER_RE.match(value):
            return int(value)
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    if kind == "money":
        return {"amount": value.replace(",", ".").replace(" ", ""), "currency": currency}
    if kind == "boolean":
        lowered = value.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else value
    if kind == "multiselect":
        return [value]
    return value


async def _typed_custom_values(session: AsyncSession, principal: Principal,
                               mapped: dict[str, Any]) -> None:
    for obj in ("contact", "deal"):
        prefix = f"{obj}.custom."
        keys = [k for k in mapped if k.startswith(prefix)]
        if not keys:
            continue
        kinds = {d.key: d.type for d in await definitions_for(session, obj)}
        currency = workspace_setting(await current_workspace(session, principal), "currency")
        for key in keys:
            mapped[key] = _typed(kinds.get(key.removeprefix(prefix), "text"), mapped[key],
                                 currency)


async def _stage_takes_deals(session: AsyncSession, stage_id: uuid.UUID) -> bool:
    try:
        await live_stage(session, stage_id, ["stage_id"])
    except ValidationError:
        return False
    return True


async def _update_card(session: AsyncSession, principal: Principal, contact: Contact,
                       patch: dict[str, Any], where: dict[str, str]) -> None:
    if not patch:
        return
    try:
        await contacts.update_contact(session, principal, contact.id,
                                      ContactUpdate.model_validate(patch))
    except (ValidationError, PydanticValidationError) as exc:
        raise _relocate(exc, where) from exc


async def _create_deal(session: AsyncSession, principal: Principal, data: dict[str, Any],
                       where: dict[str, str]) -> uuid.UUID:
    try:
        deal = await deals.create_deal(session, principal, DealCreate.model_validate(data))
    except (ValidationError, PydanticValidationError) as exc:
        raise _relocate(exc, where) from exc
    return deal.id


async def workspace_region(session: AsyncSession, form: Form) -> str:
    return (await current_workspace(session, form_principal(form))).default_region
