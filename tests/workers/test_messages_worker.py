"""The message sender against a real SMTP server and a real HTTP SMS endpoint: what arrives,
retries of transient failures, a visible failure, never twice, and the timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.domain.messages.delivery import BACKOFF
from app.workers.messages import send_due_messages
from app.workers.settings import WorkerSettings
from tests.api.rest.conftest import events_since, new_contact
from tests.api.rest.test_documents import OFFER, offer_deal
from tests.api.rest.test_tasks import frozen, sessions
from tests.api.rest.test_templates import new_template
from tests.conftest import Workspace
from tests.workers.receivers import SmsReceiver, SmtpInbox, sms_receiver, smtp_inbox

__all__ = ["frozen", "sessions", "sms_receiver", "smtp_inbox"]


@pytest.fixture
async def worker_ctx(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                     smtp_inbox: SmtpInbox, sms_receiver: SmsReceiver
                     ) -> AsyncIterator[dict[str, Any]]:
    configured = settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp_inbox.port, "smtp_starttls": False,
        "smtp_from": "Okna Plus <info@okna.example>", "sms_url": sms_receiver.url,
        "sms_token": "sms-secret", "message_max_attempts": 3})
    async with httpx.AsyncClient() as http:
        yield {"sessions": sessions, "settings": configured, "http": http}


async def queue(ws: Workspace, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/messages", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def status_of(ws: Workspace, message: dict[str, Any]) -> dict[str, Any]:
    return (await ws.get(f"/api/v1/messages/{message['id']}")).json()  # type: ignore[no-any-return]


def test_the_sender_runs_every_five_seconds() -> None:
    jobs = {job.coroutine: job for job in WorkerSettings.cron_jobs}
    assert send_due_messages in WorkerSettings.functions
    assert jobs[send_due_messages].second == set(range(2, 60, 5))


async def test_an_email_from_a_template_with_the_offer_attached_arrives(
        ws: Workspace, worker_ctx: dict[str, Any], smtp_inbox: SmtpInbox) -> None:
    offer = await new_template(ws, kind="document", name="Offer", subject=None, body=OFFER)
    deal = await offer_deal(ws)
    document = (await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                              json={"template_id": offer["id"]})).json()
    buyer_id = deal["contact_ids"][0]
    await ws.patch(f"/api/v1/contacts/{buyer_id}",
                   json={"emails": [{"email": "ivan.petrov@example.com"}]})
    template = await new_template(ws, subject="{{ contact.first_name }}, your offer",
                                  body="Hello {{ contact.first_name }}, the offer for "
                                       "{{ deal.title }} is attached: {{ deal.amount }}.")
    message = await queue(ws, channel="email", contact_id=buyer_id, deal_id=deal["id"],
                          template_id=template["id"], document_ids=[document["id"]])
    assert message["status"] == "queued" and message["to"] == "ivan.petrov@example.com"
    assert message["subject"] == "Иван, your offer"

    await send_due_messages(worker_ctx)

    [received] = smtp_inbox.to("ivan.petrov@example.com")
    assert received["Subject"] == "Иван, your offer"
    assert received["From"] == "Okna Plus <info@okna.example>"
    assert received["Message-ID"] == f"<{message['message_key']}@okna.example>"
    text = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.strip() == ("Hello Иван, the offer for Windows for the dacha is attached: "
                            "32000.00.")
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Offer — Windows for the dacha.pdf"
    assert attachment.get_content().startswith(b"%PDF")

    sent = await status_of(ws, message)
    assert (sent["status"], sent["attempts"], sent["provider"]) == ("sent", 1, "smtp")
    assert sent["provider_message_id"] == received["Message-ID"] and sent["sent_at"]
    await send_due_messages(worker_ctx)  # again: nothing is sent twice
    assert len(smtp_inbox.to("ivan.petrov@example.com")) == 1

    for record in (f"contacts/{buyer_id}", f"deals/{deal['id']}"):
        timeline = (await ws.get(f"/api/v1/{record}/timeline",
                                 params={"types": "message"})).json()["data"]
        assert [(e["summary"], e["payload"]["status"]) for e in timeline] == [
            ("Email to ivan.petrov@example.com: Иван, your offer (sent)", "sent")]
    # The log serves an event once older transactions finished: poll as a client does.
    events = (await events_since(ws, None, expect=2,
                                 types="message.queued,message.sent"))["data"]
    assert [e["type"] for e in events if e["entity_id"] == message["id"]] == [
        "message.queued", "message.sent"]


async def test_an_sms_reaches_the_provider_with_its_idempotency_key(
        ws: Workspace, worker_ctx: dict[str, Any], sms_receiver: SmsReceiver) -> None:
    contact = await new_contact(ws, first_name="Anna", phones=[{"number": "8 916 200-30-40"}])
    message = await queue(ws, channel="sms", contact_id=contact["id"],
                          body="Anna, your order {{ contact.first_name|upper }} is ready")
    assert message["to"] == "+79162003040"
    await send_due_messages(worker_ctx)
    [request] = sms_receiver.to("+79162003040")
    assert request["json"] == {"to": "+79162003040", "text": "Anna, your order ANNA is ready",
                               "idempotency_key": message["message_key"]}
    assert request["headers"]["Authorization"] == "Bearer sms-secret"
    assert request["headers"]["Idempotency-Key"] == message["message_key"]
    sent = await status_of(ws, message)
    assert sent["status"] == "sent" and sent["provider_message_id"].startswith("sms-")
    assert sent["provider_response"]["body"]["status"] == "accepted"


async def test_a_transient_failure_is_retried_with_backoff_then_sent(
        ws: Workspace, worker_ctx: dict[str, Any], smtp_inbox: SmtpInbox,
        frozen: Callable[[datetime | None], None]) -> None:
    message = await queue(ws, channel="email", to="busy@example.com", subject="Hi",
                          body="Second try")
    now = datetime.now(UTC)
    frozen(now)
    smtp_inbox.defer["busy@example.com"] = 1
    await send_due_messages(worker_ctx)
    waiting = await status_of(ws, message)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    assert "451" in waiting["last_error"]
    assert waiting["next_attempt_at"] == (now + BACKOFF[0]).isoformat().replace("+00:00", "Z")
    assert smtp_inbox.to("busy@example.com") == []

    await send_due_messages(worker_ctx)  # not due yet
    assert (await status_of(ws, message))["attempts"] == 1
    frozen(now + BACKOFF[0] + timedelta(seconds=1))
    await send_due_messages(worker_ctx)
    sent = await status_of(ws, message)
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 2, None)
    assert len(smtp_inbox.to("busy@example.com")) == 1


async def test_a_permanent_failure_is_visible_at_once(
        ws: Workspace, worker_ctx: dict[str, Any], smtp_inbox: SmtpInbox,
        sms_receiver: SmsReceiver) -> None:
    smtp_inbox.refuse.add("nobody@example.com")
    contact = await new_contact(ws, first_name="Nobody",
                                emails=[{"email": "nobody@example.com"}])
    email = await queue(ws, channel="email", contact_id=contact["id"], subject="Hi",
                        body="Hello")
    sms_receiver.answers["+79160000001"] = [(400, {"error": "invalid number"})]
    sms = await queue(ws, channel="sms", to="+79160000001", body="Hello")
    await send_due_messages(worker_ctx)
    failed = await status_of(ws, email)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "no such mailbox" in failed["last_error"] and failed["failed_at"]
    failed_sms = await status_of(ws, sms)
    assert failed_sms["status"] == "failed"
    assert failed_sms["provider_response"] == {"status": 400,
                                               "body": {"error": "invalid number"}}
    timeline = (await ws.get(f"/api/v1/contacts/{contact['id']}/timeline",
                             params={"types": "message"})).json()["data"]
    assert timeline[0]["summary"].endswith("(failed)")
    listed = (await ws.get("/api/v1/messages", params={"status": "failed"})).json()["data"]
    assert {m["id"] for m in listed} == {email["id"], sms["id"]}


async def test_the_last_transient_failure_is_a_visible_failure(
        ws: Workspace, worker_ctx: dict[str, Any], sms_receiver: SmsReceiver,
        frozen: Callable[[datetime | None], None]) -> None:
    message = await queue(ws, channel="sms", to="+79160000002", body="Are you there?")
    now = datetime.now(UTC)
    sms_receiver.answers["+79160000002"] = [(503, {"error": "overloaded"})] * 3
    for attempt in range(3):  # message_max_attempts is 3 here
        frozen(now + timedelta(hours=attempt * 3))
        await send_due_messages(worker_ctx)
    failed = await status_of(ws, message)
    assert (failed["status"], failed["attempts"]) == ("failed", 3)
    assert failed["last_error"] == "the SMS provider answered 503"
    assert len(sms_receiver.to("+79160000002")) == 3
    frozen(now + timedelta(days=1))
    await send_due_messages(worker_ctx)
    assert len(sms_receiver.to("+79160000002")) == 3


async def test_a_scheduled_message_waits_for_its_time(
        ws: Workspace, worker_ctx: dict[str, Any], sms_receiver: SmsReceiver,
        frozen: Callable[[datetime | None], None]) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    message = await queue(ws, channel="sms", to="+79160000003", body="Reminder",
                          send_at=at.isoformat())
    assert message["status"] == "scheduled"
    await send_due_messages(worker_ctx)
    assert sms_receiver.to("+79160000003") == []
    frozen(at + timedelta(seconds=1))
    await send_due_messages(worker_ctx)
    assert len(sms_receiver.to("+79160000003")) == 1
    assert (await status_of(ws, message))["status"] == "sent"


async def test_a_claim_whose_worker_died_is_sent_again_with_the_same_key(
        ws: Workspace, worker_ctx: dict[str, Any], sms_receiver: SmsReceiver,
        sessions: async_sessionmaker[AsyncSession],
        frozen: Callable[[datetime | None], None]) -> None:
    import uuid

    from app.db import unit_of_work
    from app.domain.messages.delivery import CLAIM_LEASE, claim_due_messages

    message = await queue(ws, channel="sms", to="+79160000004", body="Lease")
    now = datetime.now(UTC)
    frozen(now)
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:  # a worker claims, dies
        [claimed] = [c for c in await claim_due_messages(session, uuid.UUID(ws.id), now)
                     if str(c.id) == message["id"]]
    await send_due_messages(worker_ctx)  # the lease holds: nobody else sends it
    assert sms_receiver.to("+79160000004") == []
    frozen(now + CLAIM_LEASE + timedelta(seconds=1))
    await send_due_messages(worker_ctx)
    [request] = sms_receiver.to("+79160000004")
    assert request["json"]["idempotency_key"] == claimed.message_key == message["message_key"]
    assert (await status_of(ws, message))["attempts"] == 2
