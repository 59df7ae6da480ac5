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


async def test_boolean_and_decimal_filters(ws: Workspace) -> None:
    default = await ws.get("/api/v1/pipelines", params={"is_default": "true"})
    assert default.status_code == 200, default.text
    assert [p["is_default"] for p in default.json()["data"]] == [True]
    assert (await ws.get("/api/v1/pipelines", params={"is_default": "false"})).json()["data"] == []
    assert (await ws.get("/api/v1/pipelines", params={"is_default__gt": "true"})).status_code == 422
    for bad in ("abc", "NaN", "1e400"):
        response = await ws.get("/api/v1/deals", params={"amount__gte": bad})
        assert response.status_code == 422, (bad, response.text)
    assert (await ws.get("/api/v1/deals", params={"amount__gte": "1000.50"})).status_code == 200
