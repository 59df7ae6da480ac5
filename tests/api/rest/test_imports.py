"""Imports: real files (encodings, delimiters, XLSX), mapping, de-duplication, progress,
rejected rows, resume, cancel and undo — run by the worker's own job function."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, session_factory, unit_of_work
from app.domain.imports.models import ImportRecord
from app.domain.imports.runner import run_import
from app.domain.outbox.models import Event
from app.workers.imports import run_queued_imports
from tests.api.rest.conftest import PROBLEM, act_as, new_contact, new_custom_field, new_user
from tests.conftest import Workspace


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def upload(ws: Workspace, content: bytes, name: str = "customers.csv",
                 ctype: str = "text/csv", **options: Any) -> Any:
    return await ws.post("/api/v1/imports", files={"file": (name, content, ctype)},
                         data={"options": json.dumps(options)} if options else None)


async def import_file(ws: Workspace, sessions: async_sessionmaker[AsyncSession],
                      content: bytes, name: str = "customers.csv", **options: Any
                      ) -> dict[str, Any]:
    response = await upload(ws, content, name, **options)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/imports/{response.json()['id']}"
    await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(response.json()["id"]))
    return (await ws.get(f"/api/v1/imports/{response.json()['id']}")).json()  # type: ignore


async def rejected(ws: Workspace, import_id: str) -> list[dict[str, str]]:
    response = await ws.get(f"/api/v1/imports/{import_id}/rejected")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


async def lookup(ws: Workspace, **query: str) -> dict[str, Any] | None:
    response = await ws.get("/api/v1/contacts/lookup", params=query)
    return response.json() if response.status_code == 200 else None


RUSSIAN_CSV = (
    "ФИО;Телефон;Email;Компания;Статус;Заметка\r\n"
    "Петров Иван Сергеевич;8 (912) 345-67-89;IVAN@Example.com;ООО Окна;Горячий;\"две\r\nстроки\"\r\n"
    "Саргсян Арам;+374 10 123456;aram@example.am;;Холодный;\r\n"
    "Nguyễn Văn An;+84 90 123 45 67;an@example.vn;Cửa Sổ Việt;;\r\n"
    "Петров И.;+7 912 345 67 89;;;;дубль внутри файла\r\n"
    "Кузнецова Мария;89123;;;;плохой телефон\r\n"
    "Сидоров Пётр;+7-495-123-45-67;not-an-email;;;плохой email\r\n"
    ";;;;;\r\n"
    "Уже есть;8 495 765 43 21;;;;в базе\r\n"
    "Лишние;+7 495 111 22 33;;;;;;лишняя ячейка\r\n"
).encode("utf-8-sig")


async def test_a_russian_csv_with_bom_semicolons_and_duplicates(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    existing = await new_contact(ws, full_name="Old card", phones=["+74957654321"])
    job = await import_file(ws, sessions, RUSSIAN_CSV, mapping={
        "ФИО": "full_name", "Телефон": "phone", "Email": "email", "Компания": "company",
        "Статус": "status", "Заметка": None},
        transforms={"full_name": {"split": "last_first"},
                    "status": {"map": {"горячий": "hot", "холодный": "cold"}}})

    assert job["state"] == "done"
    assert job["encoding"] == "utf-8-sig" and job["delimiter"] == ";"
    assert (job["total"], job["processed"]) == (8, 8)  # the empty row is not a row
    assert (job["created"], job["skipped"], job["failed"]) == (3, 2, 3), job["errors"]
    assert job["rows_per_second"] > 0
    ivan = await lookup(ws, phone="+7 912 345-67-89")
    assert ivan is not None
    assert (ivan["last_name"], ivan["first_name"], ivan["middle_name"]) == (
        "Петров", "Иван", "Сергеевич")
    assert ivan["status"] == "hot" and ivan["emails"][0]["email"] == "ivan@example.com"
    assert ivan["company_id"] is not None
    assert ivan["timezone"] == "Europe/Moscow"  # a mobile of many zones: the workspace's
    aram = await lookup(ws, email="aram@example.am")
    assert aram is not None and aram["full_name"] == "Саргсян Арам" and aram["status"] == "cold"
    an = await lookup(ws, phone="+84901234567")
    assert an is not None and an["full_name"] == "Nguyễn Văn An"
    assert (await lookup(ws, phone="84957654321"))["id"] == existing["id"]  # type: ignore

    rows = await rejected(ws, job["id"])
    assert [(r["row"], r["ФИО"]) for r in rows] == [
        ("6", "Кузнецова Мария"), ("7", "Сидоров Пётр"), ("10", "Лишние")]
    assert "phone '89123'" in rows[0]["reason"]
    assert "email 'not-an-email'" in rows[1]["reason"]
    assert "cells" in rows[2]["reason"]
    assert [e["row"] for e in job["errors"]] == [6, 7, 10]


async def test_a_windows_1251_file_is_read_and_mapped_from_its_headers(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    content = ("Фамилия,Имя,Отчество,Мобильный телефон,Эл. почта,Город\n"
               "Смирнова,Анна,Павловна,8-912-000-11-22,anna@example.ru,Пермь\n"
               "Ёлкин,Пётр,,+7 912 000 11 33,,Москва\n").encode("cp1251")
    response = await upload(ws, content)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["encoding"].replace("-", "").replace("_", "").lower() in ("cp1251",
                                                                           "windows1251")
    assert body["mapping"] == {"Фамилия": "last_name", "Имя": "first_name",
                               "Отчество": "middle_name", "Мобильный телефон": "phone",
                               "Эл. почта": "email", "Город": "address.city"}
    await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(body["id"]))
    anna = await lookup(ws, email="anna@example.ru")
    assert anna is not None and anna["full_name"] == "Анна Павловна Смирнова"
    assert anna["address"] == {"city": "Пермь"}
    assert (await lookup(ws, phone="89120001133"))["full_name"] == "Пётр Ёлкин"  # type: ignore


async def test_utf16_tab_separated_armenian_and_vietnamese_headers(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    content = ("Անուն Ազգանուն\tՀեռախոս\n"
               "Արամ Խաչատրյան\t010 123 456\n").encode("utf-16")
    job = await import_file(ws, sessions, content, transforms={"phone": {"region": "AM"}})
    assert (job["created"], job["failed"]) == (1, 0), job
    assert job["mapping"] == {"Անուն Ազգանուն": "full_name", "Հեռախոս": "phone"}
    assert (await lookup(ws, phone="+37410123456"))["full_name"] == "Արամ Խաչատրյան"  # type: ignore

    vietnamese = "Họ và tên,Số điện thoại\nTrần Thị Bích,0912 345 678\n".encode()
    job = await import_file(ws, sessions, vietnamese, transforms={"phone": {"region": "VN"}})
    assert job["mapping"] == {"Họ và tên": "full_name", "Số điện thoại": "phone"}
    assert (await lookup(ws, phone="+84912345678"))["full_name"] == "Trần Thị Bích"  # type: ignore


async def test_an_xlsx_with_dates_numbers_and_custom_fields(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    await new_custom_field(ws, "loyalty", "text")
    book = Workbook()
    sheet = book.active
    sheet.append(["Nombre completo", "Teléfono", "Fecha de nacimiento", "Loyalty", "Tags"])
    sheet.append(["María José García", 34612345678, datetime(1990, 5, 17), "gold", "vip, es"])
    sheet.append(["Ramón Pérez", "+34 699 111 222", "17.05.1985", "", ""])
    sheet.append(["Mal Fecha", "+34 699 111 333", "sometime", "", ""])
    out = io.BytesIO()
    book.save(out)
    job = await import_file(ws, sessions, out.getvalue(), "clientes.xlsx", mapping={
        "Nombre completo": "full_name", "Teléfono": "phone",
        "Fecha de nacimiento": "birthday", "Loyalty": "custom_fields.loyalty",
        "Tags": "tags"}, transforms={"phone": {"region": "ES"}})
    assert job["file_format"] == "xlsx"
    assert (job["created"], job["failed"]) == (2, 1), job
    maria = await lookup(ws, phone="+34612345678")
    assert maria is not None and maria["birthday"] == "1990-05-17"
    assert maria["custom_fields"] == {"loyalty": "gold"} and maria["tags"] == ["vip", "es"]
    assert (await lookup(ws, phone="+34699111222"))["birthday"] == "1985-05-17"  # type: ignore
    assert "birthday 'sometime'" in job["errors"][0]["reason"]


async def test_a_dry_run_counts_without_writing(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    await new_contact(ws, full_name="Known", emails=["known@example.com"])
    content = (b"name,email\nA,a@example.com\nB,known@example.com\nC,a@example.com\n"
               b"D,broken@\n")
    job = await import_file(ws, sessions, content, dry_run=True)
    assert job["state"] == "done" and job["dry_run"]
    assert (job["created"], job["skipped"], job["failed"]) == (1, 2, 1)
    assert job["errors"][0]["row"] == 5
    assert await lookup(ws, email="a@example.com") is None


async def test_update_strategy_fills_the_existing_card(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    card = await new_contact(ws, full_name="Anna", emails=["anna@example.com"])
    content = b"email,phone,source\nANNA@example.com,+79120000001,fair\n"
    job = await import_file(ws, sessions, content, on_duplicate="update")
    assert (job["created"], job["updated"]) == (0, 1)
    anna = await lookup(ws, email="anna@example.com")
    assert anna is not None and anna["id"] == card["id"]
    assert anna["source"] == "fair" and anna["phones"][0]["e164"] == "+79120000001"
    history = (await ws.get(f"/api/v1/contacts/{card['id']}/history")).json()["data"]
    assert history[-1]["type"] == "contact.updated"


async def test_a_killed_worker_resumes_without_creating_a_row_twice(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    lines = ["name,phone"] + [f"Client {i},+7912100{i:04d}" for i in range(7)]
    response = await upload(ws, "\n".join(lines).encode())
    import_id = response.json()["id"]
    state = await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(import_id), batch_rows=3,
                             stop_after_batches=1)
    assert state == "running"
    midway = (await ws.get(f"/api/v1/imports/{import_id}")).json()
    assert (midway["processed"], midway["created"], midway["total"]) == (3, 3, 7)

    assert await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(import_id),
                            batch_rows=3) == "done"
    job = (await ws.get(f"/api/v1/imports/{import_id}")).json()
    assert (job["processed"], job["created"], job["skipped"]) == (7, 7, 0)
    listed = (await ws.get("/api/v1/contacts", params={"q": "Client", "limit": 50})).json()
    assert len(listed["data"]) == 7


async def test_the_worker_job_runs_queued_imports(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    response = await upload(ws, b"name,email\nQueued,queued@example.com\n")
    assert response.json()["state"] == "queued"
    assert await run_queued_imports({"sessions": sessions}) >= 1
    job = (await ws.get(f"/api/v1/imports/{response.json()['id']}")).json()
    assert job["state"] == "done" and job["created"] == 1


async def test_cancel_then_undo_removes_what_the_import_created(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    lines = ["name,email,company"] + [f"U{i},u{i}@example.com,Undo Co" for i in range(4)]
    response = await upload(ws, "\n".join(lines).encode())
    import_id = response.json()["id"]
    await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(import_id), batch_rows=2,
                     stop_after_batches=1)
    canceled = await ws.post(f"/api/v1/imports/{import_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(import_id)) == "canceled"
    assert canceled.json()["created"] == 2, canceled.json()

    undone = await ws.post(f"/api/v1/imports/{import_id}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["state"] == "undone"
    assert await lookup(ws, email="u0@example.com") is None
    companies = (await ws.get("/api/v1/companies", params={"name": "Undo Co"})).json()
    assert companies["data"] == []
    # The emails are free again: a new card may take them.
    await new_contact(ws, full_name="Again", emails=["u0@example.com"])
    again = await ws.post(f"/api/v1/imports/{import_id}/cancel")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


async def test_a_silent_import_emits_no_events_and_records_its_id(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    loud = await import_file(ws, sessions, b"name,email\nLoud,loud@example.com\n")
    quiet = await import_file(ws, sessions, b"name,email\nQuiet,quiet@example.com\n",
                              silent=True)
    loud_card = await lookup(ws, email="loud@example.com")
    quiet_card = await lookup(ws, email="quiet@example.com")
    assert loud_card and quiet_card
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        events = dict((await session.execute(
            select(Event.entity_id, func.count()).where(Event.type == "contact.created")
            .group_by(Event.entity_id))).tuples().all())
        records = dict((await session.execute(select(ImportRecord.entity_id,
                                                     ImportRecord.import_id))).tuples().all())
    assert events.get(uuid.UUID(loud_card["id"])) == 1
    assert uuid.UUID(quiet_card["id"]) not in events
    assert str(records[uuid.UUID(loud_card["id"])]) == loud["id"]
    assert str(records[uuid.UUID(quiet_card["id"])]) == quiet["id"]
    history = (await ws.get(f"/api/v1/contacts/{loud_card['id']}/history")).json()["data"]
    assert history[0]["type"] == "contact.created"
    assert history[0]["after"]["full_name"] == "Loud"


async def test_a_silent_import_of_cards_writes_no_event_for_the_companies_it_creates(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    job = await import_file(ws, sessions, b"name,email,company\nHush,hush@example.com,Hush Co\n",
                            silent=True)
    assert job["created"] == 1, job
    company = (await ws.get("/api/v1/companies", params={"name": "Hush Co"})).json()["data"]
    assert len(company) == 1
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        types = (await session.execute(select(Event.type).where(
            Event.entity_id == uuid.UUID(company[0]["id"])))).scalars().all()
    assert types == []


async def test_companies_import_with_dedupe_by_name(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    await ws.post("/api/v1/companies", json={"name": "Existing LLC"})
    content = "Название,Сайт,Телефон\nExisting LLC,existing.ru,\nНовая,new.ru,+7 495 000 00 01\n"
    job = await import_file(ws, sessions, content.encode(), object="companies")
    assert job["mapping"] == {"Название": "name", "Сайт": "domain", "Телефон": "phone"}
    assert (job["created"], job["skipped"]) == (1, 1), job
    names = {c["name"] for c in (await ws.get("/api/v1/companies")).json()["data"]}
    assert {"Existing LLC", "Новая"} <= names


async def test_imports_of_another_workspace_are_not_found(
        ws: Workspace, other_ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    job = await import_file(ws, sessions, b"name\nMine\n")
    for method, path in [("get", ""), ("get", "/rejected"), ("post", "/cancel"),
                         ("post", "/undo")]:
        response = await getattr(other_ws, method)(f"/api/v1/imports/{job['id']}{path}")
        assert response.status_code == 404, (path, response.text)
    assert (await other_ws.get("/api/v1/imports")).json()["data"] == []


async def test_bad_uploads_are_clear_problems(ws: Workspace, app: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"
    cases = [
        (await upload(ws, png, "photo.png", "image/png"), 415),
        (await upload(ws, b"PK\x03\x04garbage", "book.xlsx"), 415),
        (await upload(ws, b"name,phone\nA,1\n", mapping={"name": "favourite_colour"}), 422),
        (await upload(ws, b"name,phone\nA,1\n", mapping={"nope": "full_name"}), 422),
        (await upload(ws, b"name,phone\nA,1\n", on_duplicate="merge"), 422),
        (await upload(ws, b""), 422),
        (await upload(ws, b"colour,size\nred,XL\n"), 422),
        (await ws.post("/api/v1/imports", data={"options": "{}"}), 415),
        (await ws.post("/api/v1/imports", files={"attachment": ("a.csv", b"name\nA\n")}), 422),
        (await ws.post("/api/v1/imports", files={"file": ("a.csv", b"name\nA\n")},
                       data={"options": "{not json"}), 422),
        (await ws.post("/api/v1/imports", json={"file": "x"}), 415),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
    assert cases[2][0].json()["errors"][0]["loc"] == ["body", "options", "mapping", "name"]

    monkeypatch.setattr(app.state.resources.settings, "import_max_bytes", 100)
    too_large = await upload(ws, b"name\n" + b"A\n" * 100_000)
    assert too_large.status_code == 413 and too_large.headers["content-type"] == PROBLEM


async def test_agents_may_not_import(ws: Workspace) -> None:
    agent = await act_as(ws, await new_user(ws, "agent"))
    response = await upload(agent, b"name\nA\n")
    assert response.status_code == 403


def test_split_names_and_dates_are_pure() -> None:
    from app.domain.imports.rows import _date, _split_name
    from app.domain.imports.schemas import Transform

    assert _split_name("Иванов Иван Иванович", "last_first") == {
        "last_name": "Иванов", "first_name": "Иван", "middle_name": "Иванович"}
    assert _split_name("Nguyễn Văn An", "first_last") == {
        "first_name": "Nguyễn", "middle_name": "Văn", "last_name": "An"}
    assert _date("03/12/2026", Transform(date_format="%m/%d/%Y")) == date(2026, 3, 12)


async def test_rows_prepared_in_worker_processes_land_the_same(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.domain.imports import runner

    monkeypatch.setattr(runner, "PARALLEL_FROM_ROWS", 0)
    lines = ["ФИО,Телефон,Email"] + [f"Клиент {i},+7 912 200-{i:02d}-00,c{i}@example.ru"
                                     for i in range(25)] + ["Дубль,+7 912 200-00-00,",
                                                            "Плохой,12,"]
    response = await upload(ws, "\n".join(lines).encode())
    import_id = response.json()["id"]
    assert await run_import(sessions, uuid.UUID(ws.id), uuid.UUID(import_id),
                            batch_rows=10) == "done"
    job = (await ws.get(f"/api/v1/imports/{import_id}")).json()
    assert (job["created"], job["skipped"], job["failed"]) == (25, 1, 1)
    assert (await lookup(ws, email="c24@example.ru"))["full_name"] == "Клиент 24"  # type: ignore
