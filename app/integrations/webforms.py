"""Website forms, the HTTP side: reading a submission's body (JSON or form-encoded, capped),
the CORS answer for a form's allowed origins, and the embeddable script."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson

from app.domain.forms.schemas import UTM_KEYS, PublicForm
from app.domain.shared.errors import DomainError, ForbiddenError
from app.integrations.webforms_embed import SCRIPT

MAX_KEYS = 200
ALLOWED_HEADERS = "Content-Type, Idempotency-Key"
EXPOSED_HEADERS = ("Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                   "Idempotent-Replayed")


class MalformedBodyError(DomainError):
    status, title, type_slug = 400, "Malformed request", "malformed"


class UnsupportedMediaTypeError(DomainError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class BodyTooLargeError(DomainError):
    status, title, type_slug = 413, "Payload too large", "too-large"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_form_encoded(content_type: str | None) -> bool:
    return media_type(content_type) == "application/x-www-form-urlencoded"


def parse_submission(content_type: str | None, raw: bytes) -> dict[str, Any]:
    """The submitted keys and values: a JSON object, or `application/x-www-form-urlencoded`
    (each key once)."""
    media = media_type(content_type)
    if not raw.strip():
        return {}
    if media == "application/json" or (media.startswith("application/")
                                       and media.endswith("+json")):
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedBodyError("the body is not valid JSON") from exc
        if not isinstance(payload, dict):
            raise MalformedBodyError("send a JSON object of field names and values")
        if len(payload) > MAX_KEYS:
            raise BodyTooLargeError(f"at most {MAX_KEYS} keys")
        return payload
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_KEYS)
        except UnicodeDecodeError as exc:
            raise MalformedBodyError("a form-encoded body is UTF-8") from exc
        except ValueError as exc:
            raise BodyTooLargeError(f"at most {MAX_KEYS} keys") from exc
        payload: dict[str, Any] = {}
        for key, value in pairs:
            if key in payload:
                raise MalformedBodyError(f"the key {key[:100]!r} is given twice", errors=[{
                    "loc": ["body", key[:100]], "msg": "give each field once",
                    "type": "duplicate"}])
            payload[key] = value
        return payload
    raise UnsupportedMediaTypeError("send the submission as application/json or "
                                    "application/x-www-form-urlencoded")


def cors_headers(allowed: frozenset[str], origin: str | None) -> dict[str, str]:
    """The CORS headers for a request from `origin`: none for a request without one (a
    server, curl); a refusal (403) for an origin the form does not list."""
    if origin is None:
        return {}
    if origin not in allowed:
        raise ForbiddenError(f"the form does not take submissions from {origin[:300]}; add it "
                             "to the form's allowed_origins")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": EXPOSED_HEADERS}


def preflight_headers(allowed: frozenset[str], origin: str | None,
                      method: str | None) -> dict[str, str]:
    if origin is None or origin not in allowed or (method or "").upper() != "POST":
        raise ForbiddenError("this origin may not post the form")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers":
            ALLOWED_HEADERS, "Access-Control-Max-Age": "600"}


def _script_json(value: Any) -> str:
    """JSON that is safe inside a script: no `</script>`, no line separators."""
    text = orjson.dumps(value).decode()
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def embed_script(form: PublicForm) -> tuple[str, str]:
    """The script and its ETag."""
    body = SCRIPT.replace("__RELATA_FORM__", _script_json(form.model_dump(mode="json"))) \
        .replace("__RELATA_UTM__", _script_json(list(UTM_KEYS)))
    return body, '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
