"""Fields that contacts and companies share: phones, emails, tags, owner, custom fields."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.customfields.service import definitions_for
from app.domain.customfields.validation import validate_custom_fields
from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import (
    EmailError,
    PhoneError,
    fold_for_search,
    normalize_email,
    normalize_phone,
)
from app.domain.shared.writecache import lookups

Label = Annotated[str, StringConstraints(max_length=50)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=50, description="Any common format")
    label: Label | None = None


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    label: Label | None = None


class PhoneOut(BaseModel):
    e164: str
    original: str
    label: str | None = None


class EmailOut(BaseModel):
    email: str
    label: str | None = None


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: str | None = Field(default=None, max_length=500)
    city: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=50)
    country: str | None = Field(default=None, max_length=100)


PhonesIn = list[PhoneIn | Annotated[str, StringConstraints(min_length=1, max_length=50)]]
EmailsIn = list[EmailIn | Annotated[str, StringConstraints(min_length=3, max_length=320)]]


def normalize_phones(items: list[Any], region: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        number, label = (item, None) if isinstance(item, str) else (item.number, item.label)
        try:
            e164 = normalize_phone(number, region)
        except PhoneError as exc:
            raise ValidationError.at(["body", "phones", i], str(exc), "phone") from exc
        if e164 not in seen:
            seen.add(e164)
            result.append({"e164": e164, "original": number, "label": label})
    return result


def normalize_emails(items: list[Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        raw, label = (item, None) if isinstance(item, str) else (item.email, item.label)
        try:
            email = normalize_email(raw)
        except EmailError as exc:
            raise ValidationError.at(["body", "emails", i], str(exc), "email") from exc
        if email not in seen:
            seen.add(email)
            result.append({"email": email, "label": label})
    return result


def normalize_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags if t.strip()))


def check_choice(value: str, allowed: list[str], field: str) -> None:
    if value not in allowed:
        raise ValidationError.at(["body", field], f"must be one of {allowed}")


def search_blob(*parts: str | None, phones: list[dict[str, Any]] = (),  # type: ignore[assignment]
                emails: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    words = [p for p in parts if p]
    for phone in phones:
        digits = phone["e164"].lstrip("+")
        words.append(digits)
        original_digits = "".join(ch for ch in phone["original"] if ch.isdigit())
        if original_digits and original_digits != digits:
            words.append(original_digits)
    words.extend(e["email"] for e in emails)
    return fold_for_search(" ".join(words))


async def validated_custom_fields(session: AsyncSession, object_type: str,
                                  values: dict[str, Any] | None, *, region: str,
                                  existing: dict[str, Any] | None,
                                  enforce_required: bool = True) -> dict[str, Any]:
    """Merge-patch `values` into `existing`; `None` (a JSON null) clears them all."""
    from app.domain.workspaces.service import existing_user_ids

    if values is None:
        values, existing = {}, {}

    cache = lookups(session)
    if cache is not None and object_type in cache.definitions:
        definitions = cache.definitions[object_type]
    else:
        definitions = await definitions_for(session, object_type)
        if cache is not None:
            cache.definitions[object_type] = definitions
    if not definitions and not values:
        return dict(existing or {})
    user_refs = [uuid.UUID(str(v)) for k, v in values.items()
                 if any(d.key == k and d.type == "user" for d in definitions)
                 and _is_uuid(v)]
    user_ids = await existing_user_ids(session, user_refs)
    return validate_custom_fields(definitions, values, region=region, existing=existing,
                                  user_ids=user_ids, enforce_required=enforce_required)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
