"""REST: /api/v1/exports/{object} — a streamed CSV or JSON Lines file of the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.deps import Bearer, authenticate, resources
from app.api.rest.common import reject_repeated_params
from app.db import set_workspace
from app.domain.customfields.service import require_defined_filters
from app.domain.exports import service
from app.domain.shared.clock import clock
from app.domain.shared.listing import conditions_from_query, custom_field_key
from app.domain.shared.principal import Principal

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

RESERVED = {"format", "q", "include_deleted"}
ExportObject = Literal["contacts", "companies", "deals", "tasks", "activities"]


async def _export_chunks(sessions: async_sessionmaker[AsyncSession], principal: Principal,
                         query: Any, fmt: str) -> AsyncIterator[bytes]:
    async with sessions() as session, session.begin():
        await session.execute(text("SET TRANSACTION READ ONLY"))
        await set_workspace(session, principal.workspace_id)
        async for chunk in service.stream_export(session, query, fmt):
            yield chunk


@router.get("/{object_name}", response_class=StreamingResponse, responses={200: {
    "description": "The file, streamed",
    "content": {"text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def export_records(
    object_name: ExportObject,
    request: Request,
    credentials: Bearer,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "csv",
    q: Annotated[str | None, Query(max_length=200)] = None,
    include_deleted: bool = False,
) -> StreamingResponse:
    """Every record you can see that matches the list endpoint's filters (`status=hot`,
    `created_at__gte=…`, `company.name__contains=…`, `custom_fields.key__op=…`), as CSV
    (RFC 4180, UTF-8, formula cells prefixed with `'`) or JSON Lines. The file is one
    consistent snapshot, streamed."""
    principal = await authenticate(request, credentials)
    reject_repeated_params(request)
    spec = service.spec_for(object_name)
    params = dict(request.query_params)
    conditions = conditions_from_query(spec.list_spec, params, RESERVED)
    if any(custom_field_key(spec.list_spec, name) for name in params):
        async with resources(request).sessions() as session, session.begin():
            await set_workspace(session, principal.workspace_id)
            await require_defined_filters(session, spec.list_spec, params, ["query"], query=True)
    query = service.export_query(spec, principal, conditions=conditions, q=q,
                                 include_deleted=include_deleted, fmt=format)
    chunks = _export_chunks(resources(request).sessions, principal, query, format)
    try:
        first = await anext(chunks)  # a refused query is still a problem response here
    except BaseException:
        await chunks.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    filename = f"{object_name}-{clock.now():%Y%m%d-%H%M%S}.{format}"
    return StreamingResponse(body(), media_type=service.MEDIA_TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})
