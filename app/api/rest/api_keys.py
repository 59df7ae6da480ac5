"""REST: /api/v1/api-keys — the secret is shown once, at creation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import Ctx
from app.api.rest.common import ListResponse
from app.domain.workspaces import service
from app.domain.workspaces.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


@router.get("", response_model=ListResponse[ApiKeyRead])
async def list_api_keys(ctx: Ctx) -> ListResponse[ApiKeyRead]:
    keys = await service.list_api_keys(ctx.session, ctx.principal)
    return ListResponse(data=[ApiKeyRead.model_validate(k, from_attributes=True) for k in keys],
                        next_cursor=None)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, ctx: Ctx, response: Response) -> ApiKeyCreated:
    api_key, token = await service.create_api_key(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/api-keys/{api_key.id}"
    return ApiKeyCreated(**ApiKeyRead.model_validate(api_key, from_attributes=True).model_dump(),
                         key=token)


@router.post("/{key_id}/revoke", response_model=ApiKeyRead)
async def revoke_api_key(key_id: uuid.UUID, ctx: Ctx) -> ApiKeyRead:
    api_key = await service.revoke_api_key(ctx.session, ctx.principal, key_id)
    return ApiKeyRead.model_validate(api_key, from_attributes=True)
