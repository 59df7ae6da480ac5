"""REST: /api/v1/custom-fields — typed field definitions per object type."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request, Response, status

from app.api.deps import Ctx
from app.api.rest.common import ListResponse, expected_version, set_etag
from app.domain.customfields import service
from app.domain.customfields.models import CustomFieldDefinition
from app.domain.customfields.schemas import CustomFieldCreate, CustomFieldRead, CustomFieldUpdate

router = APIRouter(prefix="/api/v1/custom-fields", tags=["custom-fields"])


def field_read(definition: CustomFieldDefinition) -> CustomFieldRead:
    return CustomFieldRead.model_validate(definition, from_attributes=True)


@router.get("", response_model=ListResponse[CustomFieldRead])
async def list_custom_fields(ctx: Ctx, object_type: Literal["contact", "company"] | None = None
                             ) -> ListResponse[CustomFieldRead]:
    rows = await service.list_definitions(ctx.session, object_type=object_type)
    return ListResponse(data=[field_read(d) for d in rows], next_cursor=None)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomFieldRead)
async def create_custom_field(body: CustomFieldCreate, ctx: Ctx,
                              response: Response) -> CustomFieldRead:
    definition = await service.create_definition(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/custom-fields/{definition.id}"
    set_etag(response, definition.version)
    return field_read(definition)


@router.get("/{field_id}", response_model=CustomFieldRead)
async def get_custom_field(field_id: uuid.UUID, ctx: Ctx, response: Response) -> CustomFieldRead:
    definition = await service.get_definition(ctx.session, field_id)
    set_etag(response, definition.version)
    return field_read(definition)


@router.patch("/{field_id}", response_model=CustomFieldRead)
async def update_custom_field(field_id: uuid.UUID, body: CustomFieldUpdate, request: Request,
                              ctx: Ctx, response: Response) -> CustomFieldRead:
    """Send `If-Match: "<version>"` to refuse a lost update (412)."""
    definition = await service.update_definition(ctx.session, ctx.principal, field_id, body,
                                                 expected_version=expected_version(request))
    set_etag(response, definition.version)
    return field_read(definition)


@router.delete("/{field_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_custom_field(field_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    await service.delete_definition(ctx.session, ctx.principal, field_id,
                                    expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
