"""REST: /api/v1/integrations — telephony and email integrations (admins), and the signed
inbound endpoints they post to (docs/integrations/telephony.md, email.md)."""

from __future__ import annotations

import time
import uuid
from typing import Any, TypeVar

import pydantic
from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from app.api.deps import (
    Ctx,
    PageDep,
    PublicSession,
    client_address,
    count_hit,
    limit_reached,
    resources,
)
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.domain.inbound_email import service as inbound_email
from app.domain.inbound_email.schemas import InboundEmail, InboundEmailResult
from app.domain.inbound_messages import service as inbound_messages
from app.domain.inbound_messages.schemas import InboundMessageIn, InboundMessageResult
from app.domain.integrations import service
from app.domain.integrations.schemas import (
    IntegrationCreate,
    IntegrationRead,
    IntegrationUpdate,
    IntegrationWithSecret,
)
from app.domain.shared.errors import DomainError, RateLimitedError, UnauthenticatedError
from app.domain.telephony import service as telephony
from app.domain.telephony.schemas import CallEvent, CallResult

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])
inbound = APIRouter(prefix="/api/v1/integrations", tags=["integrations: inbound"])

CALL_BODY_LIMIT = 64 * 1024
EMAIL_BODY_LIMIT = 2 * 1024 * 1024
MESSAGE_BODY_LIMIT = 256 * 1024
M = TypeVar("M", bound=BaseModel)

