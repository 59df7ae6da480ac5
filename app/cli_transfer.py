"""`relata workspace export` / `relata workspace import`: move one company between
installations as a JSON Lines file (gzip when the name ends in `.gz`).

Both talk to the database of RELATA_DATABASE_URL directly (like `relata backup`), as the
application role under the workspace's row-level security. The export reads every table in
one REPEATABLE READ snapshot; the import is one transaction: all of it or nothing."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console

console = Console()


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "b")  # type: ignore[return-value]
    return path.open(mode + "b")


async def _schema_revision() -> str | None:
    """The database's migration revision (the application role may not read it)."""
    from sqlalchemy import text

    from app.config import get_settings
    from app.db import create_engine

    engine = create_engine(get_settings(), as_app_role=False)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("select version_num from alembic_version"))
                    ).scalar_one_or_none()
    finally:
        await engine.dispose()


async def _export(workspace_id: uuid.UUID, output: Path) -> dict[str, int]:
    from sqlalchemy import text

    from app.config import get_settings
    from app.db import create_engine, session_factory, set_workspace
    from app.domain.workspaces.transfer import dump_workspace

    revision = await _schema_revision()
    engine = create_engine(get_settings())
    counts: dict[str, int] = {}
    try:
        async with session_factory(engine)() as session, session.begin():
            # One snapshot for every table (allowed here: only SETs ran in this transaction).
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            await set_workspace(session, workspace_id)
            with _open(output, "w") as out:
                async for line in dump_workspace(session, workspace_id,
                                                schema_revision=revision):
                    out.write(orjson.dumps(line) + b"\n")
                    if "end" in line:
                        counts = line["counts"]
    finally:
        await engine.dispose()
    return counts


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with _open(path, "r") as source:
        for number, raw in enumerate(source, start=1):
            if raw.strip():
                try:
                    yield orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc}") from exc


async def _import(path: Path, target: uuid.UUID | None) -> dict[str, Any]:
    from app.config import get_settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.workspaces.transfer import load_workspace

    lines = _lines(path)
    header = next(lines, None)
    if header is None or "workspace_id" not in header:
        raise ValueError("not a Relata workspace dump")
    workspace_id = target or uuid.UUID(header["workspace_id"])
    revision = await _schema_revision()
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(session_factory(engine), workspace_id) as session:
            return await load_workspace(session, _chain(header, lines),
                                        schema_revision=revision, target_workspace_id=target)
    finally:
        await engine.dispose()


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def export_workspace_command(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id")],
    output: Annotated[Path, typer.Argument(help="File to write (.jsonl or .jsonl.gz)")],
) -> None:
    """Write one workspace's data to a JSON Lines file, to load on another installation."""
    from app.cli import _require_database

    _require_database()
    counts = asyncio.run(_export(uuid.UUID(workspace), output))
    if not counts.get("workspaces"):
        output.unlink(missing_ok=True)
        console.print(f"[red]no workspace {workspace}[/red]")
        raise typer.Exit(1)
    console.print(f"exported {sum(counts.values()):,} rows of {len(counts)} tables "
                  f"to {output}", style="green")


def import_workspace_command(
    dump: Annotated[Path, typer.Argument(exists=True, help="A file from workspace export")],
    new_id: Annotated[bool, typer.Option(
        "--new-id", help="Load as a new workspace (a copy beside the original)")] = False,
) -> None:
    """Load a workspace export into the database of RELATA_DATABASE_URL (all or nothing)."""
    from app.cli import _require_database
    from app.domain.shared.errors import DomainError
    from app.domain.shared.ids import new_id as make_id

    _require_database()
    try:
        result = asyncio.run(_import(dump, make_id() if new_id else None))
    except (DomainError, ValueError) as exc:
        errors = getattr(exc, "errors", None)
        reason = errors[0]["msg"] if errors else getattr(exc, "detail", None) or str(exc)
        console.print(f"[red]import refused[/red]: {reason}")
        raise typer.Exit(1) from None
    console.print(f"workspace {result['workspace_id']}: {result['rows']:,} rows loaded",
                  style="green")
    print(orjson.dumps(result).decode())


def register(workspace_app: typer.Typer) -> None:
    workspace_app.command("export")(export_workspace_command)
    workspace_app.command("import")(import_workspace_command)
