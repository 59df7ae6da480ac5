"""Which subscriptions an event goes to, the payload, the retry schedule, and the delivery
rows' life: created with the event's handling, claimed with a lease, settled in batches.

Delivery is at-least-once and exactly-once from the sender's side: one row per
(subscription, event) — a unique index, so handling an event twice creates nothing more — and
the row's id is the `webhook-id` of every attempt, so a receiver that de-duplicates on it
sees each event once. A worker killed mid-send leaves its lease to run out; the delivery is
sent again with the same `webhook-id`."""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.deals.models import Deal
from app.domain.outbox.models import Event
from app.domain.outbox.service import encode_event_cursor
from app.domain.shared.ids import new_id
from app.domain.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

# After attempt n fails, attempt n+1 waits RETRY_DELAYS[n-1]: immediately, 5 s, 5 min,
# 30 min, 2 h, 5 h, then every 10 h — 13 attempts over 3 days 5.6 hours.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), *(timedelta(hours=10),) * 7)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(minutes=2)  # a claimed delivery not settled by then is sent again
CLAIM_BATCH = 500


def subscription_wants(sub: WebhookSubscription, event_type: str) -> bool:
    return "*" in sub.events or event_type in sub.events


@dataclass(frozen=True)
class Placement:
    """Where a deal event's deal is (for pipeline and stage filters)."""

    pipeline_id: str | None
    stage_id: str | None


def filters_need_placement(filters: dict[str, Any]) -> bool:
    return bool(filters.get("pipeline_ids") or filters.get("stage_ids"))


def placement_of(event: Event) -> Placement | None:
    """From the event itself when it carries them (creations, stage changes)."""
    after, before = event.after or {}, event.before or {}
    pipeline = after.get("pipeline_id") or before.get("pipeline_id")
    stage = after.get("stage_id") or (None if "stage_id" in after else before.get("stage_id"))
    if pipeline and stage:
        return Placement(str(pipeline), str(stage))
    return None


def matches(filters: dict[str, Any], event: Event, placement: Placement | None) -> bool:
    entity_types = filters.get("entity_types")
    if entity_types and event.entity_type not in entity_types:
        return False
    fields_changed = filters.get("fields_changed")
    if fields_changed and not set(fields_changed) & set(event.changed or ()):
        return False
    if filters_need_placement(filters):
        if event.entity_type != "deal" or placement is None:
            return False
        pipelines, stages = filters.get("pipeline_ids"), filters.get("stage_ids")
        if pipelines and placement.pipeline_id not in pipelines:
            return False
        if stages and placement.stage_id not in stages:
            return False
    return True


def payload(event: Event) -> bytes:
    """The body every attempt of this event's deliveries sends (docs/integrations/webhooks.md)."""
    assert event.txid is not None and event.seq is not None
    return orjson.dumps({
        "type": event.type,
        "timestamp": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(event.id), "entity_type": event.entity_type,
            "entity_id": str(event.entity_id), "actor": event.actor,
            "before": event.before, "after": event.after, "changed": list(event.changed or ()),
            "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace(
                "+00:00", "Z"),
            "cursor": encode_event_cursor(event.txid, event.seq),
        },
    })


def test_payload(subscription_id: uuid.UUID, now: datetime) -> bytes:
    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": "webhook.test", "timestamp": stamp,
                         "data": {"subscription_id": str(subscription_id),
                                  "message": "A test ping from Relata"}})


async def active_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    return list((await session.execute(select(WebhookSubscription).where(
        WebhookSubscription.deleted_at.is_(None),
        WebhookSubscription.status == "active"))).scalars())


async def subscribed_event_types(session: AsyncSession) -> set[str] | None:
    """Event types some live subscription wants; None when one wants every event (`*`).
    Paused subscriptions count: their deliveries are created and held, so nothing is lost."""
    rows = (await session.execute(select(WebhookSubscription.events).where(
        WebhookSubscription.deleted_at.is_(None),
        WebhookSubscription.status != "disabled"))).scalars()
    wanted: set[str] = set()
    for events in rows:
        if "*" in events:
            return None
        wanted.update(events)
    return wanted


async def _placement(session: AsyncSession, event: Event) -> Placement | None:
    return (await _placements(session, [event])).get(event.id)


