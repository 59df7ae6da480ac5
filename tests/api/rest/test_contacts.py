"""The customer card: create, read and merge-patch, with what people type normalized."""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from datetime import datetime
from typing import Any

import pytest

from app.domain.contacts import service
from app.domain.workspaces.context import forget_workspace
from tests.api.graphql.test_dataloader import count_statements
from tests.api.rest.conftest import (
    assert_problem,
    error_locs,
    new_company,
    new_contact,
    stored,
)
from tests.conftest import Workspace, make_workspace


async def test_created_card_reads_back_with_every_field(ws: Workspace) -> None:
    company = await new_company(ws, name="Okna Plus")
    created = await new_contact(
        ws, first_name="Анна", middle_name="Сергеевна", last_name="Иванова",
        phones=[{"number": "+7 495 1234567", "label": "work"}],
        emails=[{"email": "Anna@Example.com", "label": "home"}],
        address={"street": "Tverskaya 1", "city": "Moscow", "country": "RU"},
        status="warm", kind="partner", company_id=company["id"], source="website",
        utm={"utm_source": "google"}, birthday="1990-04-01", tags=["vip", " vip ", "b2b"],
        external_id="crm-1")
    read = await ws.get(f"/api/v1/contacts/{created['id']}")
    assert read.status_code == 200
    card = read.json()
    assert stored(card) == stored(created)
    assert card["full_name"] == "Анна Сергеевна Иванова"
    assert card["phones"] == [{"e164": "+74951234567", "original": "+7 495 1234567",
                               "label": "work"}]
    assert card["emails"] == [{"email": "anna@example.com", "label": "home"}]
    assert card["address"] == {"street": "Tverskaya 1", "city": "Moscow", "country": "RU"}
    assert (card["status"], card["kind"], card["source"]) == ("warm", "partner", "website")
    assert card["company_id"] == company["id"]
    assert card["birthday"] == "1990-04-01"
    assert card["tags"] == ["vip", "b2b"]
    assert card["external_id"] == "crm-1"
    assert card["version"] == 1 and card["deleted_at"] is None
    assert card["created_by"] == card["updated_by"]


async def test_new_card_gets_the_first_status_and_kind_of_the_workspace(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Oleg")
    assert (card["status"], card["kind"]) == ("new", "customer")
    assert card["phones"] == [] and card["emails"] == [] and card["tags"] == []


async def test_phone_in_any_common_format_normalizes_to_e164(ws: Workspace) -> None:
    for typed in ["8 (495) 123-45-67", "+7 495 1234567", "84951234567", "+7-495-123-45-67",
                  "4951234567", " 8 495 123 45 67 "]:
        card = await new_contact(ws, first_name="Ivan", phones=[typed])
        assert card["phones"] == [{"e164": "+74951234567", "original": typed, "label": None}]
        assert (await ws.delete(f"/api/v1/contacts/{card['id']}")).status_code == 204


async def test_same_number_twice_on_one_card_is_kept_once(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["8 (495) 123-45-67", "+7 495 1234567"])
    assert [p["e164"] for p in card["phones"]] == ["+74951234567"]


async def test_phone_region_comes_from_the_workspace(client) -> None:  # type: ignore[no-untyped-def]
    us = await make_workspace(client, region="US", name="Windows Inc")
    card = await new_contact(us, phones=["(212) 555-1234"])
    assert card["phones"][0]["e164"] == "+12125551234"
    assert card["timezone"] == "America/New_York"


async def test_invalid_phone_is_422_naming_the_phone(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts", json={
        "first_name": "Invalid Phone", "phones": ["+7 495 1234567", "12"]})
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "phones", 1]
    assert body["errors"][0]["msg"]
    listed = await shared_ws.get("/api/v1/contacts", params={"q": "invalid phone"})
    assert listed.json()["data"] == []
    lookup = await shared_ws.get("/api/v1/contacts/lookup", params={"phone": "+7 495 1234567"})
    assert_problem(lookup, 404)


async def test_invalid_phone_object_is_422_naming_the_phone(shared_ws: Workspace) -> None:
    response = await shared_ws.post("/api/v1/contacts", json={
        "phones": [{"number": "not a phone", "label": "work"}]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "phones", 0]]


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "ivan@@example.com", "ivan@exa mple.com"])
async def test_invalid_email_is_422_naming_the_email(shared_ws: Workspace, email: str) -> None:
    response = await shared_ws.post("/api/v1/contacts",
                                    json={"emails": ["ok@example.com", email]})
    assert_problem(response, 422)
    assert ["body", "emails", 1] in error_locs(response)


