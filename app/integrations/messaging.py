"""Outbound message providers behind one small interface: `send(OutgoingMessage)`.

A provider returns a `Delivery` (its name, its id for the message, what it answered) or
raises `TransientDeliveryError` (try again later: a timeout, a 4xx SMTP reply, an HTTP 429
or 5xx) or `PermanentDeliveryError` (retrying cannot help: a 5xx SMTP reply, an HTTP 4xx, a
provider that is not configured). Every attempt of one message carries the same
`message_key`: the email's Message-ID and the SMS provider's idempotency key, so a retry after
a lost answer is recognisable downstream. Adding a provider (Twilio-style and others) is
one class: see docs/messages.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Protocol

import aiosmtplib
import httpx

from app.config import Settings


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # email / sms
    to: str
    body: str
    message_key: str
    subject: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Delivery:
    provider: str
    provider_message_id: str | None
    response: dict[str, Any]


class DeliveryError(Exception):
    """The provider did not take the message; `response` is what it said."""

    def __init__(self, detail: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.response = response or {}


class TransientDeliveryError(DeliveryError):
    """Worth another attempt later."""


class PermanentDeliveryError(DeliveryError):
    """Another attempt would fail the same way."""


class MessageProvider(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> Delivery: ...


class SmtpProvider:
    """Email over SMTP (aiosmtplib), STARTTLS unless turned off."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(self, message: OutgoingMessage) -> EmailMessage:
        sender = self.settings.smtp_from or self.settings.smtp_username
        domain = parseaddr(sender)[1].rpartition("@")[2] or "relata.local"
        email = EmailMessage()
        email["From"] = sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<{message.message_key}@{domain}>"
        email.set_content(message.body)
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            email.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                                 filename=attachment.filename)
        return email

    async def send(self, message: OutgoingMessage) -> Delivery:
        settings = self.settings
        if not settings.smtp_host or not (settings.smtp_from or settings.smtp_username):
            raise PermanentDeliveryError("email is not configured (RELATA_SMTP_HOST, "
                                         "RELATA_SMTP_FROM)")
        email = self.build(message)
        try:
            answers, reply = await aiosmtplib.send(
                email, hostname=settings.smtp_host, port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password or None,
                start_tls=settings.smtp_starttls, timeout=settings.smtp_timeout_seconds)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            answer = {"refused": [{"code": r.code, "message": r.message}
                                  for r in exc.recipients]}
            error = TransientDeliveryError if all(400 <= c < 500 for c in codes) \
                else PermanentDeliveryError
            first = exc.recipients[0]
            raise error(f"the server refused the recipient: {first.code} {first.message}",
                        answer) from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = TransientDeliveryError if 400 <= exc.code < 500 else PermanentDeliveryError
            raise error(f"SMTP {exc.code}: {exc.message}",
                        {"code": exc.code, "message": exc.message}) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"could not reach the SMTP server: {exc}",
                                         {"error": type(exc).__name__}) from exc
        return Delivery(provider=self.name, provider_message_id=email["Message-ID"],
                        response={"reply": reply,
                                  "refused": {k: v.code for k, v in answers.items()}})


class JsonSmsProvider:
    """SMS through a generic JSON HTTP API: `POST RELATA_SMS_URL` with
    `{"to", "text", "idempotency_key"}` and `Authorization: Bearer RELATA_SMS_TOKEN`;
    any 2xx is accepted, its JSON `id` (or `message_id`) kept as the provider's id."""

    name = "json_sms"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def send(self, message: OutgoingMessage) -> Delivery:
        settings = self.settings
        if not settings.sms_url:
            raise PermanentDeliveryError("SMS is not configured (RELATA_SMS_URL)")
        headers = {"Idempotency-Key": message.message_key}
        if settings.sms_token:
            headers["Authorization"] = f"Bearer {settings.sms_token}"
        try:
            response = await self.http.post(
                settings.sms_url, headers=headers,
                json={"to": message.to, "text": message.body,
                      "idempotency_key": message.message_key},
                timeout=httpx.Timeout(settings.sms_timeout_seconds, connect=5.0))
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"could not reach the SMS provider: {exc!r}",
                                         {"error": type(exc).__name__}) from exc
        answer = _json_or_text(response)
        if response.is_success:
            provider_id = answer.get("id") or answer.get("message_id") \
                if isinstance(answer, dict) else None
            return Delivery(provider=self.name,
                            provider_message_id=str(provider_id) if provider_id else None,
                            response={"status": response.status_code, "body": answer})
        detail = f"the SMS provider answered {response.status_code}"
        body = {"status": response.status_code, "body": answer}
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientDeliveryError(detail, body)
        raise PermanentDeliveryError(detail, body)


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:1000]}


def providers_from_settings(settings: Settings,
                            http: httpx.AsyncClient) -> dict[str, MessageProvider]:
    """The provider for each channel, as the settings configure them."""
    return {"email": SmtpProvider(settings), "sms": JsonSmsProvider(settings, http)}
