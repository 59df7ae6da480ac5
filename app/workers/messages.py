"""The message sender: every few seconds, due emails and SMS of every workspace are claimed,
sent through their channel's provider and their outcome recorded (claim-then-send-then-mark,
app/domain/messages/delivery.py). Workspaces take turns a batch at a time, so one that
queues thousands of messages does not hold back the others' few."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from sqlalchemy import text

from app.db import unit_of_work
from app.domain.messages.delivery import (
    ClaimedMessage,
    Outcome,
    attachments_of,
    claim_due_messages,
    record_outcome,
)
from app.domain.shared.clock import clock
from app.integrations.messaging import (
    Attachment,
    DeliveryError,
    MessageProvider,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    providers_from_settings,
)

log = structlog.get_logger("relata.worker")

BATCH = 20  # per workspace and turn
MAX_ROUNDS = 50  # per run: what is left waits for the next tick (a few seconds)
CONCURRENCY = 10  # sends in flight at once


async def _due_workspaces(sessions: Any) -> list[uuid.UUID]:
    async with unit_of_work(sessions, None) as session:
        return list((await session.execute(
            text("select workspace_id from relata_due_message_workspaces(:now)"),
            {"now": clock.now()})).scalars())


async def _send_one(sessions: Any, providers: dict[str, MessageProvider],
                    claimed: ClaimedMessage, max_attempts: int) -> str | None:
    async with unit_of_work(sessions, claimed.workspace_id) as session:
        files = await attachments_of(session, claimed)
    outgoing = OutgoingMessage(
        channel=claimed.channel, to=claimed.to, subject=claimed.subject, body=claimed.body,
        message_key=claimed.message_key,
        attachments=tuple(Attachment(name, "application/pdf", data) for name, data in files))
    provider = providers[claimed.channel]
    try:
        delivery = await provider.send(outgoing)
        outcome = Outcome("sent", delivery.provider, delivery.provider_message_id,
                          delivery.response)
    except TransientDeliveryError as exc:
        outcome = Outcome("retry", provider.name, None, exc.response, exc.detail)
    except PermanentDeliveryError as exc:
        outcome = Outcome("failed", provider.name, None, exc.response, exc.detail)
    except DeliveryError as exc:  # a provider's own subclass: treat as transient
        outcome = Outcome("retry", provider.name, None, exc.response, exc.detail)
    async with unit_of_work(sessions, claimed.workspace_id) as session:
        status = await record_outcome(session, claimed, outcome, clock.now(),
                                      max_attempts=max_attempts)
    log.info("message delivery", message_id=str(claimed.id), channel=claimed.channel,
             attempt=claimed.attempt, status=status, error=outcome.error)
    return status


async def send_due_messages(ctx: dict[str, Any]) -> dict[str, int]:
    """Claim and send what is due in every workspace; returns counts by outcome."""
    sessions = ctx["sessions"]
    settings = ctx["settings"]
    providers = ctx.get("message_providers") or providers_from_settings(settings, ctx["http"])
    limit = asyncio.Semaphore(CONCURRENCY)
    counts: dict[str, int] = {"sent": 0, "queued": 0, "failed": 0, "dropped": 0}

    async def send(claimed: ClaimedMessage) -> None:
        async with limit:
            try:
                status = await _send_one(sessions, providers, claimed,
                                         settings.message_max_attempts)
            except Exception:  # the claim's lease brings it back; other messages go on
                log.exception("message delivery crashed", message_id=str(claimed.id))
                return
        counts[status or "dropped"] += 1

    workspaces = await _due_workspaces(sessions)
    for _ in range(MAX_ROUNDS):
        if not workspaces:
            break
        busy = []
        for workspace_id in workspaces:
            async with unit_of_work(sessions, workspace_id) as session:
                claimed = await claim_due_messages(session, workspace_id, clock.now(),
                                                   limit=BATCH)
            await asyncio.gather(*(send(c) for c in claimed))
            if len(claimed) == BATCH:
                busy.append(workspace_id)
        workspaces = busy
    if any(counts.values()):
        log.info("messages sent", **counts)
    return counts
