"""handle_event: run every rule that listens to one event, then mark the event handled.

The event row is locked for the job (`FOR UPDATE SKIP LOCKED`): a second delivery of the
same event waits for nothing and does nothing. Each rule runs in its own savepoint
(`run_in_savepoint`), and its run row is unique per (rule, event), so however often the
event is delivered, each rule's effects happen once."""

from __future__ import annotations

import uuid
from typing import Any

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


async def handle_event(ctx: dict[str, Any], workspace_id: str, event_id: str) -> int:
    """Returns how many rules ran."""
    now = clock.now()
    ran = 0
    async with unit_of_work(ctx["sessions"], uuid.UUID(workspace_id)) as session:
        event = (await session.execute(select(Event).where(Event.id == uuid.UUID(event_id))
                                       .with_for_update(skip_locked=True))).scalar_one_or_none()
        if event is None or event.handled_at is not None:
            return 0
        trigger = TriggerRef.of_event(event_view(event), event.cause_run_id)
        for rule in await rules_for_event(session, event.type):
            ran += await run_in_savepoint(session, rule, trigger, now) is not None
        # Webhook deliveries, unique per (subscription, event), in the same transaction.
        deliveries = await create_deliveries(session, event, now)
        event.handled_at = now
    if deliveries:
        wake_webhook_sender(ctx)  # sent at once by this worker's sender (app/workers/webhooks.py)
    return ran
