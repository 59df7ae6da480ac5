from __future__ import annotations

from tests.api.rest.conftest import light_password_hashing
from tests.api.rest.test_tasks import frozen

__all__ = ["frozen", "light_password_hashing"]
