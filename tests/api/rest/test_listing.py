"""Lists: limits, keyset cursors, sorting, filter operators and the JSON search body."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.rest.conftest import (
    all_pages,
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    new_custom_field,
)
from tests.conftest import Workspace


def names(response_or_rows: Any) -> list[str]:
    rows = response_or_rows if isinstance(response_or_rows, list) \
        else response_or_rows.json()["data"]
    return [r["full_name"] for r in rows]


async def listing(ws: Workspace, **params: Any) -> list[str]:
    response = await ws.get("/api/v1/contacts", params=params)
    assert response.status_code == 200, response.text
    return sorted(names(response))


@pytest.mark.parametrize("limit", ["201", "1000", "0", "-1"])
async def test_limit_outside_1_to_200_is_422(shared_ws: Workspace, limit: str) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={"limit": limit})
    assert_problem(response, 422)
    assert error_locs(response) == [["query", "limit"]]


async def test_limit_200_is_allowed(shared_ws: Workspace) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={"limit": "200"})
    assert response.status_code == 200
    assert response.json()["next_cursor"] is None


async def test_cursor_paging_visits_every_card_exactly_once_newest_first(ws: Workspace) -> None:
    created = [await new_contact(ws, first_name=f"P{i}") for i in range(7)]
    pages = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = (await ws.get("/api/v1/contacts", params=params)).json()
        pages.append(names(body["data"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [n for p in pages for n in p] == [c["full_name"] for c in reversed(created)]


async def test_a_full_last_page_ends_without_a_dangling_cursor(ws: Workspace) -> None:
    for i in range(4):
        await new_contact(ws, first_name=f"P{i}")
    first = (await ws.get("/api/v1/contacts", params={"limit": "2"})).json()
    second = (await ws.get("/api/v1/contacts", params={"limit": "2",
                                                       "cursor": first["next_cursor"]})).json()
    assert len(second["data"]) == 2 and second["next_cursor"] is None


async def test_paging_does_not_skip_or_repeat_when_cards_are_added_meanwhile(
        ws: Workspace) -> None:
    for i in range(4):
        await new_contact(ws, first_name=f"Old{i}", last_name="x")
    first = (await ws.get("/api/v1/contacts", params={"limit": "2", "sort": "created_at"})).json()
    await new_contact(ws, first_name="New", last_name="x")
    rest = await all_pages(ws, "/api/v1/contacts", limit=2, sort="created_at",
                           cursor=first["next_cursor"])
    assert names(first["data"]) + names(rest) == ["Old0 x", "Old1 x", "Old2 x", "Old3 x", "New x"]


async def test_sort_by_full_name_pages_through_ties_once(ws: Workspace) -> None:
    for name in ["Delta", "Alpha", "Charlie", "Bravo", "Alpha", "Echo", "Bravo"]:
        await new_contact(ws, full_name=name)
    ascending = await all_pages(ws, "/api/v1/contacts", limit=2, sort="full_name")
    assert names(ascending) == ["Alpha", "Alpha", "Bravo", "Bravo", "Charlie", "Delta", "Echo"]
    assert len({r["id"] for r in ascending}) == 7
    descending = await all_pages(ws, "/api/v1/contacts", limit=3, sort="-full_name")
    assert names(descending) == ["Echo", "Delta", "Charlie", "Bravo", "Bravo", "Alpha", "Alpha"]
    assert len({r["id"] for r in descending}) == 7


async def test_sort_by_created_at_both_ways(ws: Workspace) -> None:
    for i in range(3):
        await new_contact(ws, full_name=f"C{i}")
    assert names(await all_pages(ws, "/api/v1/contacts", sort="created_at", limit=2)) == [
        "C0", "C1", "C2"]
    assert names(await all_pages(ws, "/api/v1/contacts", sort="-created_at", limit=2)) == [
        "C2", "C1", "C0"]


@pytest.mark.parametrize("sort", ["phones", "-search_text", "nonsense", "tags"])
async def test_sort_by_an_unsortable_field_is_422(shared_ws: Workspace, sort: str) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={"sort": sort})
    assert_problem(response, 422)
    assert error_locs(response) == [["query", "sort"]]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "W251bGwsIm5vdC1hLXV1aWQiXQ"])
async def test_a_forged_cursor_is_422(shared_ws: Workspace, cursor: str) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={"cursor": cursor})
    assert_problem(response, 422)
    assert error_locs(response) == [["query", "cursor"]]


async def test_a_cursor_from_another_sort_is_422_not_500(ws: Workspace) -> None:
    for i in range(3):
        await new_contact(ws, full_name=f"C{i}")
    by_name = (await ws.get("/api/v1/contacts", params={"limit": "1", "sort": "full_name"})).json()
    response = await ws.get("/api/v1/contacts", params={"cursor": by_name["next_cursor"],
                                                        "sort": "created_at"})
    assert_problem(response, 422)


async def test_filter_by_status_and_status_in(ws: Workspace) -> None:
    await new_contact(ws, full_name="Hot", status="hot")
    await new_contact(ws, full_name="Warm", status="warm")
    await new_contact(ws, full_name="Cold", status="cold")
    assert await listing(ws, status="hot") == ["Hot"]
    assert await listing(ws, status__eq="hot") == ["Hot"]
    assert await listing(ws, status__in="hot,warm") == ["Hot", "Warm"]
    assert await listing(ws, status__nin="hot,warm") == ["Cold"]
    assert await listing(ws, status__ne="hot") == ["Cold", "Warm"]


async def test_filter_by_tags(ws: Workspace) -> None:
    await new_contact(ws, full_name="Vip", tags=["vip", "b2b"])
    await new_contact(ws, full_name="Wholesale", tags=["wholesale"])
    await new_contact(ws, full_name="Untagged")
    assert await listing(ws, tags__has="vip") == ["Vip"]
    assert await listing(ws, tags__hasany="vip,wholesale") == ["Vip", "Wholesale"]
    assert await listing(ws, tags="b2b") == ["Vip"]


async def test_filter_by_created_at_with_offsets(ws: Workspace) -> None:
    first = await new_contact(ws, full_name="First")
    second = await new_contact(ws, full_name="Second")
    third = await new_contact(ws, full_name="Third")
    assert await listing(ws, created_at__gte=second["created_at"]) == ["Second", "Third"]
    assert await listing(ws, created_at__gt=second["created_at"]) == ["Third"]
    assert await listing(ws, created_at__lt=second["created_at"]) == ["First"]
    assert await listing(ws, created_at__lte=first["created_at"]) == ["First"]
    assert third["created_at"] > first["created_at"]
    # A "+03:00" offset typed raw into the URL (its "+" arrives as a space) still parses.
    response = await ws.get("/api/v1/contacts?created_at__gte=2000-01-01T03:00:00+03:00")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3
    zulu = await ws.get("/api/v1/contacts", params={"updated_at__gte": "2000-01-01T00:00:00Z"})
    assert len(zulu.json()["data"]) == 3


@pytest.mark.parametrize("params,loc", [
    ({"created_at__gte": "yesterday"}, ["query", "created_at__gte"]),
    ({"created_at__gte": "2026-01-01T00:00:00"}, ["query", "created_at__gte"]),
    ({"birthday__lt": "31.12.1990"}, ["query", "birthday__lt"]),
    ({"owner_id": "bob"}, ["query", "owner_id"]),
    ({"status__like": "hot"}, ["query", "status__like"]),
    ({"tags__gte": "vip"}, ["query", "tags__gte"]),
    ({"status__has": "hot"}, ["query", "status__has"]),
    ({"owner_id__gt": "0190b6a2-0000-7000-8000-000000000000"}, ["query", "owner_id__gt"]),
    ({"birthday__contains": "1990"}, ["query", "birthday__contains"]),
    ({"status__in": ""}, ["query", "status__in"]),
    ({"status__isnull": "maybe"}, ["query", "status__isnull"]),
])
async def test_malformed_filter_is_422_naming_the_parameter(
        shared_ws: Workspace, params: dict[str, str], loc: list[str]) -> None:
    response = await shared_ws.get("/api/v1/contacts", params=params)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


@pytest.mark.parametrize("param", ["colour", "search_text", "workspace_id", "company.ceo",
                                   "owner.name", "phones"])
async def test_unknown_filter_field_is_422(shared_ws: Workspace, param: str) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={param: "x"})
    assert_problem(response, 422)
    assert error_locs(response) == [["query", param]]


async def test_a_parameter_given_twice_is_422(shared_ws: Workspace) -> None:
    response = await shared_ws.get("/api/v1/contacts?status=hot&status=warm")
    assert_problem(response, 422)
    assert error_locs(response) == [["query", "status"]]


async def test_filter_by_birthday_and_isnull(ws: Workspace) -> None:
    await new_contact(ws, full_name="Old", birthday="1960-05-05")
    await new_contact(ws, full_name="Young", birthday="2001-01-01")
    await new_contact(ws, full_name="Unknown")
    assert await listing(ws, birthday__lt="1990-01-01") == ["Old"]
    assert await listing(ws, birthday__isnull="true") == ["Unknown"]
    assert await listing(ws, birthday__isnull="false") == ["Old", "Young"]


async def test_filter_by_text_contains_and_startswith_ignores_case(ws: Workspace) -> None:
    await new_contact(ws, full_name="Ivan Petrov", source="Yandex Direct")
    await new_contact(ws, full_name="Petr Ivanov", source="google ads")
    assert await listing(ws, source__contains="DIRECT") == ["Ivan Petrov"]
    assert await listing(ws, full_name__startswith="petr") == ["Petr Ivanov"]
    assert await listing(ws, full_name__contains="%") == []


async def test_filter_by_company_fields(ws: Workspace) -> None:
    okna = await new_company(ws, name="Okna Plus", kind="supplier", tags=["windows"])
    doors = await new_company(ws, name="Dveri Mira")
    await new_contact(ws, full_name="Window Guy", company_id=okna["id"])
    await new_contact(ws, full_name="Door Guy", company_id=doors["id"])
    await new_contact(ws, full_name="Freelancer")
    assert await listing(ws, **{"company.name__contains": "okna"}) == ["Window Guy"]
    assert await listing(ws, **{"company.kind": "supplier"}) == ["Window Guy"]
    assert await listing(ws, **{"company.tags__has": "windows"}) == ["Window Guy"]
    assert await listing(ws, company_id=doors["id"]) == ["Door Guy"]
    assert await listing(ws, company_id__isnull="true") == ["Freelancer"]


async def test_filter_by_custom_fields(ws: Workspace) -> None:
    await new_custom_field(ws, "visits", "number")
    await new_custom_field(ws, "level", "select", options=["gold", "silver"])
    await new_custom_field(ws, "inn", "text")
    await new_custom_field(ws, "next_service", "date")
    await new_custom_field(ws, "interests", "multiselect", options=["tyres", "oil", "glass"])
    await new_contact(ws, full_name="Regular", custom_fields={
        "visits": 12, "level": "gold", "inn": "7701234567", "next_service": "2026-05-01",
        "interests": ["oil", "tyres"]})
    await new_contact(ws, full_name="Rare", custom_fields={
        "visits": 2, "level": "silver", "inn": "500100732259", "next_service": "2026-09-01"})
    await new_contact(ws, full_name="Blank")
    assert await listing(ws, **{"custom_fields.visits__gte": "3"}) == ["Regular"]
    assert await listing(ws, **{"custom_fields.visits__lt": "3"}) == ["Rare"]
    assert await listing(ws, **{"custom_fields.visits": "2"}) == ["Rare"]
    assert await listing(ws, **{"custom_fields.level": "gold"}) == ["Regular"]
    assert await listing(ws, **{"custom_fields.level__in": "gold,silver"}) == ["Rare", "Regular"]
    assert await listing(ws, **{"custom_fields.next_service__lt": "2026-06-01"}) == ["Regular"]
    assert await listing(ws, **{"custom_fields.interests__has": "oil"}) == ["Regular"]
    assert await listing(ws, **{"custom_fields.visits__isnull": "true"}) == ["Blank"]
    # A text field holding digits (a tax number) is found by those digits.
    assert await listing(ws, **{"custom_fields.inn": "7701234567"}) == ["Regular"]
    assert await listing(ws, **{"custom_fields.inn__ne": "7701234567"}) == ["Rare"]
    assert await listing(ws, **{"custom_fields.inn__contains": "0073"}) == ["Rare"]
    # Comparing a number field with text is no match, never a server error.
    assert await listing(ws, **{"custom_fields.visits__gte": "many"}) == []


async def test_unknown_custom_field_filter_key_shape_is_422(shared_ws: Workspace) -> None:
    response = await shared_ws.get("/api/v1/contacts", params={"custom_fields.a b": "1"})
    assert_problem(response, 422)


async def test_a_filter_on_an_undefined_custom_field_is_422(ws: Workspace) -> None:
    """A typo in a key would otherwise read as "no such records"."""
    await new_custom_field(ws, "visits", "number")
    await new_custom_field(ws, "floor", "number", object_type="deal")
    await new_contact(ws, full_name="Regular", custom_fields={"visits": 12})
    assert await listing(ws, **{"custom_fields.visits__gte": "3"}) == ["Regular"]
    typo = await ws.get("/api/v1/contacts", params={"custom_fields.vists__gte": "3"})
    body = assert_problem(typo, 422)
    assert "'vists'" in body["detail"] and "visits" in body["detail"]
    assert error_locs(typo) == [["query", "custom_fields.vists__gte"]]
    # a key defined for another object type is not a contact's
    other_type = await ws.get("/api/v1/contacts", params={"custom_fields.floor": "5"})
    assert "'floor'" in assert_problem(other_type, 422)["detail"]
    assert_problem(await ws.get("/api/v1/deals", params={"custom_fields.visits": "1"}), 422)
    assert_problem(await ws.get("/api/v1/companies", params={"custom_fields.visits": "1"}),
                   422)
    assert (await ws.get("/api/v1/deals", params={"custom_fields.floor__gte": "5"})
            ).status_code == 200
    searched = await ws.post("/api/v1/contacts/search", json={"filter": {"or": [
        {"field": "status", "op": "eq", "value": "new"},
        {"not": {"field": "custom_fields.vists", "op": "gte", "value": 3}}]}})
    assert error_locs(searched) == [["body", "filter"]]
    exported = await ws.get("/api/v1/exports/contacts", params={"custom_fields.vists": "1"})
    assert_problem(exported, 422)
    # a deleted definition is no longer a filter
    definition = next(d for d in (await ws.get("/api/v1/custom-fields")).json()["data"]
                      if d["key"] == "visits")
    assert (await ws.delete(f"/api/v1/custom-fields/{definition['id']}")).status_code == 204
    assert_problem(await ws.get("/api/v1/contacts", params={"custom_fields.visits": "12"}),
                   422)


async def test_include_deleted_lists_deleted_cards_too(ws: Workspace) -> None:
    await new_contact(ws, full_name="Alive")
    gone = await new_contact(ws, full_name="Gone")
    await ws.delete(f"/api/v1/contacts/{gone['id']}")
    assert await listing(ws) == ["Alive"]
    assert await listing(ws, include_deleted="true") == ["Alive", "Gone"]


async def test_search_body_with_and_or_groups(ws: Workspace) -> None:
    okna = await new_company(ws, name="Okna Plus")
    await new_contact(ws, full_name="Hot Vip", status="hot", tags=["vip"])
    await new_contact(ws, full_name="Warm Okna", status="warm", company_id=okna["id"])
    await new_contact(ws, full_name="Warm Plain", status="warm")
    await new_contact(ws, full_name="Cold Vip", status="cold", tags=["vip"])
    response = await ws.post("/api/v1/contacts/search", json={"filter": {"and": [
        {"field": "status", "op": "in", "value": ["hot", "warm"]},
        {"or": [{"field": "tags", "op": "has", "value": "vip"},
                {"field": "company.name", "op": "contains", "value": "okna"}]},
    ]}, "sort": "full_name"})
    assert response.status_code == 200, response.text
    assert names(response) == ["Hot Vip", "Warm Okna"]
    negated = await ws.post("/api/v1/contacts/search", json={
        "filter": {"not": {"field": "status", "op": "eq", "value": "warm"}}, "sort": "full_name"})
    assert names(negated) == ["Cold Vip", "Hot Vip"]


async def test_search_body_pages_with_cursor(ws: Workspace) -> None:
    for i in range(5):
        await new_contact(ws, full_name=f"N{i}", status="hot")
    seen: list[str] = []
    body: dict[str, Any] = {"filter": {"field": "status", "op": "eq", "value": "hot"},
                            "limit": 2, "sort": "full_name"}
    while True:
        page = (await ws.post("/api/v1/contacts/search", json=body)).json()
        seen += names(page["data"])
        if page["next_cursor"] is None:
            break
        body["cursor"] = page["next_cursor"]
    assert seen == ["N0", "N1", "N2", "N3", "N4"]


@pytest.mark.parametrize("body,loc", [
    ({"filter": {"field": "colour", "op": "eq", "value": "red"}}, ["body", "filter"]),
    ({"filter": {"and": [{"field": "status", "op": "like", "value": "x"}]}},
     ["body", "filter", "and", 0]),
    ({"filter": {"or": [{"field": "status", "value": "hot"},
                        {"field": "created_at", "op": "gte", "value": "soon"}]}},
     ["body", "filter", "or", 1]),
    ({"filter": {"field": "status"}}, ["body", "filter"]),
    ({"filter": {"and": {"field": "status"}}}, ["body", "filter"]),
    ({"filter": {"field": "status", "op": "eq", "value": "x", "extra": 1}}, ["body", "filter"]),
    ({"filter": {"field": "status", "op": "eq", "value": {"nested": 1}}}, ["body", "filter"]),
    ({"filter": {"and": ["status"]}}, ["body", "filter", "and", 0]),
    ({"limit": 201}, ["body", "limit"]),
    ({"page": 2}, ["body", "page"]),
])
async def test_malformed_search_body_is_422_naming_the_place(
        shared_ws: Workspace, body: dict[str, Any], loc: list[Any]) -> None:
    response = await shared_ws.post("/api/v1/contacts/search", json=body)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


def nested_not(depth: int) -> str:
    return ('{"filter": ' + '{"not": ' * depth + '{"field": "status", "value": "hot"}'
            + "}" * depth + "}")


async def test_a_moderately_nested_search_body_works(ws: Workspace) -> None:
    await new_contact(ws, full_name="Hot", status="hot")
    await new_contact(ws, full_name="Cold", status="cold")
    response = await ws.post("/api/v1/contacts/search", content=nested_not(8),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert names(response) == ["Hot"]


async def test_a_non_finite_filter_value_is_422_not_a_crash(ws: Workspace) -> None:
    await new_custom_field(ws, "visits", "number")
    for value in ["NaN", "Infinity", "-Infinity", "1e999"]:
        body = '{"filter": {"field": "custom_fields.visits", "op": "gte", "value": ' + value + "}}"
        response = await ws.post("/api/v1/contacts/search", content=body,
                                  headers={"Content-Type": "application/json"})
        assert_problem(response, 422)
        assert error_locs(response) == [["body", "filter"]], value


@pytest.mark.parametrize("depth", [11, 300, 900])
async def test_a_deeply_nested_search_body_is_422_not_a_crash(shared_ws: Workspace,
                                                               depth: int) -> None:
    response = await shared_ws.post("/api/v1/contacts/search", content=nested_not(depth),
                             headers={"Content-Type": "application/json"})
    assert_problem(response, 422)
    assert error_locs(response)[0][:3] == ["body", "filter", "not"]


async def test_json_too_deep_to_parse_is_400(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts/search", content=nested_not(100_000),
                             headers={"Content-Type": "application/json"})
    assert assert_problem(response, 400)["title"] == "Malformed request"
