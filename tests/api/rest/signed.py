"""Signing inbound requests as a PBX or mail provider would (Standard Webhooks)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from app.integrations.signing import sign_headers
from tests.conftest import Workspace


async def new_integration(ws: Workspace, kind: str = "telephony", **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/integrations", json={"kind": kind, "name": f"{kind} 1",
                                                          **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"].startswith("whsec_")
    return body


def signed(integration: dict[str, Any], payload: dict[str, Any], *, secret: str | None = None,
           timestamp: int | None = None, integration_id: str | None = None
           ) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = sign_headers([secret or integration["secret"]], f"msg_{uuid.uuid4().hex}",
                           timestamp or int(time.time()), body)
    headers["relata-integration"] = integration_id or integration["id"]
    headers["content-type"] = "application/json"
    return body, headers


async def post_signed(client: httpx.AsyncClient, url: str, integration: dict[str, Any],
                      payload: dict[str, Any], **kw: Any) -> httpx.Response:
    body, headers = signed(integration, payload, **kw)
    return await client.post(url, content=body, headers=headers)


async def call(client: httpx.AsyncClient, integration: dict[str, Any], **event: Any
               ) -> httpx.Response:
    payload = {"direction": "in", "to": "+74950000000", **event}
    return await post_signed(client, "/api/v1/integrations/telephony/calls", integration,
                             payload)


async def email(client: httpx.AsyncClient, integration: dict[str, Any], *,
                secret: str | None = None, **mail: Any) -> httpx.Response:
    return await post_signed(client, "/api/v1/integrations/email/inbound", integration,
                             {"to": ["sales@okna.example"], **mail}, secret=secret)
