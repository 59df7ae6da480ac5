"""Exports: every visible record matching the list filters, streamed in constant memory.

One read-only transaction, one query through a server-side cursor: the file is a consistent
snapshot however long the download takes, and only one batch of rows is in memory at a time.
Rows are plain Core tuples (no ORM objects); CSV cells are neutralized against formula
injection, JSON Lines keeps every value's type."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Text,
    Uuid,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.companies import service as companies
from app.domain.companies.models import Company
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.deals import queries as deals
from app.domain.deals.models import Deal, DealContact
from app.domain.shared import records
from app.domain.shared.errors import ValidationError
from app.domain.shared.listing import ListSpec
from app.domain.shared.normalize import fold_for_search
from app.domain.shared.principal import Principal
from app.domain.tasks import service as tasks
from app.domain.tasks.models import Task

BATCH_ROWS = 2000
CHUNK_BYTES = 256 * 1024
FORMATS = ("csv", "jsonl")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_HIDDEN = {"search_text", "workspace_id"}
_JSON_NAMES = {c.name for m in (Contact, Company, Deal, Task, Activity)
               for c in m.__table__.columns if isinstance(c.type, JSONB)}


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class ExportSpec:
    """What one object's export reads: its table, the list filters, who sees what, and `q`."""

    model: Any
    list_spec: ListSpec
    visibility: Callable[[Principal], ColumnElement[bool]]
    search: Callable[[str, Principal], Any]
    extra_columns: tuple[Any, ...] = ()

    def columns(self) -> list[Any]:
        table = self.model.__table__
        return [c for c in table.columns if c.name not in _HIDDEN] + list(self.extra_columns)


def _neutralized(text_value: Any) -> Any:
    return case((func.left(text_value, 1).in_(FORMULA_STARTS), literal("'") + text_value),
                else_=text_value)


def _csv_column(column: Any) -> tuple[Any, bool]:
    """The column as the CSV cell's text, rendered by PostgreSQL (the database's core does
    this work while this process only writes lines), and whether the cell must be
    neutralized (text a user typed; not ids, times, dates or booleans)."""
    name, kind = column.name, column.type
    if isinstance(kind, JSONB):
        if name in ("phones", "emails"):
            key = "e164" if name == "phones" else "email"
            items = select(func.jsonb_array_elements(column).op("->>")(key)) \
                .correlate(column.table).scalar_subquery()
            return func.array_to_string(func.array(items), "; ").label(name), True
        return cast(column, Text).label(name), True
    if isinstance(kind, ARRAY):
        return func.array_to_string(column, ", ").label(name), True
    if isinstance(kind, DateTime):
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
                            ).label(name), False
    if isinstance(kind, Boolean):
        return case((column, "true"), (~column, "false")).label(name), False
    if isinstance(kind, Uuid | Date):
        return cast(column, Text).label(name), False
    return cast(column, Text).label(name), True


def _csv_select(columns: list[Any], where: list[Any], order: Any) -> Any:
    """Each row as its CSV cells, rendered and neutralized by PostgreSQL in two steps, each a
    subquery it may not flatten (`OFFSET 0`, so nothing is computed twice). The rows leave
    the server through `COPY (…) TO STDOUT (FORMAT csv)`, whose quoting is RFC 4180's and
    Python's QUOTE_MINIMAL (a cell with a comma, a quote, CR or LF is quoted, its quotes
    doubled); an empty text is sent as NULL, an empty cell, as `csv.writer` writes it. The
    header's names ride along in the execution options."""
    rendered = [_csv_column(c) for c in columns]
    names = [cell.name for cell, _ in rendered]
    inner = (select(*(cell for cell, _ in rendered), order.label("_order")).where(*where)
             .order_by(order).offset(0).subquery("rendered"))
    cells = [func.nullif(_neutralized(inner.c[cell.name]), "").label(cell.name) if neutralize
             else inner.c[cell.name] for cell, neutralize in rendered]
    return (select(*cells).order_by(inner.c["_order"])
            .execution_options(csv_header=names))


