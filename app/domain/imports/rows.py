"""One file row -> one card, validated and normalized exactly as the API would, without I/O.

`RowPlan` is built once per import (mapping, transforms, the workspace's statuses, region
and custom fields); `prepare_contact` is then a pure function of a row's cells, so batches
can be prepared anywhere (and in parallel) before they are written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from app.domain.companies.schemas import CompanyCreate
from app.domain.contacts.schemas import ContactCreate
from app.domain.customfields.validation import validate_custom_fields
from app.domain.imports.schemas import Transform
from app.domain.shared.cardfields import normalize_tags, search_blob
from app.domain.shared.errors import DomainError
from app.domain.shared.normalize import (
    EmailError,
    PhoneError,
    is_valid_timezone,
    normalize_email,
    normalize_name,
    normalize_phone,
    timezone_for_phone,
)

DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y", "%d.%m.%y")
_SEVERAL = re.compile(r"[,;\n]+")
# RFC 5322 dot-atom of plain ASCII: the local part email-validator accepts unchanged.


class RowError(ValueError):
    """Why a row cannot be imported, in words for the rejected-rows file."""


@dataclass
class RowPlan:
    object: str
    columns: list[tuple[int, str]]  # (cell index, target)
    transforms: dict[str, Transform]
    region: str
    timezone: str
    statuses: list[str]
    kinds: list[str]
    definitions: list[Any] = field(default_factory=list)
    width: int = 0

    def transform(self, target: str) -> Transform:
        return self.transforms.get(target) or _NO_TRANSFORM


_NO_TRANSFORM = Transform()


def _text(cell: Any) -> str:
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell).strip()


def _mapped(plan: RowPlan, target: str, value: str) -> str:
    values = plan.transform(target).map
    if not values:
        return value
    folded = {k.casefold(): v for k, v in values.items()}
    return folded.get(value.casefold(), value)


def _date(cell: Any, transform: Transform) -> date:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    return _parse_date(str(cell).strip(), transform.date_format)


@lru_cache(maxsize=65536)
def _parse_date(text: str, date_format: str | None) -> date:
    for fmt in ([date_format] if date_format else DATE_FORMATS):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowError(f"birthday {text!r} is not a date"
                   + (f" in the format {date_format}" if date_format
                      else " (give transforms.birthday.date_format)"))


def _split_name(full: str, order: str) -> dict[str, str]:
    parts = full.split()
    if len(parts) < 2:
        return {"first_name": full} if order == "first_last" else {"last_name": full}
    if order == "last_first":  # Фамилия Имя Отчество
        names = {"last_name": parts[0], "first_name": parts[1]}
        if len(parts) > 2:
            names["middle_name"] = " ".join(parts[2:])
        return names
    names = {"first_name": parts[0], "last_name": parts[-1]}
    if len(parts) > 2:
        names["middle_name"] = " ".join(parts[1:-1])
    return names


def given_fields(plan: RowPlan, cells: list[Any]) -> dict[str, Any]:
    """The row as the body of a create request (only the fields the row has)."""
    if len(cells) > plan.width and any(_text(c) for c in cells[plan.width:]):
        raise RowError(f"the row has {len(cells)} cells, the header {plan.width} "
                       "(a stray delimiter or quote?)")
    given: dict[str, Any] = {}
    phones: list[str] = []
    emails: list[str] = []
    address: dict[str, str] = {}
    custom: dict[str, Any] = {}
    for index, target in plan.columns:
        cell = cells[index] if index < len(cells) else ""
        if isinstance(cell, str) and not cell.strip():
            continue
        if target == "birthday":
            given["birthday"] = _date(cell, plan.transform("birthday"))
            continue
        value = _text(cell)
        if not value:
            continue
        if target == "phone":
            phones += [p.strip() for p in _SEVERAL.split(value) if p.strip()]
        elif target == "email":
            emails += [e.strip() for e in re.split(r"[,;\s]+", value) if e.strip()]
        elif target.startswith("address."):
            address[target.split(".", 1)[1]] = value
        elif target.startswith("custom_fields."):
            custom[target.split(".", 1)[1]] = value
        elif target == "tags":
            separator = plan.transform("tags").separator or ","
            given["tags"] = [t.strip() for t in value.split(separator) if t.strip()]
        else:
            given[target] = _mapped(plan, target, value)
    if phones:
        given["phones"] = phones
    if emails:
        given["emails"] = emails
    if address:
        given["address"] = address
    if custom:
        given["custom_fields"] = custom
    split = plan.transform("full_name").split
    if split and given.get("full_name"):
        for name, value in _split_name(given["full_name"], split).items():
            given.setdefault(name, value)
    return given


def _pydantic_reason(exc: PydanticValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "row"
    return f"{where}: {first['msg']}"


def prepare_contact(plan: RowPlan, cells: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the card's columns, the row as a create body) or RowError."""
    given = given_fields(plan, cells)
    try:
        data = ContactCreate.model_validate({k: v for k, v in given.items() if k != "company"})
    except PydanticValidationError as exc:
        raise RowError(_pydantic_reason(exc)) from None
    first, middle, last = (normalize_name(data.first_name), normalize_name(data.middle_name),
                           normalize_name(data.last_name))
    full = normalize_name(data.full_name) or " ".join(p for p in (first, middle, last) if p)
    region = (plan.transform("phone").region or plan.region).upper()
    phones, seen = [], set()
    for raw in given.get("phones", []):
        try:
            e164 = normalize_phone(raw, region)
        except PhoneError as exc:
            raise RowError(f"phone {raw!r}: {exc}") from None
        if e164 not in seen:
            seen.add(e164)
            phones.append({"e164": e164, "original": raw, "label": None})
    emails, seen = [], set()
    for raw in given.get("emails", []):
        try:
            email = normalize_email(raw)
        except EmailError as exc:
            raise RowError(f"email {raw!r}: {exc}") from None
        if email not in seen:
            seen.add(email)
            emails.append({"email": email, "label": None})
    if not (full or phones or emails):
        raise RowError("the row has no name, phone or email")
    status = data.status or plan.statuses[0]
    if status not in plan.statuses:
        raise RowError(f"status {status!r} is not one of {plan.statuses} "
                       "(map it with transforms.status.map)")
    kind = data.kind or plan.kinds[0]
    if kind not in plan.kinds:
        raise RowError(f"kind {kind!r} is not one of {plan.kinds}")
    zone = data.timezone
    if zone is not None and not is_valid_timezone(zone):
        raise RowError(f"timezone {zone!r} is not an IANA time zone")
    if zone is None and phones:
        zone = timezone_for_phone(phones[0]["e164"], plan.timezone)
    custom: dict[str, Any] = {}
    if data.custom_fields or plan.definitions:
        try:
            custom = validate_custom_fields(plan.definitions, data.custom_fields or {},
                                            region=region, existing=None, user_ids=set())
        except DomainError as exc:
            reason = exc.errors[0]["msg"] if exc.errors else exc.detail
            raise RowError(f"custom fields: {reason}") from None
    record = {
        "first_name": first, "middle_name": middle, "last_name": last, "full_name": full,
        "phones": phones, "emails": emails,
        "address": data.address.model_dump(exclude_none=True) if data.address else None,
        "timezone": zone, "status": status, "kind": kind, "source": data.source,
        "birthday": data.birthday, "tags": normalize_tags(data.tags or []),
        "custom_fields": custom, "external_id": data.external_id,
        "company": given.get("company"),
        "search_text": search_blob(full, data.external_id, phones=phones, emails=emails),
    }
    return record, given


