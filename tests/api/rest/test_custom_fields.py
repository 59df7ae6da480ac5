"""Custom fields: typed definitions per object type, and values checked against them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.rest.conftest import (
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    new_custom_field,
)
from tests.conftest import Workspace

DEFINITIONS: list[dict[str, Any]] = [
    {"key": "nickname", "type": "text"},
    {"key": "visits", "type": "number"},
    {"key": "average_bill", "type": "money"},
    {"key": "next_service", "type": "date"},
    {"key": "last_visit_at", "type": "datetime"},
    {"key": "subscribed", "type": "boolean"},
    {"key": "level", "type": "select", "options": ["gold", "silver"]},
    {"key": "interests", "type": "multiselect", "options": ["tyres", "oil", "glass"]},
    {"key": "spouse_phone", "type": "phone"},
    {"key": "billing_email", "type": "email"},
    {"key": "website", "type": "url"},
    {"key": "referrer", "type": "user"},
]


async def define_all(ws: Workspace) -> Workspace:
    for definition in DEFINITIONS:
        await new_custom_field(ws, definition["key"], definition["type"],
                               options=definition.get("options", []))
    return ws


@pytest.fixture
async def fields(ws: Workspace) -> Workspace:
    return await define_all(ws)


@pytest.fixture(scope="module")
async def refusing_fields(shared_ws: Workspace) -> Workspace:
    """Every type defined once, for tests whose writes are all refused."""
    return await define_all(shared_ws)


async def test_definitions_of_every_type_are_listed_per_object_type(fields: Workspace) -> None:
    await new_custom_field(fields, "industry", "text", object_type="company")
    contact_fields = (await fields.get("/api/v1/custom-fields",
                                       params={"object_type": "contact"})).json()["data"]
    assert sorted((d["key"], d["type"]) for d in contact_fields) == sorted(
        (d["key"], d["type"]) for d in DEFINITIONS)
    company_fields = (await fields.get("/api/v1/custom-fields",
                                       params={"object_type": "company"})).json()["data"]
    assert [d["key"] for d in company_fields] == ["industry"]
    everything = (await fields.get("/api/v1/custom-fields")).json()["data"]
    assert len(everything) == len(DEFINITIONS) + 1
    level = next(d for d in contact_fields if d["key"] == "level")
    assert level["options"] == ["gold", "silver"] and level["required"] is False
    one = await fields.get(f"/api/v1/custom-fields/{level['id']}")
    assert one.json() == level


async def test_valid_values_of_every_type_are_stored_normalized(fields: Workspace) -> None:
    card = await new_contact(fields, first_name="Client", custom_fields={
        "nickname": "Vanya", "visits": 12, "average_bill": {"amount": "1500.50",
                                                            "currency": "rub"},
        "next_service": "2026-03-31", "last_visit_at": "2026-03-01T10:00:00Z",
        "subscribed": True, "level": "gold", "interests": ["oil", "tyres", "oil"],
        "spouse_phone": "8 (495) 123-45-67", "billing_email": "Books@Example.COM",
        "website": "https://okna.example/about", "referrer": fields.owner_id})
    assert card["custom_fields"] == {
        "nickname": "Vanya", "visits": 12,
        "average_bill": {"amount": "1500.50", "currency": "RUB"},
        "next_service": "2026-03-31", "last_visit_at": "2026-03-01T10:00:00+00:00",
        "subscribed": True, "level": "gold", "interests": ["oil", "tyres"],
        "spouse_phone": "+74951234567", "billing_email": "books@example.com",
        "website": "https://okna.example/about", "referrer": fields.owner_id}
    assert (await fields.get(f"/api/v1/contacts/{card['id']}")).json()["custom_fields"] \
        == card["custom_fields"]


@pytest.mark.parametrize("key,value", [
    ("nickname", 5), ("nickname", ["a"]),
    ("visits", "5"), ("visits", True), ("visits", {"n": 1}),
    ("average_bill", "12.50"), ("average_bill", {"amount": "abc", "currency": "EUR"}),
    ("average_bill", {"amount": "1", "currency": "EURO"}),
    ("average_bill", {"amount": "Infinity", "currency": "EUR"}),
    ("average_bill", {"amount": "NaN", "currency": "EUR"}),
    ("average_bill", {"amount": "1"}), ("average_bill", {"amount": [], "currency": "EUR"}),
    ("next_service", "31.03.2026"), ("next_service", "2026-02-30"), ("next_service", 20260331),
    ("last_visit_at", "2026-03-01T10:00:00"), ("last_visit_at", "yesterday"),
    ("subscribed", "true"), ("subscribed", 1),
    ("level", "platinum"), ("level", ["gold"]),
    ("interests", "oil"), ("interests", ["oil", "wipers"]), ("interests", [["oil"]]),
    ("spouse_phone", "12"), ("spouse_phone", "call me"),
    ("billing_email", "books-at-example.com"),
    ("website", "ftp://example.com"), ("website", "example.com"),
    ("website", "javascript:alert(1)"),
    ("referrer", "not-a-uuid"), ("referrer", "0190b6a2-0000-7000-8000-000000000000"),
])
async def test_wrong_value_is_422_naming_the_custom_field(refusing_fields: Workspace, key: str,
                                                          value: Any) -> None:
    response = await refusing_fields.post("/api/v1/contacts",
                                          json={"custom_fields": {key: value}})
    body = assert_problem(response, 422)
    assert error_locs(response) == [["body", "custom_fields", key]], response.text
    assert body["errors"][0]["msg"]
    assert (await refusing_fields.get("/api/v1/contacts")).json()["data"] == []


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_number_is_422_not_a_crash(refusing_fields: Workspace,
                                                      raw: str) -> None:
    response = await refusing_fields.post("/api/v1/contacts",
                                 content='{"custom_fields": {"visits": ' + raw + "}}",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


async def test_a_user_of_another_workspace_is_not_a_valid_user_value(
        refusing_fields: Workspace, other_ws: Workspace) -> None:
    response = await refusing_fields.post("/api/v1/contacts", json={
        "custom_fields": {"referrer": other_ws.owner_id}})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "custom_fields", "referrer"]]


async def test_unknown_custom_field_is_422(ws: Workspace) -> None:
    response = await ws.post("/api/v1/contacts", json={"custom_fields": {"shoe_size": 42}})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "custom_fields", "shoe_size"]]
    await new_custom_field(ws, "industry", "text", object_type="company")
    response = await ws.post("/api/v1/contacts", json={"custom_fields": {"industry": "retail"}})
    assert error_locs(response) == [["body", "custom_fields", "industry"]]
    company = await ws.post("/api/v1/companies", json={"name": "Acme",
                                                       "custom_fields": {"industry": "retail"}})
    assert company.status_code == 201 and company.json()["custom_fields"] == {
        "industry": "retail"}


async def test_several_wrong_values_are_all_named(refusing_fields: Workspace) -> None:
    response = await refusing_fields.post("/api/v1/contacts", json={"custom_fields": {
        "shoe_size": 42, "hat_size": 7}})
    assert sorted(map(tuple, error_locs(response))) == [
        ("body", "custom_fields", "hat_size"), ("body", "custom_fields", "shoe_size")]


async def test_required_field_must_be_given_and_cannot_be_cleared(ws: Workspace) -> None:
    await new_custom_field(ws, "source_branch", "select", options=["north", "south"],
                           required=True)
    missing = await ws.post("/api/v1/contacts", json={"first_name": "Ivan"})
    assert_problem(missing, 422)
    assert error_locs(missing) == [["body", "custom_fields", "source_branch"]]
    card = await new_contact(ws, first_name="Ivan", custom_fields={"source_branch": "north"})
    cleared = await ws.patch(f"/api/v1/contacts/{card['id']}",
                             json={"custom_fields": {"source_branch": None}})
    assert_problem(cleared, 422)
    assert error_locs(cleared) == [["body", "custom_fields", "source_branch"]]
    all_cleared = await ws.patch(f"/api/v1/contacts/{card['id']}", json={"custom_fields": None})
    assert_problem(all_cleared, 422)
    renamed = await ws.patch(f"/api/v1/contacts/{card['id']}", json={"last_name": "Petrov"})
    assert renamed.status_code == 200
    assert renamed.json()["custom_fields"] == {"source_branch": "north"}


async def test_custom_fields_are_merge_patched(fields: Workspace) -> None:
    card = await new_contact(fields, custom_fields={"nickname": "Vanya", "visits": 1})
    url = f"/api/v1/contacts/{card['id']}"
    patched = await fields.patch(url, json={"custom_fields": {"visits": 2, "level": "gold"}})
    assert patched.json()["custom_fields"] == {"nickname": "Vanya", "visits": 2, "level": "gold"}
    removed = await fields.patch(url, json={"custom_fields": {"nickname": None}})
    assert removed.json()["custom_fields"] == {"visits": 2, "level": "gold"}
    untouched = await fields.patch(url, json={"status": "hot"})
    assert untouched.json()["custom_fields"] == {"visits": 2, "level": "gold"}
    cleared = await fields.patch(url, json={"custom_fields": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["custom_fields"] == {}


async def test_select_options_can_be_changed(ws: Workspace) -> None:
    level = await new_custom_field(ws, "level", "select", options=["gold", "silver"])
    assert_problem(await ws.post("/api/v1/contacts", json={
        "custom_fields": {"level": "platinum"}}), 422)
    updated = await ws.patch(f"/api/v1/custom-fields/{level['id']}", json={
        "options": ["gold", "silver", "platinum"], "label": "Loyalty level"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["options"] == ["gold", "silver", "platinum"]
    assert updated.json()["label"] == "Loyalty level" and updated.json()["version"] == 2
    card = await new_contact(ws, custom_fields={"level": "platinum"})
    assert card["custom_fields"] == {"level": "platinum"}


async def test_definitions_carry_an_etag_and_honour_if_match(ws: Workspace) -> None:
    created = await ws.post("/api/v1/custom-fields", json={
        "object_type": "contact", "key": "level", "label": "Level", "type": "select",
        "options": ["gold"]})
    assert created.headers["etag"] == '"1"'
    url = f"/api/v1/custom-fields/{created.json()['id']}"
    assert (await ws.get(url)).headers["etag"] == '"1"'
    ok = await ws.patch(url, json={"options": ["gold", "silver"]}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = await ws.patch(url, json={"options": ["gold"]}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    assert_problem(await ws.delete(url, headers={"If-Match": '"1"'}), 412)
    assert (await ws.get(url)).json()["options"] == ["gold", "silver"]


@pytest.mark.parametrize("body,loc", [
    ({"object_type": "contact", "key": "Visits", "label": "V", "type": "number"},
     ["body", "key"]),
    ({"object_type": "contact", "key": "1st", "label": "V", "type": "number"}, ["body", "key"]),
    ({"object_type": "contact", "key": "a-b", "label": "V", "type": "number"}, ["body", "key"]),
    ({"object_type": "contact", "key": "a", "label": "V", "type": "colour"}, ["body", "type"]),
    ({"object_type": "deal_x", "key": "a", "label": "V", "type": "text"},
     ["body", "object_type"]),
    ({"object_type": "contact", "key": "a", "label": "V", "type": "select"},
     ["body", "options"]),
    ({"object_type": "contact", "key": "a", "label": "V", "type": "select",
      "options": ["x", "x"]}, ["body", "options"]),
    ({"object_type": "contact", "key": "a", "label": "", "type": "text"}, ["body", "label"]),
    ({"object_type": "contact", "key": "a", "label": "A", "type": "text", "id": "x"},
     ["body", "id"]),
])
async def test_malformed_definition_is_422(shared_ws: Workspace, body: dict[str, Any],
                                           loc: list[str]) -> None:
    response = await shared_ws.post("/api/v1/custom-fields", json=body)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_duplicate_key_is_409_but_the_same_key_on_another_object_type_is_fine(
        ws: Workspace) -> None:
    await new_custom_field(ws, "rating", "number")
    response = await ws.post("/api/v1/custom-fields", json={
        "object_type": "contact", "key": "rating", "label": "Again", "type": "text"})
    assert_problem(response, 409)
    await new_custom_field(ws, "rating", "number", object_type="company")


async def test_a_definitions_type_cannot_be_changed(ws: Workspace) -> None:
    field = await new_custom_field(ws, "visits", "number")
    response = await ws.patch(f"/api/v1/custom-fields/{field['id']}", json={"type": "text"})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "type"]]


async def test_deleting_a_definition_frees_its_key(ws: Workspace) -> None:
    field = await new_custom_field(ws, "visits", "number")
    await new_contact(ws, custom_fields={"visits": 3})
    assert (await ws.delete(f"/api/v1/custom-fields/{field['id']}")).status_code == 204
    assert_problem(await ws.get(f"/api/v1/custom-fields/{field['id']}"), 404)
    assert_problem(await ws.post("/api/v1/contacts", json={"custom_fields": {"visits": 3}}), 422)
    again = await new_custom_field(ws, "visits", "text")
    assert again["id"] != field["id"]
    card = await new_contact(ws, custom_fields={"visits": "often"})
    assert card["custom_fields"] == {"visits": "often"}


async def test_company_custom_fields_are_validated_too(ws: Workspace) -> None:
    await new_custom_field(ws, "employees", "number", object_type="company")
    bad = await ws.post("/api/v1/companies", json={"name": "Acme",
                                                   "custom_fields": {"employees": "many"}})
    assert_problem(bad, 422)
    assert error_locs(bad) == [["body", "custom_fields", "employees"]]
    company = await new_company(ws, custom_fields={"employees": 40})
    patched = await ws.patch(f"/api/v1/companies/{company['id']}",
                             json={"custom_fields": {"employees": 41}})
    assert patched.json()["custom_fields"] == {"employees": 41}


async def test_batch_items_with_bad_custom_fields_fail_alone(fields: Workspace) -> None:
    response = await fields.post("/api/v1/contacts/batch", json={"items": [
        {"custom_fields": {"visits": 1}}, {"custom_fields": {"visits": "x"}},
        {"custom_fields": {"nope": 1}}]})
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "error"]
    assert results[1]["error"]["errors"][0]["loc"] == ["body", "custom_fields", "visits"]
    assert results[2]["error"]["errors"][0]["loc"] == ["body", "custom_fields", "nope"]
