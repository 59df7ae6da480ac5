"""GraphQL suite setup."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from app.domain.workspaces import secrets


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test bootstraps a workspace, and its owner's password hash is most of the cost
    (~0.5 s with production argon2 parameters). These tests are not about hashing strength:
    use the same algorithm with minimal cost, for this suite only (undone after each test)."""
    monkeypatch.setattr(secrets, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                           parallelism=1))
