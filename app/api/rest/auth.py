"""REST: /api/v1/auth/token — OAuth2 password and refresh_token grants (form-encoded)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from app.api.deps import PublicSession, client_address, enforce_rate_limit, resources
from app.domain.workspaces import auth
from app.domain.workspaces.schemas import TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


GRANT_TYPES = ("password", "refresh_token")
_LIMITS = {"grant_type": 50, "username": 320, "password": 200, "refresh_token": 200,
           "workspace_id": 36}
# The form is read by hand, so that every refusal is OAuth2's 400 with its `error` code
# (RFC 6749 5.2) rather than a 422 validation problem; this documents it.
_TOKEN_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"], "properties": {
        "grant_type": {"type": "string", "enum": list(GRANT_TYPES)},
        "username": {"type": "string", "maxLength": 320,
                     "description": "The login email, for `password`"},
        "password": {"type": "string", "maxLength": 200, "format": "password"},
        "refresh_token": {"type": "string", "maxLength": 200,
                          "description": "For `refresh_token`; rotated on use"},
        "workspace_id": {"type": "string", "format": "uuid", "description":
                         "Needed only when one login belongs to several workspaces"}}}}}}


@router.post("/token", response_model=TokenResponse, openapi_extra={"requestBody": _TOKEN_FORM})
async def issue_token(request: Request, session: PublicSession) -> TokenResponse:
    """`grant_type=password` with `username` (email) and `password`, or
    `grant_type=refresh_token` with `refresh_token` (rotated on use). A refused request is a
    400 whose problem carries OAuth2's `error`: `invalid_request` (a parameter missing,
    repeated, too long or malformed), `unsupported_grant_type`, or `invalid_grant` (wrong
    credentials)."""
    given = await _token_form(request)
    grant_type = given.get("grant_type")
    if not grant_type:
        raise auth.TokenRequestError("grant_type is required")
    if grant_type not in GRANT_TYPES:
        raise auth.UnsupportedGrantTypeError(
            f"grant_type {grant_type!r} is not supported; use password or refresh_token")
    username, password = given.get("username"), given.get("password")
    refresh_token = given.get("refresh_token")
    settings = resources(request).settings
    lifetimes = {"secret_key": settings.secret_key,
                 "access_minutes": settings.access_token_minutes,
                 "refresh_days": settings.refresh_token_days}
    if grant_type == "password":
        if not username or not password:
            raise auth.TokenRequestError("username and password are required")
        await enforce_rate_limit(request, resources(request),
                                 f"login:{client_address(request)}:{username.strip().lower()}",
                                 settings.login_attempts_per_minute)
        tokens = await auth.password_grant(session, email=username, password=password,
                                           workspace_id=_workspace_id(given.get("workspace_id")),
                                           **lifetimes)
    else:
        if not refresh_token:
            raise auth.TokenRequestError("refresh_token is required")
        tokens = await auth.refresh_grant(session, refresh_token=refresh_token, **lifetimes)
    return TokenResponse.model_validate(tokens)


async def _token_form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        raise auth.TokenRequestError("send the parameters form-encoded "
                                     "(application/x-www-form-urlencoded)")
    form = await request.form()
    given: dict[str, str] = {}
    for name, value in form.multi_items():
        if name not in _LIMITS:
            continue  # RFC 6749 3.2: unknown parameters are ignored
        if name in given:
            raise auth.TokenRequestError(f"{name} is given more than once")
        if not isinstance(value, str) or len(value) > _LIMITS[name]:
            raise auth.TokenRequestError(f"{name} must be text of at most {_LIMITS[name]} "
                                         "characters")
        given[name] = value
    return given


def _workspace_id(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise auth.TokenRequestError("workspace_id is not a workspace id") from None
