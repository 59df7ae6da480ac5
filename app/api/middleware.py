"""ASGI middleware: request id + access log + metrics, rate-limit headers, idempotency keys."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any

import orjson
import structlog
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import enforce_rate_limit, resolve_caller, resources
from app.api.errors import domain_problem, http_problem, problem_response, too_large_problem
from app.domain.shared.errors import DomainError
from app.domain.shared.principal import Principal

log = structlog.get_logger("relata.http")

REQUESTS = Counter("relata_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("relata_http_request_duration_seconds", "HTTP request latency",
                    ["method", "route"],
                    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

MAX_BODY_BYTES = 10 * 1024 * 1024
# Multipart file uploads; the endpoint enforces its own (larger) size limit while reading.
UPLOAD_PATHS = frozenset({"/api/v1/imports"})
# API bodies are JSON; these take forms instead (OAuth2 token requests are form-encoded).
FORM_PATHS = frozenset({"/api/v1/auth/token"}) | UPLOAD_PATHS


async def _caller(scope: Scope) -> tuple[str, Principal | None, Response | None]:
    """Whose idempotency keys these are: the caller that Bearer credentials resolve to (a
    user or an API key, in its workspace), so that a retry after refreshing an access token
    still finds its key, and a revoked key or an expired token gets its 401, as on the route,
    not a replay. Without Bearer credentials (a public endpoint), the Authorization header
    as sent."""
    header = Headers(scope=scope).get("authorization", "")
    scheme, token = get_authorization_scheme_param(header)
    if scheme.lower() != "bearer" or not token:
        return hashlib.sha256(header.encode()).hexdigest(), None, None
    request = Request(scope)
    try:
        principal = request.app.state.principal_cache.ready(token) \
            or await resolve_caller(request, token)
    except DomainError as exc:
        return "", None, domain_problem(exc)
    return f"{principal.workspace_id}:{principal.actor}", principal, None


def _is_form_submission(path: str) -> bool:
    """Public web-form submissions read their own body (JSON or form-encoded, capped) and keep
    their Idempotency-Key per form in PostgreSQL (app/domain/forms/submissions.py)."""
    return path.startswith("/api/v1/forms/") and path.endswith("/submissions")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                            and media.endswith("+json"))


def _unsupported_body(scope: Scope, headers: Headers) -> bool:
    """A request body that an /api endpoint cannot read: not JSON, or with no content type."""
    if scope["method"] not in ("POST", "PUT", "PATCH") or not scope["path"].startswith("/api/") \
            or scope["path"] in FORM_PATHS or _is_form_submission(scope["path"]):
        return False
    has_body = headers.get("content-length", "0") != "0" \
        or "chunked" in headers.get("transfer-encoding", "")
    return has_body and not _is_json(headers.get("content-type", ""))


_METRICS: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter's and the latency histogram's children for one route and status,
    looked up once (`labels()` costs more than the increment)."""
    key = (method, route, status)
    children = _METRICS.get(key)
    if children is None:
        children = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        if len(_METRICS) < 10_000:  # routes are templates: only odd methods make new keys
            _METRICS[key] = children
    return children


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="the request body is too large")


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` for a body with no Content-Length (chunked): BodyTooLarge once more than
    `limit` bytes have come. (A stated length over the limit is refused before reading, and
    the server reads no more than a stated length.) FastAPI re-raises it from its body
    parsing, so it ends as a 413 problem like any HTTP error."""
    received = 0

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return capped


class RequestContextMiddleware:
    """Assigns the request id (or keeps a sane one from X-Request-ID), echoes it, logs the
    request as one JSON line, counts it, adds RateLimit-* headers, caps body size and refuses
    bodies that are not JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() \
            else os.urandom(16).hex()  # 32 random hex digits, in a fifth of uuid4().hex's time
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                state = scope.get("state") or {}
                for name, value in (state.get("ratelimit_headers") or {}).items():
                    out.setdefault(name, value)
            await send(message)

        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES \
                and scope["path"] not in UPLOAD_PATHS:
            # refused before reading; a body with no length is capped as it streams in
            # (`_capped`, below)
            response = too_large_problem(f"bodies are limited to {MAX_BODY_BYTES} bytes")
            await response(scope, receive, send_wrapper)
        elif _unsupported_body(scope, headers):
            response = problem_response(415, "Unsupported media type",
                                        "send the body as JSON with Content-Type: "
                                        "application/json", slug="unsupported-media-type")
            await response(scope, receive, send_wrapper)
        else:
            if not length and scope["path"] not in UPLOAD_PATHS:
                receive = _capped(receive, MAX_BODY_BYTES)
            try:
                await self.app(scope, receive, send_wrapper)
            except StarletteHTTPException as exc:
                # the body limit, when a middleware (idempotency keys) reads the body
                # before FastAPI's exception handlers are in reach
                if response_started:
                    raise
                await http_problem(exc)(scope, receive, send_wrapper)
            except Exception as exc:
                log.exception("unhandled error", error=repr(exc))
                if not response_started:
                    await problem_response(500, "Internal error",
                                           "something went wrong on our side",
                                           slug="internal")(scope, receive, send_wrapper)
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", "unmatched")
        counter, latency = _metrics(scope["method"], route, status)
        counter.inc()
        latency.observe(elapsed)
        log.info("request", method=scope["method"], path=scope["path"], route=route,
                 status=status, duration_ms=round(elapsed * 1000, 2))


class IdempotencyMiddleware:
    """`Idempotency-Key` on POST and PATCH, stored in Redis per caller (`_caller`).

    Same key + same body replays the stored response; a different body is a 422; a duplicate
    while the first is still running is a 409. Server errors are not stored, so they can be
    retried with the same key."""

    def __init__(self, app: ASGIApp, *, ttl_seconds: int) -> None:
        self.app = app
        self.ttl = ttl_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH") \
                or scope["path"] in UPLOAD_PATHS \
                or _is_form_submission(scope["path"]):  # an upload is not replayed from memory
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255:
            await problem_response(400, "Malformed request",
                                   "Idempotency-Key must be 1 to 255 characters",
                                   slug="malformed")(scope, receive, send)
            return
        owner, principal, refusal = await _caller(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = await _read_body(receive)
        redis_key = f"idem:{owner}:{key}"
        fingerprint = hashlib.sha256(scope["method"].encode() + b" " + scope["path"].encode()
                                     + b"\n" + body).hexdigest()
        redis = scope["app"].state.resources.redis
        try:
            claimed = await redis.set(redis_key, orjson.dumps(
                {"state": "in_flight", "fingerprint": fingerprint}), nx=True, ex=300)
            stored = None if claimed else await redis.get(redis_key)
        except Exception as exc:  # noqa: BLE001
            log.warning("idempotency store unavailable", error=repr(exc))
            await problem_response(503, "Service unavailable",
                                   "idempotency keys cannot be checked right now; retry",
                                   slug="unavailable")(scope, receive, send)
            return
        if not claimed:
            if principal is not None:  # a replay counts against the caller's limit too
                request = Request(scope)
                try:
                    await enforce_rate_limit(request, resources(request), principal.actor,
                                             resources(request).settings.rate_limit_per_minute)
                except DomainError as exc:
                    await domain_problem(exc)(scope, receive, send)
                    return
            await self._answer_duplicate(stored, fingerprint, scope, receive, send)
            return
        await self._run_and_store(scope, body, send, redis, redis_key, fingerprint)

    async def _answer_duplicate(self, stored: bytes | None, fingerprint: str, scope: Scope,
                                receive: Receive, send: Send) -> None:
        entry: dict[str, Any] = orjson.loads(stored) if stored else {}
        if entry.get("fingerprint") != fingerprint:
            response = problem_response(
                422, "Idempotency key reused",
                "this Idempotency-Key was used with a different request", slug="idempotency")
        elif entry.get("state") == "in_flight":
            response = problem_response(409, "Request in progress",
                                        "a request with this Idempotency-Key is still running",
                                        slug="idempotency-in-flight")
        else:
            await send({"type": "http.response.start", "status": entry["status"],
                        "headers": [(k.encode(), v.encode()) for k, v in entry["headers"]]
                        + [(b"idempotent-replayed", b"true")]})
            await send({"type": "http.response.body",
                        "body": base64.b64decode(entry["body"])})
            return
        await response(scope, receive, send)

    async def _run_and_store(self, scope: Scope, body: bytes, send: Send, redis: Any,
                             redis_key: str, fingerprint: str) -> None:
        status = 500
        out_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers.extend((k.decode(), v.decode()) for k, v in message["headers"]
                                   if k.lower() not in (b"x-request-id", b"content-length")
                                   and not k.lower().startswith(b"ratelimit"))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            if status < 500 and status not in (401, 429):
                await redis.set(redis_key, orjson.dumps({
                    "state": "done", "fingerprint": fingerprint, "status": status,
                    "headers": out_headers,
                    "body": base64.b64encode(b"".join(chunks)).decode()}), ex=self.ttl)
            else:
                await redis.delete(redis_key)


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)
