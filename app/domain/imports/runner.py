"""Running an import: batches of rows, each written and counted in one transaction.

A batch's records, its rejected rows and the job's new `row_offset` commit together, so a
worker that dies mid-file resumes at the first uncommitted row and never writes a row twice.
New contacts go in through COPY into a temporary staging table and one
`INSERT … SELECT … ON CONFLICT DO NOTHING` (with their identities, import records and
`contact.created` events in the same statement); updates of existing cards go through the
contact service, exactly as an API upsert."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.companies import service as companies
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactCreate
from app.domain.customfields.service import definitions_for
from app.domain.imports.deals import write_deals
from app.domain.imports.files import FileLayout, count_rows, iter_rows
from app.domain.imports.models import ImportJob, ImportRecord, ImportRejection
from app.domain.imports.rows import (
    Prepared,
    RowError,
    RowPlan,
    contact_keys,
    init_worker,
    prepare_company,
    prepare_contact,
    prepare_contacts,
    prepare_contacts_in_worker,
)
from app.domain.imports.schemas import OBJECT_TYPES, Transform
from app.domain.imports.work import write_activities, write_tasks
from app.domain.shared.clock import clock
from app.domain.shared.errors import DomainError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace

log = structlog.get_logger("relata.imports")

BATCH_ROWS = 5000
PARALLEL_FROM_ROWS = 20_000  # below this, starting worker processes costs more than it saves
PREPARE_PROCESSES = 2
MAX_ERRORS_SHOWN = 100

_STAGE_COLUMNS = ("workspace_id", "id", "version", "created_at", "updated_at", "created_by",
                  "updated_by", "first_name", "last_name", "middle_name", "full_name",
                  "phones", "emails", "address", "timezone", "status", "kind", "owner_id",
                  "company_id", "source", "birthday", "tags", "custom_fields", "external_id",
                  "search_text")
_COLUMN_LIST = ", ".join(_STAGE_COLUMNS)
_JSON_COLUMNS = {"phones", "emails", "address", "custom_fields"}

# One statement: the cards, the identities they claim, the import's record of them and
# (unless silent) their events. A card whose external_id a concurrent writer just took is
# left out by ON CONFLICT and reported as failed.
_WRITE_CONTACTS = f"""
WITH ins AS (
  INSERT INTO contacts ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM _import_contacts
  ON CONFLICT DO NOTHING RETURNING id
), ident AS (
  INSERT INTO contact_identities (workspace_id, kind, value, contact_id)
  SELECT i.workspace_id, i.kind, i.value, i.contact_id FROM _import_identities i
  JOIN ins ON ins.id = i.contact_id
  ON CONFLICT DO NOTHING
), rec AS (
  INSERT INTO import_records (workspace_id, import_id, entity_id, entity_type, action)
  SELECT $1::uuid, $2::uuid, ins.id, 'contact', 'created' FROM ins
), ev AS (
  INSERT INTO events (workspace_id, id, type, entity_type, entity_id, actor, before, after,
                      changed, occurred_at, depth)
  SELECT s.workspace_id, s.event_id, 'contact.created', 'contact', s.id, s.created_by, NULL,
         j.after, ARRAY(SELECT jsonb_object_keys(j.after) ORDER BY 1), s.created_at, 0
  FROM _import_contacts s JOIN ins ON ins.id = s.id
  CROSS JOIN LATERAL (SELECT to_jsonb(s) - 'search_text' - 'workspace_id' - 'event_id'
                      || '{{"deleted_at": null, "utm": null, "merged_into_id": null}}'::jsonb
                      AS after) j
  WHERE NOT $3::boolean
)
SELECT id FROM ins"""


# Objects written row by row through their services (deals, tasks, activities).
SERVICE_WRITERS = {"deals": write_deals, "tasks": write_tasks, "activities": write_activities}

# A silent import's batch transaction takes back the events it wrote (the services write
# them for updates, companies and deals); nothing else writes in that transaction.
_SILENCE = text("DELETE FROM events WHERE txid = pg_current_xact_id()::text::bigint")


def principal_of(job: ImportJob) -> Principal:
    """The importer, with workspace-wide visibility (only admins and API keys import)."""
    kind, _, raw_id = job.created_by.partition(":")
    return Principal(workspace_id=job.workspace_id, kind=kind,
                     id=uuid.UUID(raw_id) if raw_id else None)


async def build_plan(session: AsyncSession, principal: Principal, job: ImportJob) -> RowPlan:
    workspace = await current_workspace(session, principal)
    settings = workspace.settings
    columns = [(job.columns.index(header), target) for header, target in job.mapping.items()
               if target and header in job.columns]
    object_type = OBJECT_TYPES[job.object]
    return RowPlan(
        object=job.object, columns=columns,
        transforms={k: Transform.model_validate(v)
                    for k, v in job.options.get("transforms", {}).items()},
        region=workspace.default_region, timezone=workspace.timezone,
        statuses=settings["contact_statuses"],
        kinds=settings["company_kinds" if job.object == "companies" else "contact_kinds"],
        definitions=await definitions_for(session, object_type), width=len(job.columns))


def layout_of(job: ImportJob) -> FileLayout:
    return FileLayout(job.file_format, job.encoding, job.delimiter, job.has_header,
                      job.columns, job.options.get("sheet"))


def _batches(rows: Iterator[tuple[int, list[Any]]], size: int
             ) -> Iterator[list[tuple[int, list[Any]]]]:
    batch: list[tuple[int, list[Any]]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _preparers(plan: RowPlan, *, parallel: bool) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes that validate and normalize rows while this one writes: phone and
    email parsing is most of an import's CPU time. Small files are prepared inline."""
    workers = min(PREPARE_PROCESSES, os.cpu_count() or 1)
    if not parallel or plan.object != "contacts" or workers < 2:
        yield None
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker, initargs=(plan,))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


