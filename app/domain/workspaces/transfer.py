"""Moving one workspace between installations: a JSON Lines dump of its rows, and loading it.

The dump is every tenant table's rows for one workspace, table by table in foreign-key order,
read under that workspace's row-level security (so nothing of another workspace can leak into
it), streamed with a server-side cursor (constant memory). Its first line says what it is:

    {"format": "relata-workspace", "version": 1, "schema_revision": "0008",
     "workspace_id": "…", "exported_at": "…", "tables": ["workspaces", "users", …]}

then one line per row: `{"table": "contacts", "row": {...}}`, and a last line with the row
count per table, which a load checks (a truncated file is refused, nothing written).

Left out on purpose (decision 0046): API keys and refresh tokens (credentials are issued again
on the new installation, not copied), and import jobs with their per-row bookkeeping (they
point at uploaded files on the old machine's disk). Users keep their password hashes, so
people log in as before. The event log is kept; its commit-order cursor (`txid`, `seq`) is
assigned anew by the target, in the dump's order."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.registry import metadata
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, ValidationError

FORMAT = "relata-workspace"
VERSION = 1
EXCLUDED_TABLES = frozenset({"api_keys", "refresh_tokens", "imports", "import_records",
                             "import_rejections"})
# Assigned by the target database: the event log's commit-order cursor.
SERVER_ASSIGNED = {"events": ("txid", "seq")}
BATCH = 1000


def workspace_column(table: sa.Table) -> sa.Column[Any] | None:
    if table.name == "workspaces":
        return table.c.id
    return table.c.get("workspace_id")


def tenant_tables() -> list[sa.Table]:
    """Every table that belongs to a workspace, parents before children."""
    return [t for t in metadata.sorted_tables
            if workspace_column(t) is not None and t.name not in EXCLUDED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    return value


def _decoder(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, sa.Uuid):
        return uuid.UUID
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat
    if isinstance(kind, sa.Date):
        return date.fromisoformat
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return Decimal
    if isinstance(kind, sa.LargeBinary):
        return lambda v: base64.b64decode(v["$base64"])
    if isinstance(kind, sa.ARRAY) and isinstance(kind.item_type, sa.Uuid):
        return lambda v: [uuid.UUID(x) for x in v]
    return None


async def dump_workspace(session: AsyncSession, workspace_id: uuid.UUID, *,
                         schema_revision: str | None) -> AsyncIterator[dict[str, Any]]:
    """The dump's lines as dicts. The session's transaction must be set to `workspace_id`;
    `schema_revision` is the database's migration revision, which a load must match."""
    tables = tenant_tables()
    yield {"format": FORMAT, "version": VERSION, "schema_revision": schema_revision,
           "workspace_id": str(workspace_id), "exported_at": clock.now().isoformat(),
           "tables": [str(t.name) for t in tables]}
    counts: dict[str, int] = {}
    for table in tables:
        skip = set(SERVER_ASSIGNED.get(table.name, ()))
        columns = [c for c in table.columns if c.name not in skip]
        query = sa.select(*columns).where(workspace_column(table) == workspace_id)
        order = [table.c[c] for c in SERVER_ASSIGNED.get(table.name, ())] or list(
            table.primary_key.columns)
        result = await session.stream(query.order_by(*order).execution_options(yield_per=BATCH))
        counts[str(table.name)] = 0
        async for row in result:
            counts[str(table.name)] += 1
            yield {"table": str(table.name),
                   "row": {str(c.name): _encode(v) for c, v in zip(columns, row, strict=True)}}
    yield {"end": True, "counts": counts}


def _header_error(message: str) -> ValidationError:
    return ValidationError.at(["file"], message)


class _Loader:
    def __init__(self, session: AsyncSession, source: uuid.UUID, target: uuid.UUID) -> None:
        self.session, self.source, self.target = session, source, target
        self.tables = {t.name: t for t in tenant_tables()}
        self.decoders = {name: {c.name: d for c in t.columns if (d := _decoder(c))}
                         for name, t in self.tables.items()}
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.order: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, table_name: str, row: dict[str, Any]) -> None:
        table = self.tables.get(table_name)
        if table is None:
            raise _header_error(f"unknown table {table_name!r} in the dump")
        decoders = self.decoders[table_name]
        values = {k: (decoders[k](v) if v is not None and k in decoders else v)
                  for k, v in row.items() if k in table.c}
        values[workspace_column(table).name] = self.target
        self.pending.setdefault(table_name, []).append(values)
        self.counts[table_name] = self.counts.get(table_name, 0) + 1

    async def flush(self, table_name: str | None = None) -> None:
        for name in [table_name] if table_name else list(self.pending):
            rows = self.pending.pop(name, [])
            if rows:
                await self.session.execute(sa.insert(self.tables[name]), rows)


async def load_workspace(session: AsyncSession, lines: Iterable[dict[str, Any]], *,
                         schema_revision: str | None,
                         target_workspace_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Loads a dump into the session's database in its transaction (all or nothing).

    The workspace keeps its id unless `target_workspace_id` is given (a copy beside the
    original, e.g. to rehearse a move). The session's transaction must be set to the target
    workspace (row-level security checks every inserted row against it)."""
    iterator = iter(lines)
    header = next(iterator, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _header_error("not a Relata workspace dump")
    if header.get("version") != VERSION:
        raise _header_error(f"dump version {header.get('version')} is not {VERSION}")
    if header.get("schema_revision") != schema_revision:
        raise _header_error(
            f"the dump is of schema {header.get('schema_revision')}, this database is at "
            f"{schema_revision}: migrate the older side first (relata migrate)")
    source = uuid.UUID(header["workspace_id"])
    target = target_workspace_id or source
    workspaces = metadata.tables["workspaces"]
    # Row-level security lets this transaction see the target workspace's row, if any.
    taken = (await session.execute(sa.select(workspaces.c.id).where(
        workspaces.c.id == target))).scalar_one_or_none()
    if taken is not None:
        raise ConflictError(f"workspace {target} already exists in this database")
    loader = _Loader(session, source, target)
    current: str | None = None
    footer: dict[str, Any] | None = None
    for line in iterator:
        if line.get("end"):
            footer = line
            break
        table_name = line.get("table")
        if table_name != current:
            if current is not None:
                await loader.flush(current)
            current = table_name
        loader.add(table_name, line.get("row") or {})
        if len(loader.pending.get(table_name, ())) >= BATCH:
            await loader.flush(table_name)
    await loader.flush()
    if footer is None:
        raise _header_error("the dump ends early (no closing line): it is incomplete")
    expected = {k: v for k, v in footer.get("counts", {}).items() if v}
    if expected != loader.counts:
        raise _header_error(f"row counts differ from the dump's own: {expected} vs "
                            f"{loader.counts}")
    return {"workspace_id": str(target), "rows": sum(loader.counts.values()),
            "tables": loader.counts}
