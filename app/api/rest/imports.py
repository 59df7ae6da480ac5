"""REST: /api/v1/imports — upload a file (streamed to disk), follow the job, get the
rejected rows, cancel, undo."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from app.api.deps import Bearer, Ctx, authenticate, resources
from app.api.rest.common import ListResponse
from app.db import unit_of_work
from app.domain.imports import service
from app.domain.imports.schemas import ImportOptions, ImportRead
from app.domain.shared.errors import DomainError, ValidationError

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])

CHUNK = 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # the form's other parts and boundaries


class PayloadTooLargeError(DomainError):
    status, title, type_slug = 413, "Payload too large", "too-large"


class LengthRequiredError(DomainError):
    status, title, type_slug = 411, "Length required", "length-required"


class UnsupportedUploadError(DomainError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "CSV (any common encoding and delimiter) or XLSX"},
            "options": {"type": "string", "description": "ImportOptions as JSON"}}}}}}}


def _options(raw: Any) -> ImportOptions:
    if raw is None:
        return ImportOptions()
    if not isinstance(raw, str):
        raise ValidationError.at(["body", "options"], "options is a JSON text field")
    try:
        return ImportOptions.model_validate_json(raw)
    except PydanticValidationError as exc:
        errors = [{"loc": ["body", "options", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        raise ValidationError(errors[0]["msg"], errors=errors) from None


async def _save(upload: UploadFile, directory: Path, limit: int) -> tuple[Path, int]:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = Path(upload.filename or "").suffix.lower()[:8] or ".csv"
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"import files are limited to {limit} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise ValidationError.at(["body", "file"], "the file is empty")
    return path, size


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ImportRead,
             openapi_extra=_UPLOAD_BODY, responses={411: {"description": "Length required"},
                                                    415: {"description": "Not CSV or XLSX"}})
async def create_import(
    request: Request, response: Response,
    credentials: Bearer,
) -> ImportRead:
    """Upload a CSV or XLSX file (multipart field `file`, up to 200 MB) with `options` (JSON:
    object, mapping, transforms, dedupe_on, on_duplicate, dry_run, silent, …). The file's
    encoding, delimiter and header are detected and the mapping is suggested from the headers
    when not given; the worker then runs the import. Owners, admins and API keys only."""
    principal = await authenticate(request, credentials)
    principal.require_admin()
    settings = resources(request).settings
    length = request.headers.get("content-length")
    if not length or not length.isdigit():
        raise LengthRequiredError("send the upload with a Content-Length")
    if int(length) > settings.import_max_bytes + MULTIPART_SLACK:
        raise PayloadTooLargeError(f"import files are limited to {settings.import_max_bytes} "
                                   "bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedUploadError("send the file as multipart/form-data (field `file`)")
    try:
        # Starlette spools file parts to a temporary file on disk past 1 MB.
        form = await request.form(max_files=1, max_fields=5, max_part_size=64 * 1024)
    except MultiPartException as exc:
        raise ValidationError.at(["body"], f"malformed multipart body: {exc.message}") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationError.at(["body", "file"], "attach the file as the `file` field")
        options = _options(form.get("options"))
        directory = Path(settings.import_dir) / str(principal.workspace_id)
        path, size = await _save(upload, directory, settings.import_max_bytes)
    finally:
        await form.close()
    try:
        async with unit_of_work(resources(request).sessions, principal.workspace_id) as session:
            job = await service.create_import(session, principal, path=path,
                                              filename=upload.filename or path.name,
                                              size=size, options=options)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    return service.to_read(job)


@router.get("", response_model=ListResponse[ImportRead])
async def list_imports(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: uuid.UUID | None = None) -> ListResponse[ImportRead]:
    """Imports, newest first."""
    jobs = await service.list_imports(ctx.session, ctx.principal, limit=limit + 1,
                                      before=cursor)
    page = jobs[:limit]
    return ListResponse(data=[service.to_read(j) for j in page],
                        next_cursor=str(page[-1].id) if len(jobs) > limit else None)


@router.get("/{import_id}", response_model=ImportRead)
async def get_import(import_id: uuid.UUID, ctx: Ctx) -> ImportRead:
    """Progress: total, processed, created, updated, skipped, failed, rows per second, state
    (queued, running, done, failed, canceled, undone) and the first rejected rows."""
    return service.to_read(await service.get_import(ctx.session, ctx.principal, import_id))


@router.get("/{import_id}/rejected", response_class=StreamingResponse, responses={200: {
    "description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def rejected_rows(import_id: uuid.UUID, request: Request,
                        credentials: Bearer) -> StreamingResponse:
    """The rejected rows as CSV: the file's own columns, then `row` and `reason`."""
    principal = await authenticate(request, credentials)
    sessions = resources(request).sessions
    async with unit_of_work(sessions, principal.workspace_id) as session:
        job = await service.get_import(session, principal, import_id)

    async def body() -> AsyncIterator[bytes]:
        async with unit_of_work(sessions, principal.workspace_id) as session:
            async for chunk in service.rejected_rows_csv(session, job):
                yield chunk

    name = f"{Path(job.filename).stem or 'import'}-rejected.csv"
    # RFC 6266: an ASCII fallback, and the real (often Cyrillic) name percent-encoded.
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})


@router.post("/{import_id}/cancel", response_model=ImportRead)
async def cancel_import(import_id: uuid.UUID, ctx: Ctx) -> ImportRead:
    """Stop before the next batch; what was committed stays until undone."""
    return service.to_read(await service.cancel_import(ctx.session, ctx.principal, import_id))


@router.post("/{import_id}/undo", response_model=ImportRead)
async def undo_import(import_id: uuid.UUID, ctx: Ctx) -> ImportRead:
    """Delete (softly, restorable) every record the import created."""
    return service.to_read(await service.undo_import(ctx.session, ctx.principal, import_id))