async def _prepared(batches: Iterator[list[tuple[int, list[Any]]]], plan: RowPlan,
                    pool: ProcessPoolExecutor | None
                    ) -> AsyncIterator[tuple[list[tuple[int, list[Any]]], list[Prepared] | None]]:
    """Batches with their prepared rows; with a pool, the next batches are prepared while
    the current one is written (a bounded look-ahead: memory stays flat)."""
    if pool is None:
        for batch in batches:
            yield batch, prepare_contacts(plan, batch) if plan.object == "contacts" else None
        return
    loop = asyncio.get_running_loop()
    in_flight: deque[tuple[list[tuple[int, list[Any]]], asyncio.Future[list[Prepared]]]] = \
        deque()
    for batch in batches:
        in_flight.append((batch, loop.run_in_executor(pool, prepare_contacts_in_worker, batch)))
        if len(in_flight) > PREPARE_PROCESSES:
            ready, future = in_flight.popleft()
            yield ready, await future
    while in_flight:
        ready, future = in_flight.popleft()
        yield ready, await future


class BatchOutcome:
    def __init__(self) -> None:
        self.created = self.updated = self.skipped = 0
        self.rejected: list[tuple[int, str, list[Any]]] = []

    def reject(self, number: int, reason: str, cells: list[Any]) -> None:
        self.rejected.append((number, reason, cells))


async def run_import(sessions: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID,
                     import_id: uuid.UUID, *, batch_rows: int = BATCH_ROWS,
                     stop_after_batches: int | None = None) -> str:
    """Run (or resume) an import to its end; returns the final state. `stop_after_batches`
    lets a test stop a run midway, as a killed worker would."""
    async with unit_of_work(sessions, workspace_id) as session:
        job = await _locked(session, import_id)
        if job is None or job.state not in ("queued", "running"):
            return job.state if job else "missing"
        if job.total is None:
            job.total = count_rows(Path(job.path), layout_of(job))
        job.state = "running"
        job.started_at = job.started_at or clock.now()
        job.heartbeat_at = clock.now()
        offset = job.row_offset
    try:
        return await _run_batches(sessions, workspace_id, import_id, offset, batch_rows,
                                  stop_after_batches)
    except Exception as exc:
        log.exception("import failed", import_id=str(import_id))
        async with unit_of_work(sessions, workspace_id) as session:
            job = await _locked(session, import_id)
            if job is not None:
                job.state, job.error, job.finished_at = "failed", repr(exc)[:2000], clock.now()
        return "failed"


async def _locked(session: AsyncSession, import_id: uuid.UUID) -> ImportJob | None:
    return (await session.execute(select(ImportJob).where(ImportJob.id == import_id)
                                  .with_for_update())).scalar_one_or_none()


