"""Import jobs: create from an uploaded file, read progress, cancel, undo, rejected rows."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.customfields.service import definitions_for
from app.domain.exports.service import neutralize
from app.domain.imports.files import inspect_csv, inspect_xlsx, sniff_format
from app.domain.imports.mapping import check_mapping, suggest_mapping
from app.domain.imports.models import ImportJob, ImportRecord, ImportRejection
from app.domain.imports.schemas import OBJECT_TYPES, ImportOptions, ImportRead
from app.domain.outbox.models import Event
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, NotFoundError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal, Role

MAX_PAGE = 200
_UNDO_TABLES = {"activity": "activities", "task": "tasks", "deal": "deals",
                "contact": "contacts", "company": "companies"}


async def create_import(session: AsyncSession, principal: Principal, *, path: Path,
                        filename: str, size: int, options: ImportOptions) -> ImportJob:
    """Read the file's layout, settle the mapping, and queue the job for the worker."""
    principal.require_admin()
    file_format = sniff_format(path, filename)
    if file_format == "xlsx":
        layout = inspect_xlsx(path, has_header=options.has_header, sheet=options.sheet)
    else:
        layout = inspect_csv(path, encoding=options.encoding, delimiter=options.delimiter,
                             has_header=options.has_header)
    mapping = options.mapping if options.mapping is not None \
        else suggest_mapping(options.object, layout.columns)
    object_type = OBJECT_TYPES[options.object]
    keys = {d.key for d in await definitions_for(session, object_type)}
    check_mapping(options.object, mapping, layout.columns, keys)
    stored = options.model_dump(mode="json", exclude={"mapping"})
    job = ImportJob(workspace_id=principal.workspace_id, object=options.object,
                    dry_run=options.dry_run, silent=options.silent, filename=filename[:255],
                    path=str(path), size_bytes=size, file_format=layout.file_format,
                    encoding=layout.encoding, delimiter=layout.delimiter,
                    has_header=layout.has_header, columns=layout.columns,
                    mapping={h: mapping.get(h) for h in layout.columns}, options=stored,
                    created_by=principal.actor)
    session.add(job)
    await session.flush()
    return job


def _sees_all(principal: Principal) -> bool:
    return principal.kind != "user" or principal.role in (Role.owner, Role.admin)


async def get_import(session: AsyncSession, principal: Principal,
                     import_id: uuid.UUID, *, for_update: bool = False) -> ImportJob:
    query = select(ImportJob).where(ImportJob.id == import_id)
    if not _sees_all(principal):
        query = query.where(ImportJob.created_by == principal.actor)
    if for_update:
        query = query.with_for_update()
    job = (await session.execute(query)).scalar_one_or_none()
    if job is None:
        raise NotFoundError(f"import {import_id} not found")
    return job


async def list_imports(session: AsyncSession, principal: Principal, *, limit: int,
                       before: uuid.UUID | None) -> list[ImportJob]:
    """Newest first; `before` is the last id of the previous page."""
    query = select(ImportJob).order_by(ImportJob.id.desc()).limit(min(limit, MAX_PAGE))
    if not _sees_all(principal):
        query = query.where(ImportJob.created_by == principal.actor)
    if before is not None:
        query = query.where(ImportJob.id < before)
    return list((await session.execute(query)).scalars())


def to_read(job: ImportJob) -> ImportRead:
    rate = None
    if job.started_at is not None and job.processed:
        seconds = ((job.finished_at or clock.now()) - job.started_at).total_seconds()
        rate = round(job.processed / seconds, 1) if seconds > 0 else None
    data = {name: getattr(job, name) for name in ImportRead.model_fields
            if name != "rows_per_second"}
    return ImportRead.model_validate({**data, "rows_per_second": rate})


async def cancel_import(session: AsyncSession, principal: Principal,
                        import_id: uuid.UUID) -> ImportJob:
    """A queued or running import stops before its next batch; committed batches stay
    (undo removes them)."""
    principal.require_write()
    job = await get_import(session, principal, import_id, for_update=True)
    if job.state in ("queued", "running"):
        job.state, job.finished_at = "canceled", clock.now()
        job.updated_at = job.finished_at
    elif job.state != "canceled":
        raise ConflictError(f"the import is {job.state}; only a queued or running import "
                            "can be canceled")
    return job


async def undo_import(session: AsyncSession, principal: Principal,
                      import_id: uuid.UUID) -> ImportJob:
    """Soft-delete every record the import created (restorable as any deleted record);
    cards it updated keep their new values, which their history records."""
    principal.require_admin()
    job = await get_import(session, principal, import_id, for_update=True)
    if job.state in ("queued", "running"):
        raise ConflictError("cancel the import first, then undo it")
    if job.state == "undone":
        return job
    if job.dry_run:
        raise ConflictError("a dry run wrote nothing to undo")
    now = clock.now()
    for entity_type, table in _UNDO_TABLES.items():
        created = select(ImportRecord.entity_id).where(
            ImportRecord.import_id == job.id, ImportRecord.entity_type == entity_type,
            ImportRecord.action == "created")
        rows = await session.execute(text(
            f"UPDATE {table} SET deleted_at = :now, updated_at = :now, updated_by = :actor, "
            f"version = version + 1 WHERE deleted_at IS NULL AND id IN "
            f"(SELECT entity_id FROM import_records WHERE import_id = :import_id "
            f"AND entity_type = :entity AND action = 'created') RETURNING id, version"),
            {"now": now, "actor": principal.actor, "import_id": job.id, "entity": entity_type})
        undone = rows.all()
        if entity_type == "contact":
            from app.domain.contacts.models import ContactIdentity

            await session.execute(delete(ContactIdentity).where(
                ContactIdentity.contact_id.in_(created)))
        if undone and not job.silent:
            await session.execute(insert(Event), [
                {"workspace_id": job.workspace_id, "id": new_id(),
                 "type": f"{entity_type}.deleted", "entity_type": entity_type,
                 "entity_id": entity_id, "actor": principal.actor,
                 "before": {"deleted_at": None, "version": version - 1},
                 "after": {"deleted_at": now.isoformat(), "version": version},
                 "changed": ["deleted_at", "version"], "occurred_at": now, "depth": 0}
                for entity_id, version in undone])
    job.state, job.undone_at, job.updated_at = "undone", now, now
    return job


async def rejected_rows_csv(session: AsyncSession, job: ImportJob) -> AsyncIterator[bytes]:
    """The rejected rows as they were in the file, then their row number and the reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*job.columns, "row", "reason"])
    yield ("\ufeff" + buffer.getvalue()).encode()  # a BOM: Excel then reads UTF-8
    result = await session.stream(
        select(ImportRejection.row_number, ImportRejection.reason, ImportRejection.cells)
        .where(ImportRejection.import_id == job.id).order_by(ImportRejection.row_number)
        .execution_options(yield_per=1000))
    width = len(job.columns)
    async for rows in result.partitions(1000):
        buffer.seek(0)
        buffer.truncate()
        for number, reason, cells in rows:
            cells = list(cells)[:width] + [""] * (width - len(cells))
            writer.writerow([*cells, number, neutralize(reason)])
        yield buffer.getvalue().encode()


def options_of(job: ImportJob) -> dict[str, Any]:
    return {**job.options, "mapping": job.mapping}
