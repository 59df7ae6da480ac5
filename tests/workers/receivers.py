"""Real local receivers for outgoing messages: an SMTP server (aiosmtpd) and an HTTP SMS
endpoint (http.server), each in its own thread, recording exactly what arrived."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpInbox:
    """What the SMTP server accepted; `defer[address]` answers 451 to the next n attempts to
    that address, `refuse` answers 550 to these addresses."""

    messages: list[EmailMessage] = field(default_factory=list)
    defer: dict[str, int] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    port: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        if self.defer.get(address):
            self.defer[address] -= 1
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class SmsReceiver:
    """What the SMS endpoint got; `answers[number]` are (status, body) given to the next
    requests to that number (other tests' messages do not use them up), then 200 with an id."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    url: str = ""

    def to(self, number: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["json"]["to"] == number]


@pytest.fixture(scope="session")
def smtp_inbox() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def sms_receiver() -> Iterator[SmsReceiver]:
    receiver = SmsReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            with lock:
                receiver.requests.append({"json": payload, "headers": dict(self.headers)})
                queued = receiver.answers.get(payload.get("to"), [])
                status, body = queued.pop(0) if queued else (
                    200, {"id": f"sms-{len(receiver.requests)}", "status": "accepted"})
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