async def _run_batches(sessions: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID,
                       import_id: uuid.UUID, offset: int, batch_rows: int,
                       stop_after_batches: int | None) -> str:
    async with unit_of_work(sessions, workspace_id) as session:
        job = await session.get(ImportJob, (workspace_id, import_id))
        assert job is not None
        principal = principal_of(job)
        plan = await build_plan(session, principal, job)
        path, layout = Path(job.path), layout_of(job)
    seen_in_dry_run: set[tuple[str, str]] = set()
    batches = _batches(iter_rows(path, layout, skip=offset), batch_rows)
    with _preparers(plan, parallel=(job.total or 0) - offset >= PARALLEL_FROM_ROWS) as pool:
        done = 0
        async for batch, prepared in _prepared(batches, plan, pool):
            if stop_after_batches is not None and done >= stop_after_batches:
                return "running"
            async with unit_of_work(sessions, workspace_id) as session:
                job = await _locked(session, import_id)
                if job is None or job.state != "running" or job.row_offset != offset:
                    return job.state if job else "missing"  # canceled, or another worker's
                started = time.perf_counter()
                outcome = await write_batch(session, principal, job, plan, batch, prepared,
                                            seen_in_dry_run)
                if job.silent:  # records written through the services wrote their events
                    await session.flush()  # those still pending too (a new company's)
                    await session.execute(_SILENCE)
                await _record(session, job, batch, outcome)
                offset = job.row_offset
                log.debug("import batch", rows=len(batch),
                          seconds=time.perf_counter() - started)
            done += 1
    async with unit_of_work(sessions, workspace_id) as session:
        job = await _locked(session, import_id)
        if job is not None and job.state == "running":
            job.state, job.finished_at = "done", clock.now()
            job.updated_at = job.finished_at
        return job.state if job else "missing"


async def _record(session: AsyncSession, job: ImportJob, batch: list[tuple[int, list[Any]]],
                  outcome: BatchOutcome) -> None:
    if outcome.rejected:
        await session.execute(insert(ImportRejection), [
            {"workspace_id": job.workspace_id, "import_id": job.id, "row_number": number,
             "reason": reason, "cells": [str(c) if not isinstance(c, str) else c
                                         for c in cells]}
            for number, reason, cells in outcome.rejected])
        room = MAX_ERRORS_SHOWN - len(job.errors)
        if room > 0:
            job.errors = job.errors + [{"row": n, "reason": r}
                                       for n, r, _ in outcome.rejected[:room]]
    job.row_offset += len(batch)
    job.processed += len(batch)
    job.created += outcome.created
    job.updated += outcome.updated
    job.skipped += outcome.skipped
    job.failed += len(outcome.rejected)
    job.heartbeat_at = job.updated_at = clock.now()


async def write_batch(session: AsyncSession, principal: Principal, job: ImportJob,
                      plan: RowPlan, batch: list[tuple[int, list[Any]]],
                      prepared_rows: list[Prepared] | None,
                      seen_in_dry_run: set[tuple[str, str]]) -> BatchOutcome:
    if job.object == "companies":
        return await _write_companies(session, principal, job, plan, batch)
    if job.object in SERVICE_WRITERS:
        outcome = BatchOutcome()

        async def company_ids_for(names: set[str]) -> dict[str, uuid.UUID]:
            return await _companies_by_name(session, principal, job, names)

        await SERVICE_WRITERS[job.object](session, principal, job, plan, batch, outcome,
                                          company_ids_for)
        return outcome
    return await _write_contacts(session, principal, job, plan,
                                 prepared_rows or prepare_contacts(plan, batch),
                                 seen_in_dry_run)


