"""REST, public (no Authorization): a website form's submissions, its embed script and its
public definition, under /api/v1/forms/{form_key}/….

The order of checks keeps floods cheap: the form's key, origins and limit come from a
short-lived per-process cache (one tiny transaction on a miss); then CORS, the per-IP and
per-form rate limits (Redis), the capped body, and only then the workspace's transaction.
Every answer to an allowed origin carries its CORS headers, errors included, so the embedded
script can show them."""

from __future__ import annotations

import html
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import Counter
from sqlalchemy import select

from app.api.deps import (
    Resources,
    client_address,
    driver_transaction,
    enforce_rate_limit,
    resources,
)
from app.api.errors import PROBLEM, PROBLEM_RESPONSES
from app.db import set_workspace
from app.domain.forms import plain, service, submissions
from app.domain.forms.models import Form
from app.domain.forms.schemas import PublicForm, SubmissionAccepted
from app.domain.forms.submissions import FormView, Sender
from app.domain.shared.batch import problem_of
from app.domain.shared.errors import DomainError, ForbiddenError, NotFoundError
from app.domain.shared.ids import new_id
from app.integrations.webforms import (
    BodyTooLargeError,
    MalformedBodyError,
    cors_headers,
    embed_script,
    is_form_encoded,
    parse_submission,
    preflight_headers,
)

router = APIRouter(prefix="/api/v1/forms", tags=["forms (public)"])

SUBMISSIONS = Counter("relata_form_submissions_total", "Public form submissions by outcome",
                      ["outcome"])

_MISSING = object()


