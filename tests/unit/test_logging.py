"""Log lines are one JSON object each, whatever a log call is given."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from structlog.processors import JSONRenderer

from app.logging import render_json

RENDER = JSONRenderer(serializer=render_json)  # as configure_logging renders


def line(event: dict[str, object]) -> dict[str, object]:
    rendered = RENDER(None, "info", dict(event))
    assert isinstance(rendered, bytes) and b"\n" not in rendered
    return json.loads(rendered)  # type: ignore[no-any-return]


def test_an_access_log_line_reads_back_as_it_was_logged() -> None:
    event = {"event": "request", "method": "GET", "path": "/api/v1/contacts/x", "status": 200,
             "duration_ms": 1.23, "detail": "Привет \"quoted\"\nnext line"}
    assert line(event) == event


def test_values_json_cannot_hold_are_written_as_text() -> None:
    workspace = uuid.uuid4()
    at = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    read = line({"workspace": workspace, "at": at, "thing": object(), 7: "seven"})
    assert read["workspace"] == str(workspace)
    assert read["at"] == "2026-12-06T01:02:03+00:00"
    assert str(read["thing"]).startswith("<object object at")
    assert read["7"] == "seven"


def test_an_integer_beyond_64_bits_falls_back_to_the_standard_library() -> None:
    assert line({"big": 2 ** 70, "id": uuid.UUID(int=1)}) == {
        "big": 2 ** 70, "id": repr(uuid.UUID(int=1))}
