"""handle_events: run every rule that listens to a batch of one workspace's events, write
their webhook deliveries, and mark them handled — in one transaction.

The event rows are locked for the job (`FOR UPDATE SKIP LOCKED`): a second delivery of the
same events waits for nothing and does nothing for those already taken or handled. Each rule
runs in its own savepoint (`run_in_savepoint`), and its run row is unique per (rule, event),
so however often an event is delivered, each rule's effects happen once.

A batch shares one transaction, one lookup of the rules per event type and one of the
webhook subscriptions (bench/RESULTS.md, "Automations": the per-event cost of the
transaction itself was a third of the work). Should the batch fail as a whole (an error
outside any rule's savepoint), each of its events is handled again in its own transaction,
so one bad event cannot hold back the others."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select

from app.db import unit_of_work
from app.domain.automations.context import event_view
from app.domain.automations.runner import TriggerRef
from app.domain.automations.service import rules_for_event
from app.domain.automations.sweeps import run_in_savepoint
from app.domain.outbox.models import Event
from app.domain.shared.clock import clock
from app.domain.webhooks.delivery import create_deliveries
from app.workers.webhooks import wake as wake_webhook_sender

log = structlog.get_logger("relata.worker")


async def _handle(ctx: dict[str, Any], workspace_id: uuid.UUID,
                  event_ids: list[uuid.UUID]) -> int:
    now = clock.now()
    ran = 0
    async with unit_of_work(ctx["sessions"], workspace_id) as session:
        events = list((await session.execute(
            select(Event).where(Event.id.in_(event_ids), Event.handled_at.is_(None))
            .order_by(Event.txid, Event.seq).with_for_update(skip_locked=True))).scalars())
        if not events:
            return 0
        rules_by_type: dict[str, list[Any]] = {}
        for event in events:
            if event.type not in rules_by_type:
                rules_by_type[event.type] = await rules_for_event(session, event.type)
            trigger = TriggerRef.of_event(event_view(event), event.cause_run_id)
            for rule in rules_by_type[event.type]:
                ran += await run_in_savepoint(session, rule, trigger, now) is not None
        # Webhook deliveries, unique per (subscription, event), in the same transaction.
        deliveries = await create_deliveries(session, events, now)
        for event in events:
            event.handled_at = now
    if deliveries:
        wake_webhook_sender(ctx)  # sent at once by this worker's sender (app/workers/webhooks.py)
    return ran


async def handle_events(ctx: dict[str, Any], workspace_id: str, event_ids: list[str]) -> int:
    """Returns how many rule runs were made."""
    workspace = uuid.UUID(workspace_id)
    ids = [uuid.UUID(e) for e in event_ids]
    if len(ids) == 1:
        return await _handle(ctx, workspace, ids)
    try:
        return await _handle(ctx, workspace, ids)
    except Exception:  # isolate the event that broke the batch
        log.warning("event batch failed; handling its events one by one",
                    workspace_id=workspace_id, events=len(ids), exc_info=True)
    ran, failed = 0, None
    for event_id in ids:
        try:
            ran += await _handle(ctx, workspace, [event_id])
        except Exception as exc:  # the others still go; this one is retried
            failed = exc
            log.exception("event failed", workspace_id=workspace_id, event_id=str(event_id))
    if failed is not None:
        raise failed  # the relay dispatches what is still unhandled again
    return ran


async def handle_event(ctx: dict[str, Any], workspace_id: str, event_id: str) -> int:
    """One event (jobs queued before batches existed, and tests)."""
    return await handle_events(ctx, workspace_id, [event_id])
