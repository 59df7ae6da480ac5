"""Every ten seconds: automation work that came due, in every workspace — date rules,
retries of failed runs, actions after a `wait` — and the rules' webhook calls.

A webhook call is claimed in one transaction (a lease: `sending` until a minute from now),
sent outside any transaction, and settled in another; a worker killed in between leaves the
lease to run out and the call is made again with the same `webhook-id` header, so the
receiver can tell a repeat (at-least-once, as every webhook sender that survives crashes)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select

from app.db import unit_of_work
from app.domain.automations.models import ScheduledAction
from app.domain.automations.runner import RETRY_DELAYS
from app.domain.automations.sweeps import (
    continue_waiting_runs,
    fire_date_rules,
    retry_due_runs,
)
from app.domain.shared.clock import clock
from app.integrations import http_guard
from app.workers.maintenance import all_workspace_ids
from app.workers.sweeps import Sweep, sweep_every_workspace
from app.workers.webhooks import http_client as webhook_http_client

log = structlog.get_logger("relata.worker")

AUTOMATION_SWEEPS: dict[str, Sweep] = {
    "date_rules": fire_date_rules,
    "retries": retry_due_runs,
    "waits": continue_waiting_runs,
}
WEBHOOK_LEASE = timedelta(minutes=1)
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


async def _claim_webhook_calls(sessions: Any, workspace_id: uuid.UUID,
                               now: datetime) -> list[ScheduledAction]:
    async with unit_of_work(sessions, workspace_id) as session:
        calls = list((await session.execute(select(ScheduledAction).where(
            ScheduledAction.kind == "webhook",
            ScheduledAction.status.in_(("pending", "sending")), ScheduledAction.due_at <= now)
            .order_by(ScheduledAction.due_at).limit(50)
            .with_for_update(skip_locked=True))).scalars())
        for call in calls:
            call.status, call.attempts = "sending", call.attempts + 1
            call.due_at = now + WEBHOOK_LEASE
        return calls


async def _post(http: httpx.AsyncClient, call: ScheduledAction) -> str | None:
    """None when the receiver took it (2xx); else why not. The URL is checked again (SSRF
    rules, DNS resolved now) and the connection pinned to the checked address."""
    try:
        target = await http_guard.check_url(call.payload["url"])
    except http_guard.UnsafeURLError as exc:
        return f"refused: {exc}"
    try:
        with http_guard.pinned(target):
            response = await http.post(
                call.payload["url"], content=orjson.dumps(call.payload["body"]),
                headers={"content-type": "application/json", "webhook-id": str(call.id)},
                timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code}"


async def send_webhook_calls(ctx: dict[str, Any], workspace_id: uuid.UUID) -> int:
    sessions, now = ctx["sessions"], clock.now()
    calls = await _claim_webhook_calls(sessions, workspace_id, now)
    for call in calls:
        error = await _post(webhook_http_client(ctx), call)
        async with unit_of_work(sessions, workspace_id) as session:
            row = await session.get(ScheduledAction, (workspace_id, call.id))
            if row is None:
                continue
            row.last_error = error
            if error is None:
                row.status, row.finished_at = "done", clock.now()
            elif row.attempts > len(RETRY_DELAYS):
                row.status, row.finished_at = "failed", clock.now()
            else:
                row.status, row.due_at = "pending", clock.now() + RETRY_DELAYS[row.attempts - 1]
    return len(calls)


async def run_automation_sweeps(ctx: dict[str, Any],
                                workspace_ids: list[uuid.UUID] | None = None
                                ) -> dict[str, int]:
    sessions = ctx["sessions"]
    totals = await sweep_every_workspace(sessions, AUTOMATION_SWEEPS, clock.now(),
                                         workspace_ids)
    totals["webhooks"] = 0
    for workspace_id in workspace_ids or await all_workspace_ids(sessions):
        try:
            totals["webhooks"] += await send_webhook_calls(ctx, workspace_id)
        except Exception:  # one workspace must not stop the others
            log.exception("webhook calls failed", workspace_id=str(workspace_id))
    return totals