_SIGNED = {
    "parameters": [
        {"name": service.HEADER, "in": "header", "required": True,
         "schema": {"type": "string", "format": "uuid"},
         "description": "The integration that signed the request"},
        {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "webhook-timestamp", "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "Unix seconds; ±5 minutes"},
        {"name": "webhook-signature", "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "v1,<base64 HMAC-SHA256 of id.timestamp.body>"},
    ],
}


class PayloadTooLargeError(DomainError):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


def _openapi(model: type[BaseModel]) -> dict[str, Any]:
    return {**_SIGNED, "requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


# Addresses this process refused in the current minute, with that minute: only they are
# checked against the shared count before the lookup, so a PBX whose requests pass costs no
# Redis read. Another process refuses an address once itself before it checks it too.
_refused: dict[str, int] = {}


async def _authenticate(request: Request, session: Any, body: bytes,
                        kind: str) -> tuple[Any, Any]:
    """The integration and its principal, or 401. An address that keeps sending requests
    that fail the check is turned away with a 429 before any lookup, for the rest of the
    minute (a legitimate PBX or bridge, whose requests pass, is never limited)."""
    res = resources(request)
    limit = res.settings.inbound_refusals_per_ip_per_minute
    subject = f"inbound-refused:{client_address(request)}"
    minute = int(time.time() // 60)
    if _refused.get(subject) == minute:
        reset = await limit_reached(res, subject, limit)
        if reset is not None:
            raise RateLimitedError(f"{limit} requests from this address failed the signature "
                                   f"check this minute; retry in {reset} s",
                                   extra={"headers": {"Retry-After": str(reset)}})
    try:
        return await service.authenticate(session, request.headers, body, kind=kind)
    except UnauthenticatedError:
        await count_hit(res, subject)
        if len(_refused) > 10_000:
            _refused.clear()
        _refused[subject] = minute
        raise


async def _body(request: Request, limit: int) -> bytes:
    """The raw body (the signature covers its bytes), at most `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except pydantic.ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


# Managing integrations

@router.post("", status_code=status.HTTP_201_CREATED, response_model=IntegrationWithSecret)
async def create_integration(body: IntegrationCreate, ctx: Ctx,
                             response: Response) -> IntegrationWithSecret:
    """A telephony or email integration (admins). The answer carries its signing `secret`
    (whsec_…) — the only time it is shown; the sender signs every request with it."""
    integration = await service.create_integration(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/integrations/{integration.id}"
    set_etag(response, integration.version)
    return service.with_secret(integration)


@router.get("", response_model=ListResponse[IntegrationRead])
async def list_integrations(request: Request, ctx: Ctx,
                            page: PageDep) -> ListResponse[IntegrationRead]:
    """Integrations, without their secrets. Filters: `kind=telephony`, `enabled=true`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_integrations(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page)
    return ListResponse(data=[service.to_read(i) for i in rows], next_cursor=cursor)


@router.get("/{integration_id}", response_model=IntegrationRead)
async def get_integration(integration_id: uuid.UUID, ctx: Ctx,
                          response: Response) -> IntegrationRead:
    integration = await service.get_integration(ctx.session, ctx.principal, integration_id)
    set_etag(response, integration.version)
    return service.to_read(integration)


@router.patch("/{integration_id}", response_model=IntegrationRead)
async def update_integration(integration_id: uuid.UUID, body: IntegrationUpdate,
                             request: Request, ctx: Ctx, response: Response) -> IntegrationRead:
    """Rename, switch off (`enabled: false`: its requests get 401), change the round-robin
    team or the extension map. `If-Match` optional."""
    integration = await service.update_integration(
        ctx.session, ctx.principal, integration_id, body,
        expected_version=expected_version(request))
    set_etag(response, integration.version)
    return service.to_read(integration)


@router.post("/{integration_id}/rotate-secret", response_model=IntegrationWithSecret)
async def rotate_secret(integration_id: uuid.UUID, ctx: Ctx,
                        response: Response) -> IntegrationWithSecret:
    """A new secret, shown once; the old one still verifies for 24 hours."""
    integration = await service.rotate_secret(ctx.session, ctx.principal, integration_id)
    set_etag(response, integration.version)
    return service.with_secret(integration)


@router.delete("/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_integration(integration_id: uuid.UUID, ctx: Ctx) -> Response:
    """Its requests get 401 from now on; what it logged stays."""
    await service.delete_integration(ctx.session, ctx.principal, integration_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Signed inbound requests

@inbound.post("/telephony/calls", response_model=CallResult, openapi_extra=_openapi(CallEvent))
async def call_event(request: Request, session: PublicSession) -> CallResult:
    """A call event from a PBX (signed; see docs/integrations/telephony.md). On `ringing`
    the answer carries the `screen_pop`; every event updates the one call on the timeline.
    401 for a bad or missing signature (nothing is written), 413 over 64 KiB."""
    body = await _body(request, CALL_BODY_LIMIT)
    integration, principal = await _authenticate(request, session, body, "telephony")
    event = _parse(CallEvent, body)
    return await telephony.handle_call(session, integration, principal, event)


@inbound.post("/email/inbound", response_model=InboundEmailResult,
              openapi_extra=_openapi(InboundEmail),
              responses={201: {"model": InboundEmailResult, "description": "Recorded"}})
async def inbound_email_message(request: Request, session: PublicSession,
                                response: Response) -> InboundEmailResult:
    """An email to the company's address (signed; see docs/integrations/email.md): 201 when
    recorded, 200 with `duplicate: true` for a Message-ID already recorded. 401 for a bad
    or missing signature, 413 over 2 MiB, 422 for a malformed message."""
    body = await _body(request, EMAIL_BODY_LIMIT)
    _, principal = await _authenticate(request, session, body, "email")
    mail = _parse(InboundEmail, body)
    result = await inbound_email.receive_email(session, principal, mail)
    response.status_code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
    return result


@inbound.post("/messages/inbound", response_model=InboundMessageResult,
              openapi_extra=_openapi(InboundMessageIn),
              responses={201: {"model": InboundMessageResult, "description": "Recorded"}})
async def inbound_message(request: Request, session: PublicSession,
                          response: Response) -> InboundMessageResult:
    """An SMS or messenger message to the company (signed by a `messaging` integration; see
    docs/integrations/messages.md): 201 when recorded, 200 with `duplicate: true` for a
    (channel, message_id) already recorded. 401 for a bad or missing signature, 413 over
    256 KiB, 422 for a malformed message."""
    body = await _body(request, MESSAGE_BODY_LIMIT)
    _, principal = await _authenticate(request, session, body, "messaging")
    message = _parse(InboundMessageIn, body)
    result = await inbound_messages.receive_message(session, principal, message)
    response.status_code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
    return result
