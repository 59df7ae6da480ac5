from __future__ import annotations

from tests.api.rest.conftest import light_password_hashing

__all__ = ["light_password_hashing"]