async def _placements(session: AsyncSession, events: list[Event]) -> dict[uuid.UUID, Placement]:
    """Where each deal event's deal is: from the event, else the deal as it is now."""
    found: dict[uuid.UUID, Placement] = {}
    lookup: dict[uuid.UUID, list[uuid.UUID]] = {}
    for event in events:
        if event.entity_type != "deal":
            continue
        placement = placement_of(event)
        if placement is not None:
            found[event.id] = placement
        else:
            lookup.setdefault(event.entity_id, []).append(event.id)
    if lookup:
        for row in (await session.execute(select(Deal.id, Deal.pipeline_id, Deal.stage_id)
                                          .where(Deal.id.in_(list(lookup))))).all():
            for event_id in lookup[row.id]:
                found[event_id] = Placement(str(row.pipeline_id), str(row.stage_id))
    return found




async def create_deliveries(session: AsyncSession, events: Event | list[Event],
                            now: datetime) -> list[uuid.UUID]:
    """One delivery per matching (subscription, event), in the caller's transaction (the
    one that marks the events handled). Returns the ids created now (none the second
    time: the unique index)."""
    events = events if isinstance(events, list) else [events]
    subs = list((await session.execute(select(WebhookSubscription).where(
        WebhookSubscription.deleted_at.is_(None),
        WebhookSubscription.status != "disabled"))).scalars())
    if not subs or not events:
        return []
    placements: dict[uuid.UUID, Placement] = {}
    if any(filters_need_placement(s.filters) for s in subs):
        placements = await _placements(session, events)
    rows = []
    for event in events:
        wanted = [s for s in subs if subscription_wants(s, event.type)
                  and matches(s.filters, event, placements.get(event.id))]
        if not wanted:
            continue
        body = payload(event).decode()
        rows.extend({"workspace_id": event.workspace_id, "id": new_id(),
                     "subscription_id": s.id, "event_id": event.id, "event_type": event.type,
                     "body": body, "status": "pending", "attempts": 0, "retries_from": 0,
                     "next_attempt_at": now, "created_at": now} for s in wanted)
    if not rows:
        return []
    # One statement compiled once and sent in pages ("insertmanyvalues"): rendering a
    # VALUES list of thousands of rows cost more than writing them (~0.25 ms a row).
    statement = insert(WebhookDelivery.__table__).on_conflict_do_nothing(
        index_elements=["workspace_id", "subscription_id", "event_id"]
    ).returning(WebhookDelivery.__table__.c.id)
    return list((await session.execute(statement, rows)).scalars())


@dataclass(frozen=True)
class Claimed:
    """A delivery taken by one worker, with what it needs to send it."""

    workspace_id: uuid.UUID
    id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt: int  # the attempt this send is (1 = first)
    round_attempt: int  # attempts since the last (re)delivery request


def signing_secrets(sub: WebhookSubscription, now: datetime) -> tuple[str, ...]:
    if sub.previous_secret and sub.previous_secret_expires_at \
            and sub.previous_secret_expires_at > now:
        return (sub.secret, sub.previous_secret)
    return (sub.secret,)


async def claim(session: AsyncSession, now: datetime, *, limit: int = CLAIM_BATCH,
                ids: Sequence[uuid.UUID] | None = None) -> list[Claimed]:
    """Take due deliveries of active subscriptions (SKIP LOCKED: workers never take the same
    ones); each becomes `sending` with a lease and its attempt counted."""
    query = (select(WebhookDelivery, WebhookSubscription)
             .join(WebhookSubscription, (WebhookSubscription.workspace_id
                                         == WebhookDelivery.workspace_id)
                   & (WebhookSubscription.id == WebhookDelivery.subscription_id))
             .where(WebhookDelivery.status.in_(("pending", "sending")),
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookSubscription.status == "active",
                    WebhookSubscription.deleted_at.is_(None)))
    if ids is not None:
        query = query.where(WebhookDelivery.id.in_(list(ids)))
    rows = (await session.execute(query.order_by(WebhookDelivery.next_attempt_at)
                                  .limit(limit)
                                  .with_for_update(of=WebhookDelivery, skip_locked=True))).all()
    if not rows:
        return []
    claimed_ids = [d.id for d, _ in rows]
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(claimed_ids))
                          .values(status="sending", attempts=WebhookDelivery.attempts + 1,
                                  next_attempt_at=now + LEASE)
                          .execution_options(synchronize_session=False))
    return [Claimed(d.workspace_id, d.id, d.subscription_id, s.url, signing_secrets(s, now),
                    d.body.encode(), d.attempts + 1, d.attempts + 1 - d.retries_from)
            for d, s in rows]


