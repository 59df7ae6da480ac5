"""Finding a card: lookup by phone or email in any format, and `q` search in any script."""

from __future__ import annotations

import pytest

from tests.api.rest.conftest import assert_problem, error_locs, new_company, new_contact
from tests.conftest import Workspace


async def search(ws: Workspace, q: str) -> list[str]:
    response = await ws.get("/api/v1/contacts", params={"q": q})
    assert response.status_code == 200, response.text
    return [c["full_name"] for c in response.json()["data"]]


async def test_lookup_by_phone_in_any_format_finds_the_card(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan", phones=["8 (495) 123-45-67"])
    await new_contact(ws, first_name="Other", phones=["+7 495 1234568"])
    for typed in ["8 (495) 123-45-67", "+7 495 1234567", "84951234567", "+74951234567",
                  "495 123 45 67", "7 (495) 123-45-67"]:
        found = await ws.get("/api/v1/contacts/lookup", params={"phone": typed})
        assert found.status_code == 200, (typed, found.text)
        assert found.json()["id"] == card["id"], typed
        assert found.headers["etag"] == '"1"'


async def test_lookup_by_email_ignores_case_and_spaces(ws: Workspace) -> None:
    card = await new_contact(ws, emails=["Ivan.Petrov@Example.com"])
    found = await ws.get("/api/v1/contacts/lookup", params={"email": "  IVAN.PETROV@example.COM "})
    assert found.status_code == 200, found.text
    assert found.json()["id"] == card["id"]


async def test_lookup_by_an_internationalized_email(ws: Workspace) -> None:
    card = await new_contact(ws, emails=["Иван@Пример.рф"])
    assert card["emails"][0]["email"] == "иван@пример.рф"
    found = await ws.get("/api/v1/contacts/lookup", params={"email": "ИВАН@пример.РФ"})
    assert found.status_code == 200, found.text
    assert found.json()["id"] == card["id"]
    duplicate = await ws.post("/api/v1/contacts", json={"emails": ["иван@ПРИМЕР.рф"]})
    assert_problem(duplicate, 409)


async def test_lookup_finds_a_second_phone_of_the_card(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["+7 495 1234567", "+7 916 765-43-21"])
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "89167654321"})
    assert found.json()["id"] == card["id"]


async def test_lookup_of_unknown_number_is_404(ws: Workspace) -> None:
    await new_contact(ws, phones=["+7 495 1234567"])
    assert_problem(await ws.get("/api/v1/contacts/lookup", params={"phone": "+7 495 0000000"}),
                   404)
    assert_problem(await ws.get("/api/v1/contacts/lookup", params={"email": "no@example.com"}),
                   404)


async def test_lookup_does_not_find_another_workspaces_card(ws: Workspace,
                                                            other_ws: Workspace) -> None:
    await new_contact(other_ws, phones=["+7 495 1234567"], emails=["their@example.com"])
    assert_problem(await ws.get("/api/v1/contacts/lookup", params={"phone": "84951234567"}), 404)
    assert_problem(await ws.get("/api/v1/contacts/lookup",
                                params={"email": "their@example.com"}), 404)


async def test_lookup_does_not_find_a_deleted_card(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["+7 495 1234567"])
    assert (await ws.delete(f"/api/v1/contacts/{card['id']}")).status_code == 204
    assert_problem(await ws.get("/api/v1/contacts/lookup", params={"phone": "84951234567"}), 404)


