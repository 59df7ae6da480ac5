"""The contact card's GET for a cached caller, answered below FastAPI's routing (decision 0068).

`GET /api/v1/contacts/{id}` is what a phone's screen or a frontend opens all day. For it,
FastAPI's routing, its dependency solving and its request/response plumbing cost about a
third of the request. `HotRoutes` sits inside the access log and the request id
(`RequestContextMiddleware`) and answers that one request with the route's own parts:
`PrincipalCache.ready`, `enforce_rate_limit`, `pooled_driver` and
`service.read_contact_alone`, with `record_response` for a card and `domain_problem` for a
404 or a 429.

It passes the request to the app, untouched and before it has counted or read anything,
whenever the answer would need more than those parts: a caller who is not cached (or whose
key's last use is due), no `Bearer` credentials, an id that is not a canonical UUID, or any
other path. FastAPI's route (`app.api.rest.contacts.get_contact`) therefore stays the
documented endpoint (OpenAPI) and the one that resolves callers. A test compares the two
paths' answers header by header."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import Response
from starlette.routing import BaseRoute, get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import bind_caller, enforce_rate_limit, pooled_driver, resources
from app.api.errors import domain_problem
from app.api.rest import contacts
from app.api.rest.common import record_response
from app.domain.contacts import service
from app.domain.shared.errors import DomainError

CARD_PREFIX = "/api/v1/contacts/"
_UUID_LENGTH = 36  # the canonical 8-4-4-4-12 form; any other spelling goes to the app


def _card_route() -> BaseRoute:
    """FastAPI's route for the card, which the access log and the metrics are labelled by."""
    for route in contacts.router.routes:
        if getattr(route, "endpoint", None) is contacts.get_contact:
            return route
    raise LookupError("the contact card's GET route is gone")


class HotRoutes:
    """ASGI middleware: serves the contact card's GET for a cached caller (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.card_route = _card_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" \
                and get_route_path(scope).startswith(CARD_PREFIX):
            response = await self._card(scope)
            if response is not None:
                scope["route"] = self.card_route
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _card(self, scope: Scope) -> Response | None:
        """The card's response, or None when the app must answer (it has done nothing)."""
        tail = get_route_path(scope)[len(CARD_PREFIX):]  # the path below any root_path
        if len(tail) != _UUID_LENGTH:
            return None
        try:
            contact_id = uuid.UUID(tail)
        except ValueError:
            return None
        if str(contact_id) != tail.lower():  # "----" and 32 digits, say: the app decides
            return None
        request = Request(scope)
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        principal = request.app.state.principal_cache.ready(token)
        if principal is None:
            return None
        bind_caller(request, principal)
        res = resources(request)
        try:
            await enforce_rate_limit(request, res, principal.actor,
                                     res.settings.rate_limit_per_minute)
            async with pooled_driver(res) as conn:
                contact = await service.read_contact_alone(conn, principal, contact_id)
        except DomainError as exc:
            return domain_problem(exc)
        return record_response(contact, contact.version)
