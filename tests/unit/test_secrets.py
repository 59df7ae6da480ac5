from datetime import UTC, datetime, timedelta

from app.domain.shared.ids import new_id
from app.domain.workspaces import secrets


def test_api_key_carries_its_id_and_only_the_digest_is_stored() -> None:
    key_id = new_id()
    token = secrets.new_token(secrets.API_KEY_PREFIX, key_id)
    assert token.startswith("rlk_")
    assert secrets.parse_token_id(token, secrets.API_KEY_PREFIX) == key_id
    stored = secrets.digest(token)
    assert token not in stored
    assert secrets.digest_matches(token, stored)
    assert not secrets.digest_matches(token + "x", stored)
    assert secrets.parse_token_id("rlk_short", secrets.API_KEY_PREFIX) is None


def test_passwords_use_argon2() -> None:
    hashed = secrets.hash_password("correct horse")
    assert hashed.startswith("$argon2")
    assert secrets.verify_password("correct horse", hashed)
    assert not secrets.verify_password("wrong", hashed)
    assert not secrets.verify_password("anything", None)


def test_access_tokens_expire() -> None:
    ws, user = new_id(), new_id()
    now = datetime.now(UTC)
    token = secrets.issue_access_token(secret="s" * 40, user_id=user, workspace_id=ws, now=now,
                                       minutes=5)
    assert secrets.read_access_token(token, secret="s" * 40) == (ws, user)
    assert secrets.read_access_token(token, secret="other" * 10) is None
    old = secrets.issue_access_token(secret="s" * 40, user_id=user, workspace_id=ws,
                                     now=now - timedelta(hours=1), minutes=5)
    assert secrets.read_access_token(old, secret="s" * 40) is None
