"""Typed validation of custom field values against their definitions (pure)."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import EmailError, PhoneError, normalize_email, normalize_phone

FIELD_TYPES = ("text", "number", "money", "date", "datetime", "boolean", "select",
               "multiselect", "phone", "email", "url", "user")


def _fail(key: str, msg: str) -> ValidationError:
    return ValidationError.at(["body", "custom_fields", key], msg, "custom_field")


def coerce_value(definition: Any, value: Any, *, region: str,
                 user_ids: set[uuid.UUID] | None = None) -> Any:
    """Return the stored form of `value` for `definition`, or raise a precise 422."""
    key, kind = definition.key, definition.type
    if value is None:
        if definition.required:
            raise _fail(key, "is required")
        return None
    if kind == "text":
        if not isinstance(value, str):
            raise _fail(key, "must be text")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise _fail(key, "must be a finite number")
        return value
    if kind == "money":
        if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
            raise _fail(key, 'must be {"amount": "12.50", "currency": "EUR"}')
        try:
            amount = Decimal(str(value["amount"]))
        except InvalidOperation as exc:
            raise _fail(key, "amount must be a decimal string") from exc
        currency = str(value["currency"])
        if not amount.is_finite() or len(currency) != 3 or not currency.isalpha():
            raise _fail(key, "amount must be finite and currency an ISO 4217 code")
        return {"amount": str(amount), "currency": currency.upper()}
    if kind == "date":
        if not isinstance(value, str):
            raise _fail(key, "must be a date like 2026-03-31")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise _fail(key, "must be a date like 2026-03-31") from exc
    if kind == "datetime":
        if not isinstance(value, str):
            raise _fail(key, "must be an RFC 3339 time with offset")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _fail(key, "must be an RFC 3339 time with offset") from exc
        if parsed.tzinfo is None:
            raise _fail(key, "must have a UTC offset")
        return parsed.isoformat()
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(key, "must be true or false")
        return value
    if kind == "select":
        if value not in definition.options:
            raise _fail(key, f"must be one of {definition.options}")
        return value
    if kind == "multiselect":
        if not isinstance(value, list) or any(v not in definition.options for v in value):
            raise _fail(key, f"must be a list of values from {definition.options}")
        return list(dict.fromkeys(value))
    if kind == "phone":
        try:
            return normalize_phone(str(value), region)
        except PhoneError as exc:
            raise _fail(key, str(exc)) from exc
    if kind == "email":
        try:
            return normalize_email(str(value))
        except EmailError as exc:
            raise _fail(key, str(exc)) from exc
    if kind == "url":
        parsed_url = urlparse(str(value))
        if parsed_url.scheme not in ("http", "https") or not parsed_url.netloc:
            raise _fail(key, "must be an http(s) URL")
        return str(value)
    if kind == "user":
        try:
            user_id = uuid.UUID(str(value))
        except ValueError as exc:
            raise _fail(key, "must be a user id") from exc
        if user_ids is not None and user_id not in user_ids:
            raise _fail(key, "no such user in this workspace")
        return str(user_id)
    raise _fail(key, f"unknown field type {kind}")


def validate_custom_fields(definitions: list[Any], values: dict[str, Any], *, region: str,
                           existing: dict[str, Any] | None = None,
                           user_ids: set[uuid.UUID] | None = None,
                           enforce_required: bool = True) -> dict[str, Any]:
    """Merge-patch `values` into `existing` and validate the result against definitions."""
    by_key = {d.key: d for d in definitions}
    unknown = [k for k in values if k not in by_key]
    if unknown:
        raise ValidationError(
            "unknown custom fields", errors=[
                {"loc": ["body", "custom_fields", k], "msg": "no such custom field is defined",
                 "type": "custom_field"} for k in unknown])
    result = dict(existing or {})
    for key, value in values.items():
        coerced = coerce_value(by_key[key], value, region=region, user_ids=user_ids)
        if coerced is None:
            result.pop(key, None)
        else:
            result[key] = coerced
    missing = [d.key for d in definitions
               if enforce_required and d.required and d.key not in result]
    if missing:
        raise ValidationError("required custom fields are missing", errors=[
            {"loc": ["body", "custom_fields", k], "msg": "is required", "type": "custom_field"}
            for k in missing])
    return result
