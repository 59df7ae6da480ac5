"""Importing deals from a spreadsheet: pipeline and stage by name, owner by email, the
contact found by phone or email (or created), the company by name, amounts and dates in
local formats — and the rows a user has to fix, with the reason."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from app.db import unit_of_work
from app.domain.outbox.models import Event
from tests.api.rest.conftest import new_contact, new_user
from tests.api.rest.test_imports import import_file, rejected, sessions  # noqa: F401
from tests.api.rest.test_pipelines import default_pipeline
from tests.conftest import Workspace

DEALS_CSV = (
    "Сделка;Сумма;Воронка;Этап;Ответственный;Клиент;Телефон;Email;Компания;Дата закрытия;ID\n"
    "Окна в квартиру;1 250,50;;measurement;{manager};Петров Иван;8 (912) 345-67-89;;ООО Окна;"
    "25.12.2026;D-1\n"
    "Балкон;300;;;;Саргсян Арам;;aram@example.am;;;D-2\n"
    ";99;;;;Nguyễn Văn An;+84 90 123 45 67;;;;D-3\n"
    "Лоджия;abc;;;;;;;;;D-4\n"
    "Двери;10;Нет такой;;;;;;;;D-5\n"
    "Крыша;10;;Нет этапа;;;;;;;D-6\n"
    "Гараж;10;;;nobody@example.com;;;;;;D-7\n"
    "Окна в квартиру (повтор);1 250,50;;;;;;;;;D-1\n"
).encode()


async def _deals(ws: Workspace) -> dict[str, dict[str, Any]]:
    response = await ws.get("/api/v1/deals", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {d["external_id"]: d for d in response.json()["data"]}


async def test_deals_import_resolves_names_and_reports_what_to_fix(
        ws: Workspace, sessions: Any) -> None:  # noqa: F811
    manager = await new_user(ws, "manager", "Olga Manager")
    known = await new_contact(ws, full_name="Petrov Ivan", phones=["+7 912 345 67 89"])
    job = await import_file(ws, sessions, DEALS_CSV.replace(
        b"{manager}", manager["email"].upper().encode()), name="deals.csv", object="deals")
    assert job["state"] == "done", job
    assert job["mapping"]["Сделка"] == "title" and job["mapping"]["Этап"] == "stage"
    assert job["mapping"]["Клиент"] == "contact" and job["mapping"]["ID"] == "external_id"
    assert (job["created"], job["skipped"], job["failed"]) == (3, 1, 4), job
    reasons = {r["ID"]: r["reason"] for r in await rejected(ws, job["id"])}
    assert "amount 'abc' is not a number" in reasons["D-4"]
    assert "no pipeline 'Нет такой'; the pipelines are" in reasons["D-5"]
    assert "no stage 'Нет этапа'" in reasons["D-6"] and "Measurement" in reasons["D-6"]
    assert "nobody@example.com" in reasons["D-7"]

    deals = await _deals(ws)
    assert set(deals) == {"D-1", "D-2", "D-3"}
    pipeline = await default_pipeline(ws)
    stages = {s["name"]: s["id"] for s in pipeline["stages"]}
    windows = deals["D-1"]
    assert windows["title"] == "Окна в квартиру" and windows["amount"] == "1250.50"
    assert windows["stage_id"] == stages["Measurement"]  # the name, ignoring case
    assert windows["owner_id"] == manager["id"]
    assert windows["expected_close_date"] == "2026-12-25"
    assert windows["contact_ids"] == [known["id"]]  # found by the phone in another format
    company = (await ws.get(f"/api/v1/companies/{windows['company_id']}")).json()
    assert company["name"] == "ООО Окна"
    balcony = deals["D-2"]
    assert balcony["stage_id"] == pipeline["stages"][0]["id"]  # the first open stage
    card = (await ws.get(f"/api/v1/contacts/{balcony['contact_ids'][0]}")).json()
    assert card["full_name"] == "Саргсян Арам"
    assert card["emails"][0]["email"] == "aram@example.am"
    assert deals["D-3"]["title"] == "Nguyễn Văn An"  # no title: the contact's name


async def test_a_deal_file_can_use_a_stage_named_in_the_file(ws: Workspace,
                                                              sessions: Any) -> None:  # noqa: F811
    pipeline = await default_pipeline(ws)
    second = pipeline["stages"][1]["name"]
    content = f"Title,Amount,Stage,Email\nKitchen windows,100.5,{second.upper()},a@b.am\n"
    job = await import_file(ws, sessions, content.encode(), name="deals.csv", object="deals")
    assert (job["state"], job["created"]) == ("done", 1), job
    deal = next(iter((await ws.get("/api/v1/deals")).json()["data"]))
    assert deal["stage_id"] == pipeline["stages"][1]["id"]
    assert deal["amount"] == "100.50"


async def test_update_by_external_id_and_undo(ws: Workspace, sessions: Any) -> None:  # noqa: F811
    first = b"Title,Amount,External ID,Phone\nRoof,100,R-1,+7 495 123 45 67\n"
    job = await import_file(ws, sessions, first, name="deals.csv", object="deals")
    assert job["created"] == 1
    again = await import_file(ws, sessions, b"Title,Amount,External ID\nRoof,250,R-1\n",
                              name="deals.csv", object="deals", on_duplicate="update")
    assert (again["created"], again["updated"]) == (0, 1), again
    deal = (await _deals(ws))["R-1"]
    assert deal["amount"] == "250.00"
    undone = await ws.post(f"/api/v1/imports/{job['id']}/undo")
    assert undone.status_code == 200, undone.text
    assert (await _deals(ws)) == {}
    # The card the first import created for the phone is undone with it.
    gone = await ws.get("/api/v1/contacts/lookup", params={"phone": "+7 495 123 45 67"})
    assert gone.status_code == 404


async def test_a_silent_deals_import_writes_no_events(ws: Workspace,
                                                      sessions: Any) -> None:  # noqa: F811
    job = await import_file(ws, sessions, b"Title,Amount,Company\nGarage,10,Acme\n",
                            name="deals.csv", object="deals", silent=True)
    assert job["created"] == 1
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        types = (await session.execute(select(Event.type, func.count()).where(
            Event.entity_type.in_(("deal", "company"))).group_by(Event.type))).all()
    assert types == []


async def test_a_deal_mapping_must_name_something_to_call_it(ws: Workspace) -> None:
    response = await ws.post("/api/v1/imports", files={
        "file": ("deals.csv", b"Amount,Stage\n10,New\n", "text/csv")},
        data={"options": '{"object": "deals"}'})
    assert response.status_code == 422, response.text
    assert "map at least one of" in response.json()["errors"][0]["msg"]