@pytest.mark.parametrize("field,value", [
    ("id", "0190b6a2-0000-7000-8000-000000000000"),
    ("workspace_id", "0190b6a2-0000-7000-8000-000000000000"),
    ("created_at", "2026-01-01T00:00:00Z"),
    ("updated_at", "2026-01-01T00:00:00Z"),
    ("deleted_at", "2026-01-01T00:00:00Z"),
    ("version", 7),
    ("created_by", "user:x"),
    ("search_text", "x"),
    ("local_time", "12:00"),
    ("favourite_colour", "green"),
])
async def test_unknown_or_server_owned_field_is_422_on_create_and_patch(
        shared_ws: Workspace, field: str, value: object) -> None:
    ws = shared_ws
    response = await ws.post("/api/v1/contacts", json={"first_name": "Ivan", field: value})
    assert_problem(response, 422)
    assert ["body", field] in error_locs(response)

    card = await new_contact(ws, first_name="Ivan")
    patched = await ws.patch(f"/api/v1/contacts/{card['id']}", json={field: value})
    assert_problem(patched, 422)
    assert ["body", field] in error_locs(patched)
    after = (await ws.get(f"/api/v1/contacts/{card['id']}")).json()
    assert stored(after) == stored(card)


async def test_patch_changes_only_fields_present_and_null_clears(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan", last_name="Petrov", source="expo",
                             phones=["+7 495 1234567"], emails=["ivan@example.com"],
                             tags=["vip"], birthday="1980-01-02",
                             address={"city": "Moscow"})
    patched = await ws.patch(f"/api/v1/contacts/{card['id']}", json={
        "last_name": None, "source": "website", "tags": None, "address": None})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["last_name"] is None and body["full_name"] == "Ivan"
    assert body["source"] == "website"
    assert body["tags"] == [] and body["address"] is None
    # absent fields stay
    assert body["first_name"] == "Ivan" and body["birthday"] == "1980-01-02"
    assert body["phones"][0]["e164"] == "+74951234567"
    assert body["emails"][0]["email"] == "ivan@example.com"
    assert body["version"] == 2
    assert stored((await ws.get(f"/api/v1/contacts/{card['id']}")).json()) == stored(body)


async def test_patch_with_no_change_keeps_the_version(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan", status="hot")
    patched = await ws.patch(f"/api/v1/contacts/{card['id']}",
                             json={"first_name": "Ivan", "status": "hot"})
    assert patched.status_code == 200
    assert patched.json()["version"] == 1
    history = (await ws.get(f"/api/v1/contacts/{card['id']}/history")).json()["data"]
    assert [e["type"] for e in history] == ["contact.created"]


async def test_patch_replaces_phones_and_frees_the_old_number(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["+7 495 1234567"])
    patched = await ws.patch(f"/api/v1/contacts/{card['id']}", json={"phones": ["+7 495 7654321"]})
    assert [p["e164"] for p in patched.json()["phones"]] == ["+74957654321"]
    other = await ws.post("/api/v1/contacts", json={"phones": ["84951234567"]})
    assert other.status_code == 201, other.text


async def test_full_name_can_be_given_directly(ws: Workspace) -> None:
    card = await new_contact(ws, full_name="  ООО   «Окна»  ")
    assert card["full_name"] == "ООО «Окна»"
    assert card["first_name"] is None


async def test_names_are_stored_in_nfc_with_whitespace_collapsed(ws: Workspace) -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn  Văn")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    card = await new_contact(ws, first_name=decomposed, last_name=unicodedata.normalize(
        "NFD", "Ёлкин"))
    assert card["first_name"] == unicodedata.normalize("NFC", "Nguyễn Văn")
    assert card["last_name"] == "Ёлкин" and unicodedata.is_normalized("NFC", card["last_name"])
    assert card["full_name"] == "Nguyễn Văn Ёлкин"


async def test_timezone_is_derived_from_the_phone(ws: Workspace) -> None:
    moscow = await new_contact(ws, phones=["+7 495 1234567"])
    novosibirsk = await new_contact(ws, phones=["+7 383 312-34-56"])
    yerevan = await new_contact(ws, phones=["+374 10 123456"])
    assert moscow["timezone"] == "Europe/Moscow"
    assert novosibirsk["timezone"] == "Asia/Novosibirsk"
    assert yerevan["timezone"] == "Asia/Yerevan"


async def test_a_mobile_spanning_zones_takes_the_workspace_zone_not_an_arbitrary_one(
        ws: Workspace, client) -> None:  # type: ignore[no-untyped-def]
    # Russian mobiles are valid in every Russian time zone; a Moscow business's customer is
    # far likelier in Moscow than in Almaty (which is not even in Russia).
    mobile = await new_contact(ws, phones=["8 916 123-45-67"])
    assert mobile["timezone"] == "Europe/Moscow"
    abroad = await make_workspace(client, region="US", name="Windows Inc")
    moved = await abroad.patch("/api/v1/workspaces/current", json={"timezone": "America/New_York"})
    assert moved.status_code == 200, moved.text
    unknown = await new_contact(abroad, phones=["+7 916 123-45-67"])
    assert unknown["timezone"] is None and unknown["local_time"] is None


