"""REST: /api/v1/workspaces — bootstrap a workspace, read and configure the current one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import Ctx, PublicSession, client_address, enforce_rate_limit, resources
from app.domain.shared.errors import ForbiddenError
from app.domain.workspaces import service
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.schemas import (
    WorkspaceCreate,
    WorkspaceCreated,
    WorkspaceRead,
    WorkspaceUpdate,
)

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WorkspaceCreated)
async def create_workspace(body: WorkspaceCreate, request: Request, session: PublicSession,
                           response: Response) -> WorkspaceCreated:
    """Sign-up: a workspace, its owner and a first API key (shown once). Public while
    `RELATA_ALLOW_SIGNUP` is true (the default outside production)."""
    res = resources(request)
    if not res.settings.signup_allowed:
        raise ForbiddenError("sign-up is closed on this installation; use `relata workspace "
                             "create`")
    # public and unauthenticated: each address may open a few workspaces a minute
    await enforce_rate_limit(request, res, f"signup:{client_address(request)}",
                             res.settings.signups_per_minute)
    workspace, owner, key = await service.create_workspace(session, body)
    response.headers["Location"] = "/api/v1/workspaces/current"
    return WorkspaceCreated(workspace=WorkspaceRead.model_validate(workspace, from_attributes=True),
                            owner_id=owner.id, api_key=key)


@router.get("/current", response_model=WorkspaceRead)
async def get_current_workspace(ctx: Ctx) -> WorkspaceRead:
    workspace = await current_workspace(ctx.session, ctx.principal)
    return WorkspaceRead.model_validate(workspace, from_attributes=True)


@router.patch("/current", response_model=WorkspaceRead)
async def update_current_workspace(body: WorkspaceUpdate, ctx: Ctx) -> WorkspaceRead:
    """Name, default phone region, time zone and settings (status/kind lists, whether agents
    see their team's records)."""
    workspace = await service.update_workspace(ctx.session, ctx.principal, body)
    return WorkspaceRead.model_validate(workspace, from_attributes=True)
