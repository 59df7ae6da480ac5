"""The one clock. Tests freeze it with `clock.freeze(...)`."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        return self._frozen or datetime.now(UTC)

    def freeze(self, at: datetime | None) -> None:
        self._frozen = at


clock = Clock()
