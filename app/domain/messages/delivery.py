"""The worker's side of messages: claim what is due, then record what the provider said.

Claim-then-send-then-mark (docs/decisions/0019-message-delivery-at-least-once.md):

1. `claim_due_messages` — one short transaction: due rows `FOR UPDATE SKIP LOCKED` (two
   workers never take the same message), set to `sending`, `attempts + 1`, and a lease
   (`next_attempt_at = now + CLAIM_LEASE`). Committed before any network I/O.
2. The worker sends, outside any transaction, with the message's stable `message_key`.
3. `record_outcome` — another short transaction: `sent`, a retry (`queued` again with a
   backoff), or `failed` after the last attempt. It applies only while the row is still the
   same claim (status `sending`, same attempt), so a late answer never overwrites a newer one.

A worker that dies between 1 and 3 leaves the row `sending`; when the lease ends it is due
again and re-sent with the same Message-ID / idempotency key. That window — the provider
accepted the message but the worker died before recording it — is the one place a message
can go out twice; the key lets the provider (SMS) or the recipient's mail system drop it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.documents.models import Document
from app.domain.messages.models import Message
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.principal import system_principal

CLAIM_LEASE = timedelta(minutes=5)
# After attempt n fails transiently, wait BACKOFF[n - 1] (the last one repeats).
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30), timedelta(hours=2))


@dataclass(frozen=True)
class ClaimedMessage:
    id: uuid.UUID
    workspace_id: uuid.UUID
    channel: str
    to: str
    subject: str | None
    body: str
    message_key: str
    attempt: int
    document_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Outcome:
    status: str  # sent / retry / failed
    provider: str | None
    provider_message_id: str | None
    response: dict[str, Any]
    error: str | None = None


def backoff(attempt: int) -> timedelta:
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


async def claim_due_messages(session: AsyncSession, workspace_id: uuid.UUID, now: datetime,
                             *, limit: int = 20) -> list[ClaimedMessage]:
    """Take up to `limit` due messages of the workspace (oldest due first) for sending."""
    due = and_(Message.next_attempt_at <= now, Message.deleted_at.is_(None),
               or_(Message.status.in_(("queued", "scheduled")),
                   Message.status == "sending"))  # a claim whose lease ran out
    rows = list((await session.execute(
        select(Message).where(Message.workspace_id == workspace_id, due)
        .order_by(Message.next_attempt_at, Message.id).limit(limit)
        .with_for_update(skip_locked=True))).scalars())
    claimed = []
    for message in rows:
        message.status = "sending"
        message.attempts += 1
        message.next_attempt_at = now + CLAIM_LEASE
        message.updated_at = now
        claimed.append(ClaimedMessage(
            id=message.id, workspace_id=workspace_id, channel=message.channel, to=message.to,
            subject=message.subject, body=message.body, message_key=message.message_key,
            attempt=message.attempts, document_ids=tuple(message.document_ids)))
    await session.flush()
    return claimed


async def attachments_of(session: AsyncSession,
                         claimed: ClaimedMessage) -> list[tuple[str, bytes]]:
    """(file name, PDF) of each attached document that still exists, in order."""
    if not claimed.document_ids:
        return []
    rows = {row.id: row for row in (await session.execute(
        select(Document.id, Document.name, Document.pdf).where(
            Document.id.in_(claimed.document_ids), Document.deleted_at.is_(None)))).all()}
    return [(f"{rows[i].name}.pdf", rows[i].pdf) for i in claimed.document_ids if i in rows]


async def record_outcome(session: AsyncSession, claimed: ClaimedMessage, outcome: Outcome,
                         now: datetime, *, max_attempts: int) -> str | None:
    """Write what the provider said; returns the status written (None: the claim was
    taken over meanwhile and this answer is dropped)."""
    message = (await session.execute(select(Message).where(
        Message.id == claimed.id, Message.status == "sending",
        Message.attempts == claimed.attempt).with_for_update())).scalar_one_or_none()
    if message is None:
        return None
    principal = system_principal(claimed.workspace_id)
    before = records.snapshot(message)
    message.provider = outcome.provider
    message.provider_response = outcome.response
    message.next_attempt_at = now  # a sent or failed message is never due again
    if outcome.status == "sent":
        message.status, message.sent_at = "sent", now
        message.provider_message_id = outcome.provider_message_id
        message.last_error = None
        event = "message.sent"
    elif outcome.status == "retry" and message.attempts < max_attempts:
        message.status, message.last_error = "queued", outcome.error
        message.next_attempt_at = now + backoff(message.attempts)
        event = "message.retrying"
    else:
        message.status, message.failed_at, message.last_error = "failed", now, outcome.error
        event = "message.failed"
    records.touch(message, principal)
    await session.flush()
    await record_event(session, principal, type=event, entity_type="message",
                       entity_id=message.id, before=before, after=records.snapshot(message))
    return message.status