def _jsonl_column(column: Any) -> Any:
    # JSON stays JSON text: embedded as is (orjson.Fragment), never decoded and re-encoded.
    # Ids come as PostgreSQL's text of them, which is str(uuid): asyncpg's UUID objects
    # would each cost orjson a call back into Python.
    if isinstance(column.type, JSONB) or isinstance(getattr(column, "type", None), Uuid):
        return cast(column, Text).label(column.name)
    return column


_deal_contacts = (select(func.coalesce(func.array_agg(DealContact.contact_id), []))
                  .where(DealContact.deal_id == Deal.id).correlate(Deal)
                  .scalar_subquery().label("contact_ids"))

SPECS: dict[str, ExportSpec] = {
    "contacts": ExportSpec(Contact, contacts.LIST_SPEC,
                           lambda p: records.visibility_condition(Contact, p),
                           lambda q, _: contacts.search_condition(q)),
    "companies": ExportSpec(Company, companies.LIST_SPEC,
                            lambda p: records.visibility_condition(Company, p),
                            lambda q, _: Company.search_text.like(_like(fold_for_search(q)),
                                                                  escape="\\")),
    "deals": ExportSpec(Deal, deals.LIST_SPEC,
                        lambda p: records.visibility_condition(Deal, p),
                        deals.search_condition, extra_columns=(_deal_contacts,)),
    "tasks": ExportSpec(Task, tasks.LIST_SPEC,
                        lambda p: records.visibility_condition(Task, p),
                        lambda q, _: Task.title.ilike(_like(q), escape="\\")),
    "activities": ExportSpec(Activity, activities.LIST_SPEC, activities.visibility,
                             lambda q, _: Activity.subject.ilike(_like(q), escape="\\")
                             | Activity.body.ilike(_like(q), escape="\\")),
}


def spec_for(object_name: str) -> ExportSpec:
    spec = SPECS.get(object_name)
    if spec is None:
        raise ValidationError.at(["path", "object"], f"cannot export {object_name!r}; use one "
                                 "of " + ", ".join(SPECS))
    return spec


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError.at(["query", "format"], "format is csv or jsonl")
    return fmt


def export_query(spec: ExportSpec, principal: Principal, *, conditions: list[Any],
                 q: str | None, include_deleted: bool = False, fmt: str = "csv") -> Any:
    if q is not None and "\x00" in q:
        raise ValidationError.at(["query", "q"], "must not contain NUL characters")
    where = [spec.visibility(principal), *conditions]
    if not include_deleted:
        where.append(spec.model.deleted_at.is_(None))
    if q:
        where.append(spec.search(q, principal))
    # Creation order; ids are time-ordered, and (workspace_id, id) is the primary key.
    if fmt == "csv":
        return _csv_select(spec.columns(), where, spec.model.id)
    return select(*map(_jsonl_column, spec.columns())).where(*where).order_by(spec.model.id)


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would evaluate is prefixed with `'` so it stays text."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _json_default(value: Any) -> Any:
    # asyncpg's own UUID subclass is not one orjson knows.
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError


async def _compiled(session: AsyncSession, query: Any) -> tuple[Any, str, list[Any]]:
    """The driver connection of the session's transaction, the query's SQL and its
    arguments, converted as SQLAlchemy would convert them."""
    connection = await session.connection()
    compiled = query.compile(dialect=connection.dialect,
                             compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors  # the same conversions SQLAlchemy would apply
    args = [processors[name](params[name]) if name in processors else params[name]
            for name in compiled.positiontup or ()]
    raw = (await connection.get_raw_connection()).driver_connection
    return raw, compiled.string, args


async def _records(session: AsyncSession, query: Any) -> AsyncIterator[list[Any]]:
    """The query's rows in batches, as asyncpg records on the session's connection and
    transaction: SQLAlchemy's per-row result processing cost more than the rest of an export
    (bench/RESULTS.md), and every column here is already rendered or natively typed."""
    raw, sql, args = await _compiled(session, query)
    cursor = await raw.cursor(sql, *args)
    # One batch ahead: PostgreSQL renders the next rows while this process writes these.
    ahead = asyncio.ensure_future(cursor.fetch(BATCH_ROWS))
    try:
        while rows := await ahead:
            ahead = asyncio.ensure_future(cursor.fetch(BATCH_ROWS))
            yield rows
    finally:
        if not ahead.done():  # the reader went away: let the fetch finish, keep the
            with contextlib.suppress(Exception):  # connection usable for the rollback
                await ahead


def _crlf(data: bytes) -> bytes:
    """COPY's CSV rows end in LF; RFC 4180's in CR LF. A LF inside a quoted cell stays as it
    is: splitting on quotes, the even pieces are the text outside quoted cells (a doubled
    quote leaves an empty even piece). `data` holds whole rows (one CopyData message each)."""
    if b'"' not in data:
        return data.replace(b"\n", b"\r\n")
    pieces = data.split(b'"')
    pieces[::2] = [piece.replace(b"\n", b"\r\n") for piece in pieces[::2]]
    return b'"'.join(pieces)


async def _copy_chunks(session: AsyncSession, query: Any) -> AsyncIterator[bytes]:
    """The query's rows as CSV (CR LF line ends) through `COPY (…) TO STDOUT`, on the
    session's connection and transaction, in chunks of about CHUNK_BYTES; at most a few
    chunks wait in memory (the COPY stops reading while they do). The query is prepared
    (and refused, if it is refused) before the first chunk."""
    raw, sql, args = await _compiled(session, query)
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
    pending: list[bytes] = []
    size = 0

    async def take(data: bytes) -> None:
        nonlocal size
        pending.append(data)
        size += len(data)
        if size >= CHUNK_BYTES:
            chunk = b"".join(pending)
            pending.clear()
            size = 0
            await chunks.put(chunk)

    async def copy() -> None:
        await raw.copy_from_query(sql, *args, output=take, format="csv")
        if pending:
            await chunks.put(b"".join(pending))
        await chunks.put(None)

    task = asyncio.ensure_future(copy())
    try:
        while True:
            getter = asyncio.ensure_future(chunks.get())
            await asyncio.wait((getter, task), return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
                chunk = await chunks.get()  # the task finished: its sentinel is queued
            else:
                chunk = getter.result()
            if chunk is None:
                break
            yield _crlf(chunk)
        await task
    finally:
        if not task.done():  # the reader went away: stop the COPY
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def stream_export(session: AsyncSession, query: Any, fmt: str) -> AsyncIterator[bytes]:
    """The file, a batch of rows per chunk. `session` must be inside a transaction. The first
    chunk comes only after the first batch is read, so a query the database refuses fails
    before the response starts."""
    if fmt == "csv":
        header = io.StringIO()
        csv.writer(header, lineterminator="\r\n").writerow(
            query.get_execution_options()["csv_header"])
        first = header.getvalue().encode()
        async for chunk in _copy_chunks(session, query):
            yield first + chunk
            first = b""
        if first:
            yield first  # no rows: the header alone
        return
    batches = _records(session, query)
    names = [c.name for c in query.selected_columns]
    options = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    json_columns = [i for i, c in enumerate(query.selected_columns)
                    if isinstance(c.type, Text) and c.name in _JSON_NAMES]
    empty = True
    async for rows in batches:
        empty = False
        lines = []
        for row in rows:
            values = list(row)
            for i in json_columns:
                if values[i] is not None:
                    values[i] = orjson.Fragment(values[i])
            lines.append(orjson.dumps(dict(zip(names, values, strict=True)),
                                      default=_json_default, option=options))
        yield b"".join(lines)
    if empty:
        yield b""
