"""Standard Webhooks signing, checked against the specification's published test vector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.integrations.signing import SignatureError, new_secret, sign_headers, signature, verify

# From the Standard Webhooks reference libraries' tests.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_vector() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_spec_vector_and_returns_the_id() -> None:
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS),
               "webhook-signature": SPEC_SIGNATURE}
    now = datetime.fromtimestamp(SPEC_TS + 10, UTC)
    assert verify([SPEC_SECRET], headers, SPEC_BODY, now=now) == SPEC_ID


def test_a_rotated_pair_signs_with_both_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = sign_headers([new, old], "msg_1", SPEC_TS, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    now = datetime.fromtimestamp(SPEC_TS, UTC)
    assert verify([old], headers, b"{}", now=now) == "msg_1"
    assert verify([new], headers, b"{}", now=now) == "msg_1"


@pytest.mark.parametrize("change", ["body", "id", "secret", "stale", "future", "missing"])
def test_verify_refuses(change: str) -> None:
    secret = new_secret()
    headers = sign_headers([secret], "msg_1", SPEC_TS, b'{"a":1}')
    body, secrets_, now = b'{"a":1}', [secret], datetime.fromtimestamp(SPEC_TS, UTC)
    if change == "body":
        body = b'{"a":2}'
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    elif change == "secret":
        secrets_ = [new_secret()]
    elif change == "stale":
        now = datetime.fromtimestamp(SPEC_TS + 301, UTC)
    elif change == "future":
        now = datetime.fromtimestamp(SPEC_TS - 301, UTC)
    else:
        del headers["webhook-signature"]
    with pytest.raises(SignatureError):
        verify(secrets_, headers, body, now=now)


def test_secrets_are_prefixed_random_and_checked() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b
    with pytest.raises(ValueError):
        signature("not-a-secret", "m", 1, b"")