async def _write_contacts(session: AsyncSession, principal: Principal, job: ImportJob,
                          plan: RowPlan, prepared_rows: list[Prepared],
                          seen_in_dry_run: set[tuple[str, str]]) -> BatchOutcome:
    outcome = BatchOutcome()
    dedupe_on: list[str] = job.options.get("dedupe_on", ["phone", "email", "external_id"])
    strategy: str = job.options.get("on_duplicate", "skip")
    prepared: list[tuple[int, list[Any], dict[str, Any], dict[str, Any]]] = []
    for number, cells, record, given in prepared_rows:
        if record is None:
            outcome.reject(number, str(given), cells)
        else:
            prepared.append((number, cells, record, given))  # type: ignore[arg-type]

    identity_keys = {k for _, _, r, _ in prepared for k in contact_keys(r, dedupe_on)
                     if k[0] != "external_id"}
    existing = await contacts.find_by_identities(session, identity_keys)
    external_ids = {r["external_id"] for _, _, r, _ in prepared if r["external_id"]}
    if external_ids:
        rows = await session.execute(select(Contact.external_id, Contact.id, Contact.deleted_at)
                                     .where(Contact.external_id.in_(external_ids)))
        for external_id, contact_id, deleted_at in rows:
            if deleted_at is None and "external_id" in dedupe_on:
                existing[("external_id", external_id)] = contact_id
            elif deleted_at is not None:
                existing[("deleted_external_id", external_id)] = contact_id

    fresh: list[tuple[int, list[Any], dict[str, Any], dict[str, Any]]] = []
    updates: list[tuple[int, list[Any], dict[str, Any], uuid.UUID | None]] = []
    in_file: dict[tuple[str, str], int] = {}
    for item in prepared:
        number, cells, record, given = item
        if record["external_id"] and ("deleted_external_id", record["external_id"]) in existing:
            outcome.reject(number, f"external_id {record['external_id']!r} belongs to a "
                           "deleted contact", cells)
            continue
        keys = contact_keys(record, dedupe_on)
        match = next((existing[k] for k in sorted(keys) if k in existing), None)
        earlier = next((in_file[k] for k in sorted(keys) if k in in_file), None)
        if job.dry_run and match is None and earlier is None and keys & seen_in_dry_run:
            earlier = -1  # a duplicate of a row of an earlier (unwritten) batch
        if (match is not None or earlier is not None) and strategy != "create":
            if strategy == "skip":
                outcome.skipped += 1
            else:
                updates.append((number, cells, given, match))
            continue
        in_file.update(dict.fromkeys(keys, number))
        if job.dry_run:
            seen_in_dry_run.update(keys)
        if record["external_id"] and strategy == "create" and \
                ("external_id", record["external_id"]) in existing:
            outcome.reject(number, f"external_id {record['external_id']!r} belongs to "
                           f"contact {existing[('external_id', record['external_id'])]}", cells)
            continue
        fresh.append(item)

    if job.dry_run:
        outcome.created += len(fresh)
        outcome.updated += len(updates)
        return outcome

    company_ids = await _companies_by_name(
        session, principal, job, {r["company"] for _, _, r, _ in fresh if r["company"]}
        | {g["company"] for _, _, g, _ in updates if g.get("company")})
    created_ids = await _insert_contacts(session, principal, job, fresh, company_ids)
    for number, cells, record, _ in fresh:
        if record["id"] in created_ids:
            outcome.created += 1
        else:
            outcome.reject(number, "another card took its external_id meanwhile", cells)
    for number, cells, given, match in updates:
        target = match
        if target is None:  # a duplicate of a row created above, in this very batch
            keys = {k for k in contact_keys(prepare_contact(plan, cells)[0], dedupe_on)
                    if k[0] != "external_id"}
            found = await contacts.find_by_identities(session, keys)
            target = next(iter(found.values()), None)
        if target is None:
            outcome.skipped += 1
            continue
        reason = await _update_contact(session, principal, job, target, given, company_ids)
        if reason is None:
            outcome.updated += 1
        else:
            outcome.reject(number, reason, cells)
    return outcome


async def _companies_by_name(session: AsyncSession, principal: Principal, job: ImportJob,
                             names: set[str]) -> dict[str, uuid.UUID]:
    """The company of each name (ignoring case), created when the workspace has none."""
    if not names:
        return {}
    wanted = {n.casefold(): n for n in names}
    rows = await session.execute(select(Company.id, Company.name).where(
        Company.deleted_at.is_(None), func.lower(Company.name).in_(list(wanted)))
        .order_by(Company.id))
    found: dict[str, uuid.UUID] = {}
    for company_id, name in rows:
        found.setdefault(name.casefold(), company_id)
    for folded, name in wanted.items():
        if folded not in found:
            company = await companies.create_company(session, principal,
                                                     CompanyCreate(name=name[:300]))
            found[folded] = company.id
            await session.execute(insert(ImportRecord).values(
                workspace_id=job.workspace_id, import_id=job.id, entity_id=company.id,
                entity_type="company", action="created"))
    return found


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