@dataclass
class Outcome:
    """What one request got."""

    status_code: int | None
    latency_ms: int | None
    error: str | None
    request_headers: dict[str, str]
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    retry_after: float | None = None  # seconds, when the receiver asked
    finished_at: datetime | None = None

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After`: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(round_attempt: int, outcome: Outcome, retry_after_cap: float) -> timedelta | None:
    """The wait before the next attempt; None when no attempt is left."""
    if round_attempt >= MAX_ATTEMPTS:
        return None
    if outcome.retry_after is not None:
        return timedelta(seconds=max(1.0, min(outcome.retry_after, retry_after_cap)))
    return RETRY_DELAYS[round_attempt - 1]


@dataclass
class Settled:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    paused: list[uuid.UUID] | None = None
    disabled: list[uuid.UUID] | None = None


async def settle(session: AsyncSession, results: Iterable[tuple[Claimed, Outcome]], now: datetime,
                 *, retry_after_cap: float, pause_min_failing: timedelta) -> Settled:
    """Record a batch of outcomes: the attempts log, the deliveries, each subscription's
    streak (paused when it reaches its threshold and has lasted long enough; 410 Gone
    disables). Deliveries someone changed meanwhile (redelivered, canceled) are left alone."""
    results = list(results)
    done = Settled(paused=[], disabled=[])
    if not results:
        return done
    session.add_all([WebhookAttempt(
        workspace_id=c.workspace_id, delivery_id=c.id, subscription_id=c.subscription_id,
        attempt=c.attempt, url=c.url, request_headers=o.request_headers,
        response_status=o.status_code, response_headers=o.response_headers,
        response_body=o.response_body, latency_ms=o.latency_ms, error=o.error,
        created_at=o.finished_at or now) for c, o in results])
    updates: list[dict[str, Any]] = []
    for c, o in results:
        row: dict[str, Any] = {"d_id": c.id, "last_status_code": o.status_code,
                               "last_error": o.error, "delivered_at": None,
                               "finished_at": None, "next_attempt_at": None}
        if o.success:
            row |= {"status": "delivered", "delivered_at": o.finished_at or now,
                    "finished_at": o.finished_at or now}
            done.delivered += 1
        else:
            delay = None if o.status_code == 410 else next_delay(c.round_attempt, o,
                                                                   retry_after_cap)
            if delay is None:
                row |= {"status": "failed", "finished_at": now}
                done.failed += 1
            else:
                row |= {"status": "pending", "next_attempt_at": now + delay}
                done.retrying += 1
        updates.append(row)
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    await session.execute(
        table.update().where(table.c.workspace_id == bindparam("ws"),
                             table.c.id == bindparam("d_id"),
                             table.c.status == "sending",
                             table.c.attempts == bindparam("attempt_no"))
        .values(status=bindparam("status"), last_status_code=bindparam("last_status_code"),
                last_error=bindparam("last_error"), delivered_at=bindparam("delivered_at"),
                finished_at=bindparam("finished_at"),
                next_attempt_at=bindparam("next_attempt_at")),
        [{**u, "ws": c.workspace_id, "attempt_no": c.attempt}
         for u, (c, _) in zip(updates, results, strict=True)])
    # Streaks, in the order the requests finished.
    by_sub: dict[uuid.UUID, list[Outcome]] = {}
    for c, o in sorted(results, key=lambda r: r[1].finished_at or now):
        by_sub.setdefault(c.subscription_id, []).append(o)
    subs = {s.id: s for s in (await session.execute(
        select(WebhookSubscription).where(WebhookSubscription.id.in_(list(by_sub)))
        .with_for_update())).scalars()}
    for sub_id, outcomes in by_sub.items():
        sub = subs.get(sub_id)
        if sub is None:
            continue
        for o in outcomes:
            at = o.finished_at or now
            if o.success:
                sub.failure_streak, sub.failing_since, sub.last_success_at = 0, None, at
            else:
                sub.failure_streak += 1
                sub.failing_since = sub.failing_since or at
                sub.last_failure_at = at
        if any(o.status_code == 410 for o in outcomes) and sub.status == "active":
            sub.status, sub.status_reason = "disabled", "the receiver answered 410 Gone"
            done.disabled.append(sub.id)
        elif (sub.status == "active" and sub.failure_streak >= sub.failure_threshold
              and sub.failing_since is not None
              and now - sub.failing_since >= pause_min_failing):
            sub.status = "paused"
            sub.status_reason = (f"{sub.failure_streak} consecutive failed attempts since "
                                 f"{sub.failing_since.isoformat()}")
            done.paused.append(sub.id)
    return done