@pytest.mark.parametrize("params,loc", [
    ({}, ["query"]),
    ({"phone": "84951234567", "email": "a@example.com"}, ["query"]),
    ({"phone": "12"}, ["query", "phone"]),
    ({"email": "not-an-email"}, ["query", "email"]),
])
async def test_lookup_needs_exactly_one_valid_phone_or_email(
        shared_ws: Workspace, params: dict[str, str], loc: list[str]) -> None:
    response = await shared_ws.get("/api/v1/contacts/lookup", params=params)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_search_ignores_case_and_yo_in_cyrillic(ws: Workspace) -> None:
    await new_contact(ws, first_name="Пётр", last_name="Ёлкин")
    await new_contact(ws, first_name="Павел", last_name="Смирнов")
    assert await search(ws, "елкин") == ["Пётр Ёлкин"]
    assert await search(ws, "ЁЛКИН") == ["Пётр Ёлкин"]
    assert await search(ws, "петр") == ["Пётр Ёлкин"]


async def test_search_ignores_case_in_armenian(ws: Workspace) -> None:
    await new_contact(ws, first_name="Արամ", last_name="Խաչատրյան")
    await new_contact(ws, first_name="Anna")
    assert await search(ws, "արամ") == ["Արամ Խաչատրյան"]
    assert await search(ws, "ԽԱՉԱՏՐՅԱՆ") == ["Արամ Խաչատրյան"]


async def test_search_ignores_case_and_accents_in_vietnamese(ws: Workspace) -> None:
    await new_contact(ws, full_name="Nguyễn Văn Đức")
    await new_contact(ws, full_name="Trần Thị Mai")
    assert await search(ws, "nguyen van duc") == ["Nguyễn Văn Đức"]
    assert await search(ws, "ĐỨC") == ["Nguyễn Văn Đức"]
    assert await search(ws, "tran thi") == ["Trần Thị Mai"]


async def test_search_by_phone_digits_in_any_grouping(ws: Workspace) -> None:
    await new_contact(ws, first_name="Caller", phones=["8 (495) 123-45-67"])
    await new_contact(ws, first_name="Other", phones=["+7 916 765-43-21"])
    for q in ["4951234567", "74951234567", "+7 (495) 123-45-67", "495 123", "123-45-67",
              "8 495 123", "(495) 123"]:
        assert await search(ws, q) == ["Caller"], q
    assert await search(ws, "765-43-21") == ["Other"]


async def test_search_by_email(ws: Workspace) -> None:
    await new_contact(ws, first_name="Mailer", emails=["Ivan.Petrov@Example.com"])
    await new_contact(ws, first_name="Other", emails=["other@example.org"])
    assert await search(ws, "ivan.petrov@example") == ["Mailer"]
    assert await search(ws, "EXAMPLE.COM") == ["Mailer"]


async def test_search_by_company_name(ws: Workspace) -> None:
    company = await new_company(ws, name="Окна Плюс")
    await new_contact(ws, first_name="Employee", company_id=company["id"])
    await new_contact(ws, first_name="Loner")
    assert await search(ws, "окна плюс") == ["Employee"]


async def test_search_does_not_match_through_a_deleted_company(ws: Workspace) -> None:
    company = await new_company(ws, name="Gone Ltd")
    await new_contact(ws, first_name="Employee", company_id=company["id"])
    assert (await ws.delete(f"/api/v1/companies/{company['id']}")).status_code == 204
    assert await search(ws, "gone ltd") == []


async def test_search_treats_wildcards_literally(ws: Workspace) -> None:
    await new_contact(ws, first_name="Ivan")
    assert await search(ws, "%") == []
    assert await search(ws, "_") == []
    assert await search(ws, "Iv%n") == []


async def test_search_never_returns_another_workspaces_cards(ws: Workspace,
                                                             other_ws: Workspace) -> None:
    await new_contact(other_ws, first_name="Secret", phones=["+7 495 1234567"])
    assert await search(ws, "secret") == []
    assert await search(ws, "4951234567") == []


async def test_post_search_takes_q_too(ws: Workspace) -> None:
    await new_contact(ws, first_name="Ёлкин")
    response = await ws.post("/api/v1/contacts/search", json={"q": "елкин"})
    assert response.status_code == 200, response.text
    assert [c["first_name"] for c in response.json()["data"]] == ["Ёлкин"]
