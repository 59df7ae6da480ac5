"""Standard Webhooks signatures (https://www.standardwebhooks.com), both ways (pure).

Outbound webhooks are signed with it, and signed inbound requests (telephony, email) are
checked with it, so a sender and a receiver of Relata use one scheme and one library:

- a secret is `whsec_` + base64 of 24–64 random bytes, shown once;
- headers `webhook-id` (the message id, stable across retries), `webhook-timestamp` (Unix
  seconds) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` over
  `"{id}.{timestamp}.{body}"` — several when a secret is being rotated;
- a receiver refuses a timestamp more than `tolerance` away from its clock (replays)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed by any of the secrets, or too old or too new."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def sign_headers(secrets_: Iterable[str], msg_id: str, timestamp: int,
                 body: bytes) -> dict[str, str]:
    """The three headers of a signed request; every secret given signs it (rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(secrets_: Iterable[str], headers: Mapping[str, str], body: bytes, *, now: datetime,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> str:
    """Checks a signed request and returns its `webhook-id`; raises SignatureError."""
    msg_id = headers.get("webhook-id")
    raw_timestamp = headers.get("webhook-timestamp")
    sent = headers.get("webhook-signature")
    if not msg_id or not raw_timestamp or not sent:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is Unix seconds") from exc
    if abs(now.timestamp() - timestamp) > tolerance_seconds:
        raise SignatureError(f"webhook-timestamp is more than {tolerance_seconds} s away "
                             "from the server's clock")
    offered = [part.strip() for part in sent.split(" ") if part.strip().startswith("v1,")]
    for secret in secrets_:
        expected = signature(secret, msg_id, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureError("no signature matches")