async def test_a_derived_timezone_follows_a_new_phone_but_a_given_one_stays(
        ws: Workspace) -> None:
    derived = await new_contact(ws, phones=["+7 495 1234567"])
    moved = await ws.patch(f"/api/v1/contacts/{derived['id']}", json={"phones": ["+374 10 123456"]})
    assert moved.json()["timezone"] == "Asia/Yerevan"
    given = await new_contact(ws, phones=["+7 495 7654321"], timezone="Asia/Vladivostok")
    kept = await ws.patch(f"/api/v1/contacts/{given['id']}", json={"phones": ["+374 10 654321"]})
    assert kept.json()["timezone"] == "Asia/Vladivostok"
    late = await new_contact(ws, first_name="No phone yet")
    assert late["timezone"] is None
    added = await ws.patch(f"/api/v1/contacts/{late['id']}", json={"phones": ["+7 383 312-34-56"]})
    assert added.json()["timezone"] == "Asia/Novosibirsk" and added.json()["local_time"]


async def test_explicit_timezone_wins_and_unknown_zone_is_422(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["+7 495 1234567"], timezone="Asia/Vladivostok")
    assert card["timezone"] == "Asia/Vladivostok"
    bad = await ws.post("/api/v1/contacts", json={"timezone": "Mars/Olympus"})
    assert_problem(bad, 422)
    assert error_locs(bad) == [["body", "timezone"]]


async def test_local_time_is_the_current_time_in_the_contacts_zone(ws: Workspace) -> None:
    card = await new_contact(ws, phones=["+374 10 123456"])
    local = datetime.fromisoformat(card["local_time"])
    assert local.utcoffset() is not None and local.utcoffset().total_seconds() == 4 * 3600
    no_zone = await new_contact(ws, first_name="Nobody")
    assert no_zone["timezone"] is None and no_zone["local_time"] is None


async def test_status_and_kind_must_be_in_the_workspace_lists(ws: Workspace) -> None:
    bad_status = await ws.post("/api/v1/contacts", json={"status": "lukewarm"})
    assert_problem(bad_status, 422)
    assert error_locs(bad_status) == [["body", "status"]]
    bad_kind = await ws.post("/api/v1/contacts", json={"kind": "competitor"})
    assert_problem(bad_kind, 422)
    assert error_locs(bad_kind) == [["body", "kind"]]

    configured = await ws.patch("/api/v1/workspaces/current", json={"settings": {
        "contact_statuses": ["lead", "lukewarm"], "contact_kinds": ["competitor", "customer"]}})
    assert configured.status_code == 200, configured.text
    card = await new_contact(ws, status="lukewarm", kind="competitor")
    assert (card["status"], card["kind"]) == ("lukewarm", "competitor")
    assert (await new_contact(ws))["status"] == "lead"
    old = await ws.patch(f"/api/v1/contacts/{card['id']}", json={"status": "hot"})
    assert_problem(old, 422)


async def test_company_id_must_be_a_live_company_of_the_workspace(
        ws: Workspace, other_ws: Workspace) -> None:
    theirs = await new_company(other_ws, name="Theirs")
    response = await ws.post("/api/v1/contacts", json={"company_id": theirs["id"]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "company_id"]]
    ours = await new_company(ws, name="Ours")
    assert (await ws.delete(f"/api/v1/companies/{ours['id']}")).status_code == 204
    response = await ws.post("/api/v1/contacts", json={"company_id": ours["id"]})
    assert_problem(response, 422)


async def test_owner_must_be_a_user_of_the_workspace(ws: Workspace, other_ws: Workspace) -> None:
    response = await ws.post("/api/v1/contacts", json={"owner_id": other_ws.owner_id})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "owner_id"]]
    card = await new_contact(ws, owner_id=ws.owner_id)
    assert card["owner_id"] == ws.owner_id


@pytest.mark.parametrize("body", [
    {"first_name": 5}, {"tags": "vip"}, {"birthday": "31.12.1990"}, {"phones": "123"},
    {"owner_id": "not-a-uuid"}, {"first_name": "x" * 201}, {"tags": [""]},
    {"address": {"planet": "Mars"}}, {"external_id": ""},
])
async def test_wrong_types_are_422_never_500(shared_ws: Workspace,
                                            body: dict[str, object]) -> None:
    response = await shared_ws.post("/api/v1/contacts", json=body)
    assert_problem(response, 422)
    field = next(iter(body))
    assert all(loc[:2] == ["body", field] for loc in error_locs(response)), response.text


