"""Values PostgreSQL refuses (NUL characters, numbers and times out of range) are the client's
bad input: a 422 problem, never a 500, and nothing is half-written."""

from __future__ import annotations

from tests.api.rest.conftest import PROBLEM
from tests.conftest import Workspace


async def test_nul_character_in_a_body_is_422_and_nothing_is_stored(ws: Workspace) -> None:
    response = await ws.post("/api/v1/contacts", json={"full_name": "Ivan\u0000Petrov",
                                                        "phones": ["+7 495 123 45 67"]})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    # The phone was not claimed by a half-written card: it can be used now.
    again = await ws.post("/api/v1/contacts", json={"full_name": "Ivan Petrov",
                                                     "phones": ["+7 495 123 45 67"]})
    assert again.status_code == 201, again.text


async def test_filters_out_of_range_are_422(ws: Workspace) -> None:
    for query in ("created_at__gt=9999-12-31T23:59:59-05:00", "first_name=a%00",
                  "version__gt=99999999999"):
        response = await ws.get(f"/api/v1/contacts?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == PROBLEM
