"""Webhook request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

EVENT_TYPE_PATTERN = r"^(\*|[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62}){1,3})$"
EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN, max_length=128)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


def _unique(values: list[Any] | None) -> list[Any] | None:
    return list(dict.fromkeys(values)) if values is not None else None


def _events(values: list[str]) -> list[str]:
    values = list(dict.fromkeys(values))
    if "*" in values and len(values) > 1:
        raise ValueError('"*" (every event) stands alone')
    return values


Events = Annotated[list[EventType], Field(min_length=1, max_length=100),
                   AfterValidator(_events)]


class WebhookFilters(BaseModel):
    """Every filter given must hold (and), any value within one filter may (or)."""

    model_config = ConfigDict(extra="forbid")

    entity_types: Annotated[list[Name], Field(min_length=1, max_length=50),
                            AfterValidator(_unique)] | None = Field(
        default=None, description="Only events about these kinds of records "
                                  "(contact, company, deal, task, activity, ...)")
    pipeline_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50),
                            AfterValidator(_unique)] | None = Field(
        default=None, description="Only deal events of deals in these pipelines")
    stage_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=200),
                         AfterValidator(_unique)] | None = Field(
        default=None, description="Only deal events of deals (now) in these stages")
    fields_changed: Annotated[list[Name], Field(min_length=1, max_length=100),
                              AfterValidator(_unique)] | None = Field(
        default=None, description="Only events that changed at least one of these fields")


Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=500)]
Threshold = Annotated[int, Field(ge=1, le=1000)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="http(s) URL of a public receiver (docs/integrations/"
                                 "webhooks.md, SSRF rules)")
    events: Events = Field(description='Event types, or ["*"] for every event')
    filters: WebhookFilters | None = None
    description: Description | None = None
    status: Literal["active", "paused"] = "active"
    failure_threshold: Threshold = Field(default=20, description=(
        "Paused after this many consecutive failed attempts (failing for at least the "
        "configured minimum time); the creator or the admins are notified"))


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    filters: WebhookFilters | None = None
    description: Description | None = None
    status: Literal["active", "paused", "disabled"] | None = Field(
        default=None, description="active resumes a paused or disabled subscription (what "
                                  "waited is sent); paused holds deliveries")
    failure_threshold: Threshold | None = None


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    events: list[str]
    filters: dict[str, Any]
    status: str = Field(description="active, paused or disabled")
    status_reason: str | None
    failure_threshold: int
    failure_streak: int = Field(description="Consecutive failed attempts now")
    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="During a rotation's overlap: when the previous secret stops signing")
    owner_user_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str


class WebhookCreated(WebhookRead):
    secret: str = Field(description="The signing secret (whsec_…): shown this once only")


class RotateSecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] | None = Field(
        default=None, description="How long the previous secret keeps signing too "
                                  "(default RELATA_WEBHOOK_ROTATION_OVERLAP_HOURS, 24 h)")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret: shown this once only")
    previous_secret_expires_at: datetime | None


class AttemptRead(BaseModel):
    attempt: int
    url: str
    request_headers: dict[str, Any]
    response_status: int | None
    response_headers: dict[str, Any] | None
    response_body: str | None = Field(description="The first 2 KB")
    latency_ms: int | None
    error: str | None
    created_at: datetime


class DeliveryRead(BaseModel):
    id: uuid.UUID = Field(description="Also the webhook-id header of every attempt")
    subscription_id: uuid.UUID
    event_id: uuid.UUID | None
    event_type: str
    status: str = Field(description="pending, sending, delivered, failed or canceled")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    finished_at: datetime | None
    payload: dict[str, Any] = Field(description="The body sent")
    attempt_log: list[AttemptRead] = Field(description="Every request sent, oldest first")


class TestResult(BaseModel):
    delivery_id: uuid.UUID
    success: bool
    status_code: int | None
    latency_ms: int | None
    error: str | None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="An event cursor (as GET /api/v1/events); none: from the "
                                  "first event")
    limit: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=500, description="Events read from the log in this call (1–1000)")


class ReplayResult(BaseModel):
    scanned: int = Field(description="Events read from the log")
    scheduled: int = Field(description="Deliveries (re)scheduled now")
    already_pending: int = Field(description="Matching events whose delivery still waits: "
                                             "left as they are")
    next_cursor: str | None = Field(description="Give it as `after` for the next page")
    has_more: bool