def prepare_company(plan: RowPlan, cells: list[Any]) -> CompanyCreate:
    given = given_fields(plan, cells)
    try:
        data = CompanyCreate.model_validate(given)
    except PydanticValidationError as exc:
        raise RowError(_pydantic_reason(exc)) from None
    if data.kind is not None and data.kind not in plan.kinds:
        raise RowError(f"kind {data.kind!r} is not one of {plan.kinds}")
    return data


def contact_keys(record: dict[str, Any], dedupe_on: list[str]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    if "phone" in dedupe_on:
        keys |= {("phone", p["e164"]) for p in record["phones"]}
    if "email" in dedupe_on:
        keys |= {("email", e["email"]) for e in record["emails"]}
    if "external_id" in dedupe_on and record["external_id"]:
        keys.add(("external_id", record["external_id"]))
    return keys


Prepared = tuple[int, list[Any], dict[str, Any] | None, dict[str, Any] | str]
_worker_plan: RowPlan | None = None


def prepare_contacts(plan: RowPlan, batch: list[tuple[int, list[Any]]]) -> list[Prepared]:
    """(row number, cells, record, create body) per row, or (…, None, reason)."""
    result: list[Prepared] = []
    for number, cells in batch:
        try:
            record, given = prepare_contact(plan, cells)
        except RowError as exc:
            result.append((number, cells, None, str(exc)))
            continue
        result.append((number, cells, record, given))
    return result


def init_worker(plan: RowPlan) -> None:
    """Process-pool initializer: the plan travels once, not with every batch."""
    global _worker_plan
    _worker_plan = plan


def prepare_contacts_in_worker(batch: list[tuple[int, list[Any]]]) -> list[Prepared]:
    assert _worker_plan is not None
    return prepare_contacts(_worker_plan, batch)
