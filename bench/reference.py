"""The baseline: the same contact queries on bare asyncpg + Starlette.

    RELATA_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/relata_bench \\
        .venv/bin/uvicorn bench.reference:app --port 8102

It keeps what the product guarantees and drops what a framework/ORM adds:

* the same API keys (resolved with `relata_api_key_lookup` + digest check, cached 5 s like
  Relata's principal cache), the same unprivileged role (`relata_app`, no BYPASSRLS), one
  transaction per request scoped with `set_config('app.workspace_id', ws, true)` so
  row-level security filters every query, as Relata does (the contact GET, as Relata's,
  and the phone or email lookup, as Relata's, are one statement that sets the workspace for
  itself: `relata_contact_card`, `relata_contact_by_identity`). The role is set once per pooled
  connection (`SET ROLE`; PostgreSQL's `RESET ALL`, which asyncpg runs when a connection goes
  back to the pool, leaves `role` alone), where Relata now runs `SET LOCAL ROLE` at the start
  of every transaction: one statement per request more on Relata's side;
* the same SQL shapes (contact by id, keyset list ordered by created_at desc, id desc with
  limit+1, identity lookup joined to the card), the same JSON shape (ContactRead incl.
  `local_time`, ListResponse, ETag);
* phones are normalized with the app's own `normalize_phone` (libphonenumber), the batch items
  are validated with the app's `ContactCreate` schema and normalized with the app's helpers.

The sales endpoints (my-work agenda, pipeline board, deal move) are in
bench/reference_sales.py; for them this module also resolves user access tokens (the JWT that
`POST /api/v1/auth/token` issues, checked with the same `RELATA_SECRET_KEY`) into a principal
with the same visibility as `auth.principal_for_user` (agents: their own records; managers:
their teams'), cached 5 s like API keys. The cached principal also carries the workspace's
time zone and currency.

What it does not do: no rate limiting (Relata does one Redis round trip per request), no
request-log line, no Prometheus histograms, no idempotency middleware, no ORM. The batch
endpoint is set-based (one identity check, one multi-row insert per table) instead of one
savepoint per item: it is the "what the hardware can do" line, not a drop-in replacement.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from pydantic import ValidationError as PydanticValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uuid_utils.compat import uuid7

from app.domain.contacts.schemas import ContactCreate
from app.domain.shared.cardfields import normalize_emails, normalize_phones, search_blob
from app.domain.shared.errors import DomainError
from app.domain.shared.normalize import (
    normalize_name,
    timezone_for_phone,
    try_normalize_phone,
)
from app.domain.workspaces import secrets

DATABASE_URL = os.environ.get("RELATA_DATABASE_URL", "").replace("postgresql+asyncpg://",
                                                                 "postgresql://")
APP_ROLE = os.environ.get("RELATA_APP_ROLE", "relata_app")
POOL_SIZE = int(os.environ.get("RELATA_DB_POOL_SIZE", "10")) * 2  # Relata: pool + overflow
CACHE_TTL = 5.0

COLUMNS = ("id, first_name, last_name, middle_name, full_name, phones, emails, address, "
           "timezone, status, kind, owner_id, company_id, source, utm, birthday, tags, "
           "custom_fields, external_id, version, created_at, updated_at, deleted_at, "
           "created_by, updated_by")
SQL_SET_WS = "select set_config('app.workspace_id', $1, true)"
# As Relata's GET (decision 0067): one statement that sets the workspace for itself.
SQL_CARD = f"select {COLUMNS} from relata_contact_card($1, $2)"
# As Relata's lookup (decision 0069): the same, by phone or email.
SQL_LOOKUP = f"select {COLUMNS} from relata_contact_by_identity($1, $2, $3)"
LIST_FILTERS = {"status": "status", "kind": "kind", "source": "source", "owner_id": "owner_id"}

_zones: dict[str, ZoneInfo | None] = {}


def _local_time(tz: str | None, now: datetime) -> str | None:
    if not tz:
        return None
    if tz not in _zones:
        try:
            _zones[tz] = ZoneInfo(tz)
        except Exception:  # noqa: BLE001
            _zones[tz] = None
    zone = _zones[tz]
    return now.astimezone(zone).isoformat(timespec="seconds") if zone else None


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def contact_json(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    data = dict(row)
    for key in ("phones", "emails", "address", "utm", "custom_fields"):
        data[key] = _json(data[key])
    data["local_time"] = _local_time(data["timezone"], now)
    return data


def problem(status: int, title: str, detail: str) -> Response:
    return Response(orjson.dumps({"type": "about:blank", "title": title, "status": status,
                                  "detail": detail}), status_code=status,
                    media_type="application/problem+json")


def ok(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_PASSTHROUGH_DATETIME,
                                 default=_default), status_code=status,
                    media_type="application/json", headers=headers)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError


class Principal:
    """An API key (sees everything) or a user (agents see their own records, managers their
    teams'), with the workspace's region and time zone, as Relata's principal + workspace."""

    __slots__ = (
        "currency",
        "key_id",
        "region",
        "role",
        "sees_unowned",
        "timezone",
        "user_id",
        "visible",
        "workspace_id",
        "write",
    )

    def __init__(self, workspace_id: str, key_id: uuid.UUID | None, region: str, write: bool,
                 timezone: str = "UTC", user_id: uuid.UUID | None = None,
                 role: str = "admin", visible: frozenset[uuid.UUID] | None = None,
                 sees_unowned: bool = True, currency: str = "USD") -> None:
        self.workspace_id, self.key_id, self.region, self.write = (workspace_id, key_id,
                                                                   region, write)
        self.timezone, self.user_id, self.role = timezone, user_id, role
        self.visible, self.sees_unowned, self.currency = visible, sees_unowned, currency

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"api_key:{self.key_id}"


_principals: dict[str, tuple[float, Principal]] = {}


def cached_principal(request: Request) -> Principal | None:
    """The caller's principal when `authenticate` resolved it less than CACHE_TTL ago."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    cached = _principals.get(secrets.digest(auth[7:]))
    return cached[1] if cached and cached[0] > time.monotonic() else None


async def authenticate(request: Request, conn: asyncpg.Connection) -> Principal | Response:
    """Resolve the caller (cached CACHE_TTL); in a transaction, since resolving a key sets
    its workspace to read the workspace row."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return problem(401, "Unauthenticated", "send Authorization: Bearer <API key>")
    token = auth[7:]
    key = secrets.digest(token)
    cached = _principals.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    if not token.startswith(secrets.API_KEY_PREFIX):
        principal: Principal | None = await _user_principal(conn, token)
        if principal is None:
            return problem(401, "Unauthenticated", "invalid or expired credentials")
        _principals[key] = (time.monotonic() + CACHE_TTL, principal)
        return principal
    key_id = secrets.parse_token_id(token, secrets.API_KEY_PREFIX)
    row = await conn.fetchrow("select * from relata_api_key_lookup($1)", key_id) \
        if key_id else None
    if row is None or row["revoked"] or not secrets.digest_matches(token, row["secret_hash"]):
        return problem(401, "Unauthenticated", "invalid or expired credentials")
    ws = str(row["workspace_id"])
    await conn.execute(SQL_SET_WS, ws)
    wrow = await conn.fetchrow(SQL_WORKSPACE)
    principal = Principal(ws, key_id, wrow["default_region"], row["scope"] == "read_write",
                          wrow["timezone"], currency=wrow["currency"])
    _principals[key] = (time.monotonic() + CACHE_TTL, principal)
    return principal


SECRET_KEY = os.environ.get("RELATA_SECRET_KEY", "")
SQL_WORKSPACE = ("select default_region, timezone, settings, "
                 "coalesce(settings->>'currency', 'USD') as currency from workspaces")


async def _user_principal(conn: asyncpg.Connection, token: str) -> Principal | None:
    """A user access token, resolved as `auth.principal_for_user` does (same queries)."""
    claims = secrets.read_access_token(token, secret=SECRET_KEY) if SECRET_KEY else None
    if claims is None:
        return None
    workspace_id, user_id = claims
    ws = str(workspace_id)
    await conn.execute(SQL_SET_WS, ws)
    user = await conn.fetchrow("select role, is_active from users where id = $1", user_id)
    if user is None or not user["is_active"]:
        return None
    teams = [r[0] for r in await conn.fetch(
        "select distinct t.id from teams t left join team_members m on m.team_id = t.id "
        "where t.head_id = $1 or m.user_id = $1", user_id)]
    wrow = await conn.fetchrow(SQL_WORKSPACE)
    role = user["role"]
    visible: frozenset[uuid.UUID] | None = None
    if role not in ("owner", "admin"):
        settings = _json(wrow["settings"])
        ids = {user_id}
        if (role == "manager" or settings.get("agents_see_team")) and teams:
            ids |= {r[0] for r in await conn.fetch(
                "select user_id from team_members where team_id = any($1)", teams)}
            ids |= {r[0] for r in await conn.fetch(
                "select head_id from teams where id = any($1)", teams) if r[0]}
        visible = frozenset(ids)
    return Principal(ws, None, wrow["default_region"], True, wrow["timezone"], user_id, role,
                     visible, role == "manager" or visible is None, wrow["currency"])


async def get_contact(request: Request) -> Response:
    try:
        contact_id = uuid.UUID(request.path_params["contact_id"])
    except ValueError:
        return problem(422, "Validation failed", "id is not a UUID")
    principal: Principal | Response | None = cached_principal(request)
    async with request.app.state.pool.acquire() as conn:
        if principal is None:
            async with conn.transaction():
                principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        row = await conn.fetchrow(SQL_CARD, principal.workspace_id, contact_id)
    if row is None:
        return problem(404, "Not found", f"contact {contact_id} not found")
    return ok(contact_json(row, datetime.now(UTC)), headers={"ETag": f'"{row["version"]}"'})


async def list_contacts(request: Request) -> Response:
    params = request.query_params
    limit = int(params.get("limit", "50"))
    if not 1 <= limit <= 200:
        return problem(422, "Validation failed", "limit must be between 1 and 200")
    where, args = ["deleted_at is null"], []
    for name, raw in params.items():
        if name in ("limit", "cursor"):
            continue
        if name == "tags__has":
            args.append([raw])
            where.append(f"tags @> ${len(args)}")
        elif name in LIST_FILTERS:
            args.append(uuid.UUID(raw) if name == "owner_id" else raw)
            where.append(f"{LIST_FILTERS[name]} = ${len(args)}")
        else:
            return problem(422, "Validation failed", f"unknown filter field {name!r}")
    if params.get("cursor"):
        value, last_id = orjson.loads(base64.urlsafe_b64decode(
            params["cursor"] + "=" * (-len(params["cursor"]) % 4)))
        args += [datetime.fromisoformat(value), uuid.UUID(last_id)]
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (f"select {COLUMNS} from contacts where {' and '.join(where)} "
           f"order by created_at desc, id desc limit ${len(args)}")
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        await conn.execute(SQL_SET_WS, principal.workspace_id)
        rows = await conn.fetch(sql, *args)
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        cursor = base64.urlsafe_b64encode(orjson.dumps(
            [last["created_at"].isoformat(), str(last["id"])])).decode().rstrip("=")
    now = datetime.now(UTC)
    return ok({"data": [contact_json(r, now) for r in rows], "next_cursor": cursor})


async def lookup_contact(request: Request) -> Response:
    phone = request.query_params.get("phone")
    email = request.query_params.get("email")
    if bool(phone) == bool(email):
        return problem(422, "Validation failed", "give exactly one of phone or email")
    principal: Principal | Response | None = cached_principal(request)
    async with request.app.state.pool.acquire() as conn:
        if principal is None:
            async with conn.transaction():
                principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        if phone:
            value = try_normalize_phone(phone, principal.region)
            if value is None:
                return problem(422, "Validation failed", f"not a valid phone number: {phone!r}")
            identity = ("phone", value)
        else:
            identity = ("email", (email or "").strip().lower())
        row = await conn.fetchrow(SQL_LOOKUP, principal.workspace_id, *identity)
    if row is None:
        return problem(404, "Not found", f"no contact with {identity[0]} {identity[1]}")
    return ok(contact_json(row, datetime.now(UTC)), headers={"ETag": f'"{row["version"]}"'})


INSERT_CONTACTS = """
insert into contacts (workspace_id, id, version, created_at, updated_at, created_by, updated_by,
  first_name, last_name, middle_name, full_name, phones, emails, address, timezone, status,
  kind, source, utm, birthday, tags, custom_fields, external_id, search_text)
values ($1, $2, 1, $3, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
  $18, $19, $20, $21)"""
INSERT_IDENTITIES = """
insert into contact_identities (workspace_id, kind, value, contact_id) values ($1, $2, $3, $4)"""
INSERT_EVENTS = """
insert into events (workspace_id, id, type, entity_type, entity_id, actor, after, changed,
  occurred_at, depth) values ($1, $2, 'contact.created', 'contact', $3, $4, $5, $6, $7, 0)"""


async def batch_contacts(request: Request) -> Response:
    """Set-based: validate and normalize in Python, one clash check, three inserts."""
    body = orjson.loads(await request.body())
    items = body.get("items") or []
    if not 1 <= len(items) <= 1000:
        return problem(422, "Validation failed", "1 to 1000 items")
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        principal = await authenticate(request, conn)
        if isinstance(principal, Response):
            return principal
        if not principal.write:
            return problem(403, "Forbidden", "this API key is read-only")
        await conn.execute(SQL_SET_WS, principal.workspace_id)
        settings = _json(await conn.fetchval("select settings from workspaces"))
        actor = f"api_key:{principal.key_id}"
        now = datetime.now(UTC)
        results: list[dict[str, Any]] = [{}] * len(items)
        prepared: list[tuple[int, dict[str, Any], set[tuple[str, str]]]] = []
        for index, raw in enumerate(items):
            try:
                data = ContactCreate.model_validate(raw)
                card = _card(data, principal.region, settings, actor, now)
            except PydanticValidationError as exc:
                results[index] = {"index": index, "status": "error",
                                  "error": {"status": 422, "detail": str(exc)}}
                continue
            except DomainError as exc:
                results[index] = {"index": index, "status": "error",
                                  "error": {"status": exc.status, "detail": exc.detail}}
                continue
            card["id"] = uuid7()
            idents = {("phone", p["e164"]) for p in card["phones"]} | \
                     {("email", e["email"]) for e in card["emails"]}
            prepared.append((index, card, idents))
        wanted = [i for _, _, ids in prepared for i in ids]
        taken = {(r["kind"], r["value"]): r["contact_id"] for r in await conn.fetch(
            "select kind, value, contact_id from contact_identities i join unnest($1::text[], "
            "$2::text[]) w(k, v) on i.kind = w.k and i.value = w.v",
            [k for k, _ in wanted], [v for _, v in wanted])} if wanted else {}
        accepted = []
        for index, card, idents in prepared:
            clash = next((i for i in sorted(idents) if i in taken), None)
            if clash:
                results[index] = {"index": index, "status": "error", "error": {
                    "status": 409, "detail": f"{clash[0]} {clash[1]} belongs to contact "
                                             f"{taken[clash]}"}}
                continue
            for ident in idents:
                taken[ident] = card["id"]
            accepted.append(card)
            results[index] = {"index": index, "status": "created", "id": card["id"]}
        if accepted:
            await _insert(conn, uuid.UUID(principal.workspace_id), accepted, actor, now)
    return ok({"results": results})


def _card(data: ContactCreate, region: str, settings: dict[str, Any], actor: str,
          now: datetime) -> dict[str, Any]:
    first, last, middle = (normalize_name(data.first_name), normalize_name(data.last_name),
                           normalize_name(data.middle_name))
    full = normalize_name(data.full_name) if data.full_name else \
        " ".join(p for p in (first, middle, last) if p)
    phones = normalize_phones(data.phones or [], region)
    emails = normalize_emails(data.emails or [])
    tz = data.timezone or (timezone_for_phone(phones[0]["e164"]) if phones else None)
    status = data.status or settings["contact_statuses"][0]
    kind = data.kind or settings["contact_kinds"][0]
    return {"first_name": first, "last_name": last, "middle_name": middle, "full_name": full or "",
            "phones": phones, "emails": emails,
            "address": data.address.model_dump(exclude_none=True) if data.address else None,
            "timezone": tz, "status": status, "kind": kind, "source": data.source,
            "utm": data.utm, "birthday": data.birthday, "tags": list(dict.fromkeys(
                t.strip() for t in data.tags or [] if t.strip())),
            "custom_fields": data.custom_fields or {}, "external_id": data.external_id,
            "search_text": search_blob(full, data.external_id, phones=phones, emails=emails),
            "created_by": actor, "created_at": now}


async def _insert(conn: asyncpg.Connection, ws: uuid.UUID, cards: list[dict[str, Any]],
                  actor: str, now: datetime) -> None:
    """Pipelined executemany: one network round trip per table."""
    def dumps(v: Any) -> str | None:
        return None if v is None else orjson.dumps(v).decode()

    await conn.executemany(INSERT_CONTACTS, [
        (ws, c["id"], now, actor, c["first_name"], c["last_name"], c["middle_name"],
         c["full_name"], dumps(c["phones"]), dumps(c["emails"]), dumps(c["address"]),
         c["timezone"], c["status"], c["kind"], c["source"], dumps(c["utm"]), c["birthday"],
         c["tags"], dumps(c["custom_fields"]), c["external_id"], c["search_text"])
        for c in cards])
    await conn.executemany(INSERT_IDENTITIES, [
        (ws, kind, value, c["id"]) for c in cards
        for kind, value in ([("phone", p["e164"]) for p in c["phones"]]
                            + [("email", e["email"]) for e in c["emails"]])])
    rows = []
    for c in cards:
        snap = {k: v for k, v in c.items() if k != "search_text"}
        snap.update(version=1, updated_at=now, updated_by=actor, deleted_at=None,
                    owner_id=None, company_id=None, merged_into_id=None)
        rows.append((ws, uuid7(), c["id"], actor, orjson.dumps(snap, default=_default).decode(),
                     sorted(snap), now))
    await conn.executemany(INSERT_EVENTS, rows)


async def healthz(_: Request) -> Response:
    return ok({"status": "ok"})


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(f'SET ROLE "{APP_ROLE}"')


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        DATABASE_URL, min_size=2, max_size=POOL_SIZE, init=_init_connection,
        server_settings={"application_name": "relata-reference", "timezone": "UTC"})
    try:
        yield
    finally:
        await app.state.pool.close()


# The sales endpoints (agenda, board, deal move) live in bench/reference_sales.py; it imports
# the helpers above, so it is imported here, after them.
from bench import reference_sales

app = Starlette(routes=[
    *reference_sales.ROUTES,
    Route("/healthz", healthz),
    Route("/api/v1/contacts", list_contacts),
    Route("/api/v1/contacts/batch", batch_contacts, methods=["POST"]),
    Route("/api/v1/contacts/lookup", lookup_contact),
    Route("/api/v1/contacts/{contact_id}", get_contact),
], lifespan=lifespan)
