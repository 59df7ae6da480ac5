"""Time-ordered UUIDv7 identifiers."""

import inspect
import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()


# A precomputed signature: pydantic inspects default factories on every model construction.
new_id.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
