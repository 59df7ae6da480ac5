"""Shared set-up of the end-to-end scenarios (SCENARIOS.md): the REST suite's fixtures, imported
rather than copied. Every scenario drives the public API (REST and GraphQL) of an in-process
app against the real PostgreSQL and Redis of the test run (tests/conftest.py)."""

from __future__ import annotations

from tests.api.rest.conftest import fresh_client, light_password_hashing
from tests.api.rest.test_tasks import frozen, sessions
from tests.workers.receivers import sms_receiver, smtp_inbox

__all__ = ["fresh_client", "frozen", "light_password_hashing", "sessions", "sms_receiver",
           "smtp_inbox"]