async def _insert_contacts(session: AsyncSession, principal: Principal, job: ImportJob,
                           fresh: list[tuple[int, list[Any], dict[str, Any], dict[str, Any]]],
                           company_ids: dict[str, uuid.UUID]) -> set[uuid.UUID]:
    if not fresh:
        return set()
    now: datetime = clock.now()
    actor, owner = principal.actor, principal.user_id
    ws = job.workspace_id
    contact_rows, identity_rows = [], []
    for _, _, record, _ in fresh:
        record["id"] = contact_id = new_id()
        company = record["company"]
        values = {**record, "workspace_id": ws, "version": 1, "created_at": now,
                  "updated_at": now, "created_by": actor, "updated_by": actor,
                  "owner_id": owner,
                  "company_id": company_ids.get(company.casefold()) if company else None}
        contact_rows.append(tuple(_json(values[c]) if c in _JSON_COLUMNS else values[c]
                                  for c in _STAGE_COLUMNS) + (new_id(),))
        identity_rows += [(ws, "phone", p["e164"], contact_id) for p in record["phones"]]
        identity_rows += [(ws, "email", e["email"], contact_id) for e in record["emails"]]
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    await raw.execute("CREATE TEMP TABLE IF NOT EXISTS _import_contacts "
                      "(LIKE contacts INCLUDING DEFAULTS, event_id uuid) ON COMMIT DELETE ROWS;"
                      "CREATE TEMP TABLE IF NOT EXISTS _import_identities "
                      "(LIKE contact_identities) ON COMMIT DELETE ROWS")
    await raw.copy_records_to_table("_import_contacts", records=contact_rows,
                                    columns=[*_STAGE_COLUMNS, "event_id"])
    if identity_rows:
        await raw.copy_records_to_table("_import_identities", records=identity_rows,
                                        columns=["workspace_id", "kind", "value", "contact_id"])
    inserted = await raw.fetch(_WRITE_CONTACTS, ws, job.id, job.silent)
    return {row["id"] for row in inserted}


async def _update_contact(session: AsyncSession, principal: Principal, job: ImportJob,
                          contact_id: uuid.UUID, given: dict[str, Any],
                          company_ids: dict[str, uuid.UUID]) -> str | None:
    body = {k: v for k, v in given.items() if k != "company"}
    if given.get("company"):
        body["company_id"] = company_ids.get(given["company"].casefold())
    try:
        async with session.begin_nested():
            contact = await session.get(Contact, (job.workspace_id, contact_id))
            if contact is None or contact.deleted_at is not None:
                return "the matching card was deleted"
            await contacts.apply_upsert(session, principal, contact,
                                        ContactCreate.model_validate(body))
            await session.execute(_record_update(job, contact_id))
    except DomainError as exc:
        reason = exc.errors[0]["msg"] if exc.errors else exc.detail
        return f"update of contact {contact_id}: {reason}"
    return None


def _record_update(job: ImportJob, entity_id: uuid.UUID) -> Any:
    """A card created earlier in this import stays recorded as created (undo removes it)."""
    return pg_insert(ImportRecord).values(
        workspace_id=job.workspace_id, import_id=job.id, entity_id=entity_id,
        entity_type="contact", action="updated").on_conflict_do_nothing()


async def _write_companies(session: AsyncSession, principal: Principal, job: ImportJob,
                           plan: RowPlan, batch: list[tuple[int, list[Any]]]) -> BatchOutcome:
    """Companies are few: each row goes through the company service, in a savepoint."""
    outcome = BatchOutcome()
    dedupe_on: list[str] = job.options.get("dedupe_on", ["external_id"])
    strategy: str = job.options.get("on_duplicate", "skip")
    for number, cells in batch:
        try:
            data = prepare_company(plan, cells)
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        existing = None
        if "external_id" in dedupe_on and data.external_id and strategy != "create":
            existing = await companies.upsert_target(session, principal, data, "external_id")
        if existing is None and strategy != "create":
            existing = (await session.execute(select(Company).where(
                Company.deleted_at.is_(None), func.lower(Company.name) == data.name.casefold())
                .order_by(Company.id).limit(1))).scalar_one_or_none()
        if existing is not None and strategy == "skip":
            outcome.skipped += 1
            continue
        if job.dry_run:
            if existing is None:
                outcome.created += 1
            else:
                outcome.updated += 1
            continue
        try:
            async with session.begin_nested():
                if existing is None:
                    company = await companies.create_company(session, principal, data)
                    action = "created"
                else:
                    await companies.apply_upsert(session, principal, existing, data)
                    company, action = existing, "updated"
                await session.execute(insert(ImportRecord).values(
                    workspace_id=job.workspace_id, import_id=job.id, entity_id=company.id,
                    entity_type="company", action=action))
        except DomainError as exc:
            outcome.reject(number, exc.errors[0]["msg"] if exc.errors else exc.detail, cells)
            continue
        if action == "created":
            outcome.created += 1
        else:
            outcome.updated += 1
    return outcome

