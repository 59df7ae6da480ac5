"""REST: /api/v1/auth/token — OAuth2 password and refresh_token grants (form-encoded)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request

from app.api.deps import PublicSession, client_address, enforce_rate_limit, resources
from app.domain.shared.errors import ValidationError
from app.domain.workspaces import auth
from app.domain.workspaces.schemas import TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
async def issue_token(
    request: Request,
    session: PublicSession,
    grant_type: Annotated[Literal["password", "refresh_token"], Form()],
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    workspace_id: Annotated[uuid.UUID | None, Form(
        description="Needed only when one login belongs to several workspaces")] = None,
) -> TokenResponse:
    """`grant_type=password` with `username` (email) and `password`, or
    `grant_type=refresh_token` with `refresh_token` (rotated on use)."""
    settings = resources(request).settings
    lifetimes = {"secret_key": settings.secret_key,
                 "access_minutes": settings.access_token_minutes,
                 "refresh_days": settings.refresh_token_days}
    if grant_type == "password":
        if not username or not password:
            raise ValidationError.at(["body", "username"], "username and password are required")
        await enforce_rate_limit(request, resources(request),
                                 f"login:{client_address(request)}:{username.strip().lower()}",
                                 settings.login_attempts_per_minute)
        tokens = await auth.password_grant(session, email=username, password=password,
                                           workspace_id=workspace_id, **lifetimes)
    else:
        if not refresh_token:
            raise ValidationError.at(["body", "refresh_token"], "refresh_token is required")
        tokens = await auth.refresh_grant(session, refresh_token=refresh_token, **lifetimes)
    return TokenResponse.model_validate(tokens)
