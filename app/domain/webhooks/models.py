"""Outbound webhooks: subscriptions, one delivery per (subscription, event), and the log of
every attempt to deliver it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, text
from sqlmodel import Field, SQLModel

from app.domain.shared.ids import new_id
from app.domain.shared.models import TenantRecord, jsonb_field, text_array_field, ts_field

# active: delivering; paused: held after a failure streak (or by an admin), nothing is
# dropped; disabled: the receiver answered 410 Gone (or an admin switched it off).
SUBSCRIPTION_STATUSES = ("active", "paused", "disabled")
# pending: waits for next_attempt_at; sending: claimed by a worker until next_attempt_at (a
# lease); delivered; failed: every retry used up; canceled: its subscription was deleted.
DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed", "canceled")


class WebhookSubscription(TenantRecord, table=True):
    __tablename__ = "webhook_subscriptions"
    __owner_column__: ClassVar[str | None] = None  # admins manage them; members may read
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_webhook_subscriptions_list", "workspace_id", "created_at", "id"),
    )

    url: str = Field(nullable=False)
    description: str | None = Field(default=None)
    events: list[str] = text_array_field()
    filters: dict[str, Any] = jsonb_field(dict)
    status: str = Field(default="active", nullable=False)
    status_reason: str | None = Field(default=None)
    # Secrets sign; they are never serialized (see service.SECRET_FIELDS). During a
    # rotation's overlap the previous one signs too, until previous_secret_expires_at.
    secret: str = Field(nullable=False)
    previous_secret: str | None = Field(default=None)
    previous_secret_expires_at: datetime | None = ts_field(nullable=True, default=None)
    # Consecutive failed attempts (any delivery), and when the first of them failed.
    failure_threshold: int = Field(default=20, nullable=False)
    failure_streak: int = Field(default=0, nullable=False)
    failing_since: datetime | None = ts_field(nullable=True, default=None)
    last_success_at: datetime | None = ts_field(nullable=True, default=None)
    last_failure_at: datetime | None = ts_field(nullable=True, default=None)
    owner_user_id: uuid.UUID | None = Field(default=None)  # who created it, when a user did


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription (or a test ping): its id is the `webhook-id` every
    attempt and every redelivery sends, and the body is fixed when it is created."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "subscription_id"],
                             ["webhook_subscriptions.workspace_id",
                              "webhook_subscriptions.id"], ondelete="CASCADE"),
        # Exactly one delivery per (subscription, event): handle_event may run twice.
        Index("uq_webhook_deliveries_event", "workspace_id", "subscription_id", "event_id",
              unique=True),
        Index("ix_webhook_deliveries_list", "workspace_id", "subscription_id", "id"),
        Index("ix_webhook_deliveries_due", "workspace_id", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'sending')")),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(nullable=False)
    event_id: uuid.UUID | None = Field(default=None)  # None for a test ping
    event_type: str = Field(nullable=False)
    body: str = Field(nullable=False)  # the exact JSON sent, the same on every attempt
    status: str = Field(default="pending", nullable=False)
    attempts: int = Field(default=0, nullable=False)
    # The attempts count when the last (re)delivery round began: the retry schedule restarts
    # with every redelivery, the attempt numbers in the log go on.
    retries_from: int = Field(default=0, nullable=False)
    next_attempt_at: datetime | None = ts_field(nullable=True, default=None)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None)
    created_at: datetime = ts_field()
    delivered_at: datetime | None = ts_field(nullable=True, default=None)
    finished_at: datetime | None = ts_field(nullable=True, default=None)


class WebhookAttempt(SQLModel, table=True):
    """The delivery log: one row per request sent (headers without secrets)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "delivery_id"],
                             ["webhook_deliveries.workspace_id", "webhook_deliveries.id"],
                             ondelete="CASCADE"),
        Index("ix_webhook_attempts_delivery", "workspace_id", "delivery_id", "attempt"),
    )

    workspace_id: uuid.UUID = Field(primary_key=True)
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: uuid.UUID = Field(nullable=False)
    subscription_id: uuid.UUID = Field(nullable=False)
    attempt: int = Field(nullable=False)
    url: str = Field(nullable=False)
    request_headers: dict[str, Any] = jsonb_field(dict)
    response_status: int | None = Field(default=None)
    response_headers: dict[str, Any] | None = jsonb_field(None, nullable=True)
    response_body: str | None = Field(default=None)  # the first 2 KB
    latency_ms: int | None = Field(default=None)
    error: str | None = Field(default=None)
    created_at: datetime = ts_field()