class FormCache:
    """Form views by key for `ttl` seconds (None: no such form), bounded."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, FormView | None]] = {}

    def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return _MISSING

    def put(self, key: str, view: FormView | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, view)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


def _cache(app: FastAPI) -> FormCache:
    cache = getattr(app.state, "form_cache", None)
    if cache is None:
        cache = app.state.form_cache = FormCache(
            app.state.resources.settings.form_cache_seconds)
    return cache


def forget(app: FastAPI, form_key: str) -> None:
    """An admin changed the form: this process reads it again on its next public request."""
    _cache(app).forget(form_key)


async def _view(request: Request, form_key: str) -> FormView:
    cache = _cache(request.app)
    view = cache.get(form_key)
    if view is _MISSING:
        async with resources(request).sessions() as session, session.begin():
            form = await submissions.find_form(session, form_key)
        view = submissions.view_of(form) if form is not None else None
        cache.put(form_key, view)
    if view is None or not view.enabled:
        raise NotFoundError("no such form, or it is switched off")
    return view  # type: ignore[no-any-return]


async def _live_form(session: Any, view: FormView) -> Form:
    await set_workspace(session, view.workspace_id)
    form = (await session.execute(select(Form).where(
        Form.id == view.id, Form.deleted_at.is_(None)))).scalar_one_or_none()
    if form is None or not form.enabled:
        raise NotFoundError("no such form, or it is switched off")
    return form  # type: ignore[no-any-return]


def _problem(exc: DomainError, cors: dict[str, str]) -> JSONResponse:
    body = problem_of(exc)
    if not body["errors"]:
        body.pop("errors")
    body.pop("headers", None)
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM,
                        headers={**(exc.extra.get("headers") or {}), **cors})


def _base_url(request: Request, res: Resources) -> str:
    return res.settings.public_base_url or str(request.base_url)


async def _read_body(request: Request, cap: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise BodyTooLargeError(f"a submission is at most {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLargeError(f"a submission is at most {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _client_id(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise MalformedBodyError("Idempotency-Key must be 1 to 200 printable characters")
    return key


def _wants_html(request: Request) -> bool:
    """A plain HTML form posted without a script: answer the browser with a page."""
    accept = request.headers.get("accept", "")
    return is_form_encoded(request.headers.get("content-type")) and "text/html" in accept \
        and "application/json" not in accept


def _accepted(request: Request, form: Form, submission_id: Any, cors: dict[str, str], *,
              replayed: bool) -> Response:
    headers = {**cors, **({"Idempotent-Replayed": "true"} if replayed else {})}
    if _wants_html(request):
        if form.redirect_url:
            return RedirectResponse(form.redirect_url, status_code=303, headers=headers)
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>{html.escape(form.name)}"
                            f"</title><p>{html.escape(form.success_message)}</p>",
                            status_code=201, headers=headers)
    body = SubmissionAccepted(id=submission_id, message=form.success_message,
                              redirect_url=form.redirect_url)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=headers)


SUBMISSION_BODY: dict[str, Any] = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": {
        "type": "object", "maxProperties": 200,
        "additionalProperties": {"type": ["string", "boolean", "number", "null"]}},
        "example": {"name": "Ivan Petrov", "phone": "8 (495) 123-45-67",
                    "utm_source": "yandex", "page_url": "https://okna.example/order"}},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "maxProperties": 200,
        "additionalProperties": {"type": "string"}}},
}}}
PUBLIC_ERRORS = {code: PROBLEM_RESPONSES[code] for code in (400, 403, 404, 413, 422, 429)}


@router.post("/{form_key}/submissions", status_code=201, response_model=SubmissionAccepted,
             openapi_extra=SUBMISSION_BODY, responses={
                 **PUBLIC_ERRORS, 303: {"description": "A plain HTML form post (form-encoded, "
                                                       "Accept: text/html) to a form with a "
                                                       "redirect_url"},
                 415: PROBLEM_RESPONSES[422] | {"description": "Not JSON or form-encoded"}})
async def submit_form(form_key: str, request: Request) -> Response:
    """**Public** (no Authorization). A website visitor's request: the field values by name
    (JSON or `application/x-www-form-urlencoded`), optionally `utm_source`, `utm_medium`,
    `utm_campaign`, `utm_term`, `utm_content`, `referrer`, `page_url`, and a
    `submission_id` (or an `Idempotency-Key` header): a resubmission with it returns the
    first answer. Finds or creates the card by phone/email, makes a deal in the form's
    stage, an inbox item and the `form.submitted` event, in one transaction.

    A browser page must be on one of the form's `allowed_origins` (403 otherwise); 429 past
    the per-IP or per-form limit, 413 past the size caps, 422 naming each faulty field."""
    res = resources(request)
    settings = res.settings
    cors: dict[str, str] = {}
    origin = request.headers.get("origin")
    try:
        view = await _view(request, form_key)
        cors = cors_headers(view.allowed_origins, origin)
        ip = client_address(request)
        # The per-IP limit second: its RateLimit-* headers are the ones a visitor meets.
        await enforce_rate_limit(request, res, f"form:{view.id}", view.submissions_per_minute
                                 or settings.form_submissions_per_form_per_minute)
        await enforce_rate_limit(request, res, f"form-ip:{ip}",
                                 settings.form_submissions_per_ip_per_minute)
        payload = parse_submission(request.headers.get("content-type"),
                                   await _read_body(request, settings.form_max_body_bytes))
        sender = Sender(origin=origin, ip=ip, user_agent=request.headers.get("user-agent"),
                        referer=request.headers.get("referer"),
                        client_submission_id=_client_id(request))
        try:
            async with driver_transaction(res, view.workspace_id) as conn:
                plain_one = await plain.submit_on(conn, view, payload, sender)
        except plain.LostRace:
            plain_one = None
        if plain_one is not None:
            SUBMISSIONS.labels("honeypot" if plain_one.honeypot else "accepted").inc()
            return _accepted(request, plain_one.form, plain_one.submission_id, cors,
                             replayed=False)
        async with res.sessions() as session, session.begin():
            form = await _live_form(session, view)
            if submissions.honeypot_filled(form, payload):
                await submissions.count_honeypot(session, form.id)
                SUBMISSIONS.labels("honeypot").inc()
                return _accepted(request, form, new_id(), cors, replayed=False)
            region = await submissions.workspace_region(session, form)
            cleaned = submissions.clean(form, payload, region=region)
            submission, replayed = await submissions.submit(session, form, cleaned, sender)
        SUBMISSIONS.labels("replayed" if replayed else "accepted").inc()
        return _accepted(request, form, submission.id, cors, replayed=replayed)
    except DomainError as exc:
        SUBMISSIONS.labels(f"http_{exc.status}").inc()
        return _problem(exc, cors)


@router.options("/{form_key}/submissions", status_code=204,
                responses={403: PROBLEM_RESPONSES[403], 404: PROBLEM_RESPONSES[404]})
async def submission_preflight(form_key: str, request: Request) -> Response:
    """**Public.** The browser's CORS preflight: 204 with the CORS headers for an allowed
    origin asking to POST; 403 without them otherwise."""
    try:
        view = await _view(request, form_key)
        headers = preflight_headers(view.allowed_origins, request.headers.get("origin"),
                                    request.headers.get("access-control-request-method"))
    except DomainError as exc:
        return _problem(exc, {})
    return Response(status_code=204, headers=headers)


async def _public(request: Request, form_key: str) -> tuple[PublicForm, FormView]:
    view = await _view(request, form_key)
    res = resources(request)
    async with res.sessions() as session, session.begin():
        form = await _live_form(session, view)
        return service.public_view(form, _base_url(request, res)), view


def _soft_cors(view: FormView, origin: str | None) -> dict[str, str]:
    try:
        return cors_headers(view.allowed_origins, origin)
    except ForbiddenError:
        return {}


@router.get("/{form_key}/embed.js", response_class=Response, responses={
    200: {"content": {"text/javascript": {"schema": {"type": "string"}}},
          "description": "The script"},
    304: {"description": "Not modified (If-None-Match)"}, 404: PROBLEM_RESPONSES[404]})
async def embed_js(form_key: str, request: Request) -> Response:
    """**Public.** The script a page embeds with one tag:
    `<script src="…/embed.js" data-target="#order-form" async></script>`. It renders the
    form (honeypot included), captures UTM parameters and the referrer, posts with
    `fetch`, and shows the success message, the field errors, or follows the redirect."""
    try:
        public, _ = await _public(request, form_key)
    except DomainError as exc:
        return _problem(exc, {})
    script, etag = embed_script(public)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300",
               "Cross-Origin-Resource-Policy": "cross-origin",
               "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/{form_key}/definition", response_model=PublicForm,
            responses={404: PROBLEM_RESPONSES[404]})
async def public_definition(form_key: str, request: Request) -> Response:
    """**Public.** What a custom frontend needs to render and post the form: its fields
    (labels, types, choices, limits), the honeypot's name, the success message or
    redirect and the submit URL. Nothing about the workspace or the mapping."""
    try:
        public, view = await _public(request, form_key)
    except DomainError as exc:
        return _problem(exc, {})
    return JSONResponse(public.model_dump(mode="json"), headers={
        "Cache-Control": "public, max-age=60",
        **_soft_cors(view, request.headers.get("origin"))})