async def test_unknown_contact_is_404_and_bad_id_is_422(shared_ws: Workspace) -> None:
    missing = await shared_ws.get("/api/v1/contacts/0190b6a2-0000-7000-8000-000000000000")
    assert_problem(missing, 404)
    bad = await shared_ws.get("/api/v1/contacts/not-a-uuid")
    assert_problem(bad, 422)
    assert error_locs(bad) == [["path", "contact_id"]]


async def test_a_card_is_read_with_no_orm_session(ws: Workspace, other_ws: Workspace,
                                                  app: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`GET /contacts/{id}` for a cached caller is one statement in one round trip on the
    driver connection, outside any transaction (decisions 0063, 0067), and row-level
    security still holds there."""
    card = await new_contact(ws, full_name="Anna Petrova", phones=["+7 912 345-67-89"])
    assert (await other_ws.get("/api/v1/contacts", params={"limit": 1})).status_code == 200
    driver: list[str] = []
    logging: set[int] = set()  # a pooled connection serves both reads: one logger each
    real = service.read_contact_alone

    async def logged(conn: Any, *args: Any) -> Any:
        assert not conn.is_in_transaction()  # the statement is its own transaction
        if id(conn) not in logging:
            logging.add(id(conn))
            conn.add_query_logger(lambda record: driver.append(" ".join(record.query.split())))
        return await real(conn, *args)

    monkeypatch.setattr(service, "read_contact_alone", logged)
    with count_statements(app) as orm:
        read = await ws.get(f"/api/v1/contacts/{card['id']}")
        foreign = await other_ws.get(f"/api/v1/contacts/{card['id']}")
    assert read.status_code == 200 and read.json() == card
    assert read.headers["etag"] == f'"{card["version"]}"'
    assert_problem(foreign, 404)
    assert orm == []
    await asyncio.sleep(0)  # asyncpg calls its query loggers with `call_soon`
    # (asyncpg's own introspection of a type the first time a connection meets it aside)
    driver = [s for s in driver if "typeinfo_tree" not in s and "'jit'" not in s]
    assert len(driver) == 2 and all("from relata_contact_card($1, $2) c" in s
                                    for s in driver), driver


async def test_a_lookup_is_one_statement_with_no_orm_session(
        ws: Workspace, other_ws: Workspace, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`GET /contacts/lookup` for a cached caller is one statement on the driver connection
    (decision 0069); a phone falls back to the ORM path once, while this process has not
    cached the workspace's phone region, and answers the same."""
    card = await new_contact(ws, full_name="Anna Petrova", phones=["+7 912 345-67-89"],
                             emails=["anna@example.com"])
    assert (await other_ws.get("/api/v1/contacts", params={"limit": 1})).status_code == 200
    driver: list[str] = []
    logging: set[int] = set()
    real = service.lookup_contact_alone

    async def logged(conn: Any, *args: Any, **kwargs: Any) -> Any:
        assert not conn.is_in_transaction()
        if id(conn) not in logging:
            logging.add(id(conn))
            conn.add_query_logger(lambda record: driver.append(" ".join(record.query.split())))
        return await real(conn, *args, **kwargs)

    monkeypatch.setattr(service, "lookup_contact_alone", logged)
    forget_workspace(uuid.UUID(ws.id))
    with count_statements(app) as orm:
        first = await ws.get("/api/v1/contacts/lookup", params={"phone": "8 912 345 67 89"})
    assert first.status_code == 200 and first.json()["id"] == card["id"]
    assert any("FROM workspaces" in s for s in orm)  # the region, read through the ORM
    await asyncio.sleep(0)  # asyncpg calls its query loggers with `call_soon`
    driver.clear()  # what the ORM path sent on a connection that logs
    with count_statements(app) as orm:
        by_phone = await ws.get("/api/v1/contacts/lookup", params={"phone": "8 912 345 67 89"})
        by_email = await ws.get("/api/v1/contacts/lookup", params={"email": "Anna@Example.com"})
        foreign = await other_ws.get("/api/v1/contacts/lookup",
                                     params={"email": "anna@example.com"})
        invalid = await ws.get("/api/v1/contacts/lookup", params={"phone": "12"})
    assert orm == []
    assert by_phone.json() == by_email.json() == first.json() | {
        "local_time": by_phone.json()["local_time"]}
    assert by_phone.headers["etag"] == f'"{card["version"]}"'
    assert_problem(foreign, 404)
    assert_problem(invalid, 422)
    assert error_locs(invalid) == [["query", "phone"]]
    await asyncio.sleep(0)  # asyncpg calls its query loggers with `call_soon`
    driver = [s for s in driver if "typeinfo_tree" not in s and "'jit'" not in s]
    assert len(driver) == 3 and all("from relata_contact_by_identity($1, $2, $3) c" in s
                                    for s in driver), driver
