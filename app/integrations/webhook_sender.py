"""One signed webhook request: check the URL again (DNS re-resolved now), pin the connection
to the checked address, sign (Standard Webhooks), POST, and say what happened.

Redirects are not followed (a 3xx is a failed attempt: a receiver that moved must be
updated), and the whole request is bounded: `connect` seconds to connect, `total` from the
first byte sent to the last byte read."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.config import Settings
from app.db import unit_of_work
from app.domain.shared.clock import clock
from app.domain.shared.principal import Principal
from app.domain.webhooks import service
from app.domain.webhooks.delivery import Claimed, Outcome, parse_retry_after
from app.integrations import http_guard, signing

RESPONSE_BODY_LIMIT = 2048
USER_AGENT = "Relata-Webhooks/1"
SHOWN_RESPONSE_HEADERS = ("content-type", "content-length", "retry-after", "location",
                          "server", "date")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 15.0


def _headers_shown(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in SHOWN_RESPONSE_HEADERS}


async def send(client: httpx.AsyncClient, claimed: Claimed, *, timeouts: Timeouts,
               now: datetime | None = None) -> Outcome:
    now = now or clock.now()
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **signing.sign_headers(claimed.secrets, str(claimed.id), int(now.timestamp()),
                                      claimed.body)}
    # The log shows what was sent; signatures are not secrets, the secrets never appear.
    shown = dict(headers)
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = await http_guard.check_url(claimed.url)
    except http_guard.UnsafeURLError as exc:
        return Outcome(None, None, f"refused: {exc}", shown, finished_at=clock.now())
    try:
        async with asyncio.timeout(timeouts.total):
            with http_guard.pinned(target):
                response = await client.post(
                    claimed.url, content=claimed.body, headers=headers,
                    follow_redirects=False,
                    timeout=httpx.Timeout(timeouts.total, connect=timeouts.connect))
                raw = b""
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) >= RESPONSE_BODY_LIMIT:
                        break
                await response.aclose()
    except TimeoutError:
        return Outcome(None, elapsed(), f"timed out after {timeouts.total:g} s", shown,
                       finished_at=clock.now())
    except httpx.TimeoutException as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: timed out", shown,
                       finished_at=clock.now())
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500], shown,
                       finished_at=clock.now())
    latency = elapsed()
    body = raw[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
    error = None
    if response.is_redirect:
        error = f"HTTP {response.status_code}: redirects are not followed (update the URL)"
    elif not response.is_success:
        error = f"HTTP {response.status_code}"
    finished = clock.now()
    return Outcome(response.status_code, latency, error, shown,
                   response_headers=_headers_shown(dict(response.headers)),
                   response_body=body or None,
                   retry_after=parse_retry_after(response.headers.get("retry-after"), finished)
                   if not response.is_success else None,
                   finished_at=finished)


async def test_ping(sessions: Any, principal: Principal, webhook_id: uuid.UUID,
                    settings: Settings) -> tuple[Claimed, Outcome]:
    """`POST /webhooks/{id}/test` and the `testWebhook` mutation: a signed `webhook.test`
    sent now, in two short transactions around the request, so a slow receiver (up to the
    timeout) holds no database connection or lock while it thinks."""
    async with unit_of_work(sessions, principal.workspace_id) as session:
        _, claimed = await service.new_test_delivery(session, principal, webhook_id)
    async with http_guard.pinning_client(max_connections=1) as client:
        outcome = await send(client, claimed, timeouts=Timeouts(
            settings.webhook_connect_timeout_seconds, settings.webhook_timeout_seconds))
    async with unit_of_work(sessions, principal.workspace_id) as session:
        await service.record_test_outcome(session, claimed, outcome, clock.now())
    return claimed, outcome
