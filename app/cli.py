"""The `relata` command: serve, worker, migrate, and workspace / API key / user admin."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.config import get_settings

app = typer.Typer(help="Relata: a headless CRM backend.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
api_key_app = typer.Typer(help="API keys of a workspace.", no_args_is_help=True)
user_app = typer.Typer(help="Users of a workspace.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(api_key_app, name="api-key")
app.add_typer(user_app, name="user")
console = Console()
T = TypeVar("T")

WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace id")]


def main() -> None:
    app()


def _require_database() -> None:
    if not get_settings().database_url:
        console.print("[red]RELATA_DATABASE_URL is not set[/red] (make run / make test start "
                      "embedded servers and set it for you)")
        raise typer.Exit(2)


def migrate_database() -> None:
    from alembic.config import Config

    from alembic import command

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
    command.upgrade(config, "head")


@app.command()
def migrate() -> None:
    """Apply database migrations (as the database owner)."""
    _require_database()
    migrate_database()
    console.print("migrations applied", style="green")


def _with_session(workspace_id: uuid.UUID | None,
                  action: Callable[[Any], Awaitable[T]]) -> T:
    from app.db import create_engine, session_factory, unit_of_work

    async def runner() -> T:
        engine = create_engine(get_settings())
        try:
            async with unit_of_work(session_factory(engine), workspace_id) as session:
                return await action(session)
        finally:
            await engine.dispose()

    _require_database()
    return asyncio.run(runner())


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _admin(workspace_id: uuid.UUID) -> Any:
    from app.domain.shared.principal import system_principal

    return system_principal(workspace_id)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Option("--name", help="Company name")],
    owner_email: Annotated[str, typer.Option("--owner-email")],
    region: Annotated[str, typer.Option("--region", help="Default phone region")] = "US",
    timezone: Annotated[str, typer.Option("--timezone")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Create a workspace with its owner and a first API key (shown once)."""
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace

    data = WorkspaceCreate(name=name, owner_email=owner_email, default_region=region,
                           timezone=timezone)

    async def action(session: Any) -> tuple[Any, Any, str]:
        return await create_workspace(session, data)

    workspace, owner, key = _with_session(None, action)
    result = {"id": str(workspace.id), "name": workspace.name, "owner_id": str(owner.id),
              "api_key": key}
    if as_json:
        print(json.dumps(result))
    else:
        console.print(f"workspace [bold]{workspace.name}[/bold] {workspace.id}")
        console.print(f"API key (shown once): [bold]{key}[/bold]")


@api_key_app.command("create")
def api_key_create(workspace: WorkspaceOpt,
                   name: Annotated[str, typer.Option("--name")] = "cli",
                   scope: Annotated[str, typer.Option("--scope", help="read or read_write")]
                   = "read_write") -> None:
    """Create an API key; the secret is printed once."""
    from app.domain.workspaces.schemas import ApiKeyCreate
    from app.domain.workspaces.service import create_api_key

    ws = uuid.UUID(workspace)
    _, key = _with_session(ws, lambda s: create_api_key(s, _admin(ws),
                                                        ApiKeyCreate(name=name, scope=scope)))
    print(key)


