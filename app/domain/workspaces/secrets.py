"""API key and token secrets: generation, hashing, parsing (pure)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "rlk_"
REFRESH_PREFIX = "rlr_"
_hasher = PasswordHasher()
# Verified against when the user is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("relata-no-such-user")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str, token_id: uuid.UUID) -> str:
    """`<prefix><32 hex id><secret>`: the id finds the row, the digest proves the secret."""
    return f"{prefix}{token_id.hex}{secrets.token_urlsafe(32)}"


def parse_token_id(token: str, prefix: str) -> uuid.UUID | None:
    if not token.startswith(prefix) or len(token) < len(prefix) + 40:
        return None
    try:
        return uuid.UUID(hex=token[len(prefix): len(prefix) + 32])
    except ValueError:
        return None


def digest_matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_access_token(*, secret: str, user_id: uuid.UUID, workspace_id: uuid.UUID,
                       now: datetime, minutes: int) -> str:
    claims = {"sub": str(user_id), "ws": str(workspace_id), "typ": "access",
              "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=minutes)).timestamp())}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_access_token(token: str, *, secret: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
        if claims.get("typ") != "access":
            return None
        return uuid.UUID(claims["ws"]), uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