@api_key_app.command("list")
def api_key_list(workspace: WorkspaceOpt,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List API keys (never their secrets)."""
    from app.domain.workspaces.service import list_api_keys

    ws = uuid.UUID(workspace)
    keys = _with_session(ws, lambda s: list_api_keys(s, _admin(ws)))
    if as_json:
        print(json.dumps([{"id": str(k.id), "name": k.name, "scope": k.scope,
                           "prefix": k.prefix, "last_used_at": _iso(k.last_used_at),
                           "revoked_at": _iso(k.revoked_at)} for k in keys]))
        return
    table = Table("id", "name", "scope", "prefix", "last used", "revoked")
    for k in keys:
        table.add_row(str(k.id), k.name, k.scope, k.prefix, str(k.last_used_at or "-"),
                      str(k.revoked_at or "-"))
    console.print(table)


@api_key_app.command("revoke")
def api_key_revoke(workspace: WorkspaceOpt, key_id: str) -> None:
    """Revoke an API key by id."""
    from app.domain.workspaces.service import revoke_api_key

    ws = uuid.UUID(workspace)
    _with_session(ws, lambda s: revoke_api_key(s, _admin(ws), uuid.UUID(key_id)))
    console.print(f"revoked {key_id}", style="green")


@user_app.command("create")
def user_create(workspace: WorkspaceOpt, email: Annotated[str, typer.Option("--email")],
                role: Annotated[str, typer.Option("--role")] = "agent",
                name: Annotated[str, typer.Option("--name")] = "",
                password: Annotated[str | None, typer.Option(
                    "--password", help="Prompted for when not given", hide_input=True)] = None
                ) -> None:
    """Add a user who can log in with email and password."""
    from app.domain.workspaces.schemas import UserCreate
    from app.domain.workspaces.service import create_user

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    ws = uuid.UUID(workspace)
    data = UserCreate(email=email, role=role, full_name=name, password=password)
    user = _with_session(ws, lambda s: create_user(s, _admin(ws), data))
    console.print(f"user {user.email} ({user.role}) {user.id}")


@user_app.command("list")
def user_list(workspace: WorkspaceOpt,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the users of a workspace."""
    from app.domain.workspaces.service import list_users

    users = _with_session(uuid.UUID(workspace), list_users)
    if as_json:
        print(json.dumps([{"id": str(u.id), "email": u.email, "full_name": u.full_name,
                           "role": u.role, "is_active": u.is_active} for u in users]))
        return
    table = Table("id", "email", "name", "role", "active")
    for u in users:
        table.add_row(str(u.id), u.email, u.full_name, u.role, str(u.is_active))
    console.print(table)


@app.command()
def worker() -> None:
    """Run the arq worker (automations, deliveries, housekeeping)."""
    from arq.worker import run_worker

    from app.workers.settings import WorkerSettings

    run_worker(WorkerSettings)  # type: ignore[arg-type]


@app.command()
def serve(host: Annotated[str | None, typer.Option()] = None,
          port: Annotated[int | None, typer.Option()] = None,
          workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("app.main:app", host=host or settings.host, port=port or settings.port,
                workers=workers, log_level="warning", access_log=False)


def _demo_workspace(state_file: Path) -> dict[str, str]:
    """The demo workspace of this data folder: created once, then reused with its key."""
    if state_file.exists():
        demo = json.loads(state_file.read_text())
        from app.domain.workspaces.models import Workspace

        found = _with_session(uuid.UUID(demo["id"]),
                              lambda s: s.get(Workspace, uuid.UUID(demo["id"])))
        if found is not None:
            return demo  # type: ignore[no-any-return]
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace

    data = WorkspaceCreate(name="Demo Windows & Doors", owner_email="owner@demo.relata.dev",
                           owner_name="Demo Owner", owner_password="relata-demo",
                           default_region="RU", timezone="Europe/Moscow")
    workspace, _, key = _with_session(None, lambda s: create_workspace(s, data))
    demo = {"id": str(workspace.id), "api_key": key}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(demo))
    state_file.chmod(0o600)
    return demo


@app.command()
def run(data_dir: Annotated[Path, typer.Option(help="Where demo state is kept")]
        = Path(".relata")) -> None:
    """Migrate, ensure the demo workspace, then serve the API and a worker until Ctrl-C."""
    _require_database()
    settings = get_settings()
    migrate_database()
    demo = _demo_workspace(data_dir / "demo.json")
    base = f"http://{settings.host}:{settings.port}"
    # Plain print: rich would wrap the key and the curl line.
    print(f"""
Relata is starting
  API            {base}/api/v1
  API docs       {base}/docs
  GraphQL        {base}/graphql
  Demo workspace {demo['id']}  (login owner@demo.relata.dev / relata-demo)
  Demo API key   {demo['api_key']}

  curl -H 'Authorization: Bearer {demo['api_key']}' {base}/api/v1/contacts
Press Ctrl-C to stop.
""", flush=True)
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env),
        subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env),
    ]
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in procs):
        try:
            procs[0].wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    stop()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    console.print("stopped", style="green")


from app import cli_data, cli_transfer  # (these need `app` above)

cli_data.register(app)  # import, export, backup, restore
cli_transfer.register(workspace_app)  # workspace export / import

if __name__ == "__main__":
    main()
