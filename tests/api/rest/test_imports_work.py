"""Importing tasks and the history of calls, emails and notes from another CRM's export:
people by email, the customer by phone or email, the deal by its external id, local times,
and the rows to fix with their reasons."""

from __future__ import annotations

from typing import Any

from tests.api.rest.conftest import new_contact, new_user
from tests.api.rest.test_imports import import_file, rejected, sessions  # noqa: F401
from tests.api.rest.test_pipelines import new_deal
from tests.conftest import Workspace


async def _tasks(ws: Workspace) -> dict[str, dict[str, Any]]:
    response = await ws.get("/api/v1/tasks", params={"limit": 100, "status__in":
                                                     "open,done,canceled"})
    assert response.status_code == 200, response.text
    return {t["title"]: t for t in response.json()["data"]}


async def test_tasks_import_links_people_cards_and_deals(ws: Workspace,
                                                         sessions: Any) -> None:  # noqa: F811
    manager = await new_user(ws, "manager", "Olga Manager")
    known = await new_contact(ws, full_name="Petrov Ivan", phones=["+7 912 345 67 89"])
    await new_deal(ws, title="Windows", external_id="D-1", contact_ids=[known["id"]])
    content = (
        "Задача;Срок;Ответственный;Телефон;Email;Клиент;Сделка;Статус;Результат\n"
        f"Позвонить клиенту;10.12.2026 09:30;{manager['email']};8 (912) 345-67-89;;;D-1;open;\n"
        "Отправить КП;2026-12-11T12:00:00+04:00;;;;Новый Клиент;;done;no_answer\n"
        "Замер;11.12.2026;;;aram@example.am;Арам;;canceled;\n"
        "Без срока;завтра;;;;;;;\n"
        "Чужой;;nobody@example.com;;;;;;\n"
        "Сделки нет;;;;;;D-404;;\n"
        "Статус;;;;;;;later;\n"
    ).encode()
    job = await import_file(ws, sessions, content, name="tasks.csv", object="tasks")
    assert job["state"] == "done", job
    assert job["mapping"]["Задача"] == "title" and job["mapping"]["Срок"] == "due_at"
    assert job["mapping"]["Ответственный"] == "assignee" and job["mapping"]["Сделка"] == "deal"
    assert (job["created"], job["failed"]) == (3, 4), job["errors"]
    reasons = {r["Задача"]: r["reason"] for r in await rejected(ws, job["id"])}
    assert "due_at 'завтра' is not a date and time" in reasons["Без срока"]
    assert "nobody@example.com" in reasons["Чужой"]
    assert "no deal with external_id 'D-404'" in reasons["Сделки нет"]
    assert "status 'later'" in reasons["Статус"]

    tasks = await _tasks(ws)
    call = tasks["Позвонить клиенту"]
    # 09:30 in the workspace's zone (Europe/Moscow, UTC+3).
    assert call["due_at"] == "2026-12-10T06:30:00Z"
    assert call["assignee_id"] == manager["id"]
    assert call["contact_id"] == known["id"]  # found by the phone in another format
    assert call["deal_id"] is not None and call["status"] == "open"
    offer = tasks["Отправить КП"]
    assert (offer["status"], offer["outcome"], offer["due_at"]) == (
        "done", "no_answer", "2026-12-11T08:00:00Z")
    card = (await ws.get(f"/api/v1/contacts/{offer['contact_id']}")).json()
    assert card["full_name"] == "Новый Клиент" and card["phones"] == []
    assert tasks["Замер"]["status"] == "canceled"


async def test_activities_import_is_history_with_its_people_and_is_idempotent(
        ws: Workspace, sessions: Any) -> None:  # noqa: F811
    manager = await new_user(ws, "manager", "Olga Manager")
    content = (
        "Type,Direction,Date,Manager,Phone,Email,Contact,Subject,Text,Duration,ID\n"
        f"call,in,2026-11-02 10:15,{manager['email']},+374 91 123456,,Aram,,Wants windows,"
        "125,A-1\n"
        "email,out,2026-11-03 11:00,,+374 (91) 12-34-56,aram@example.am,,Our offer,Attached,,A-2\n"
        "note,,2026-11-04 09:00,,+374 91 123 456,,,,Called back later,,A-3\n"
        "fax,in,2026-11-05 10:00,,,,,,,,A-4\n"
        "call,in,2026-11-05 10:00,,,,,,,abc,A-5\n"
    ).encode()
    job = await import_file(ws, sessions, content, name="history.csv", object="activities")
    assert job["state"] == "done", job
    assert (job["created"], job["failed"]) == (3, 2), job
    reasons = {r["ID"]: r["reason"] for r in await rejected(ws, job["id"])}
    assert "type" in reasons["A-4"] and "duration_seconds 'abc'" in reasons["A-5"]

    card = (await ws.get("/api/v1/contacts/lookup", params={"phone": "+37491123456"})).json()
    assert card["full_name"] == "Aram"
    timeline = (await ws.get(f"/api/v1/contacts/{card['id']}/timeline")).json()["data"]
    activities = [e for e in timeline if e["kind"] == "activity"]
    assert len(activities) == 3  # the phone, in any format, found the card the call made
    call = (await ws.get("/api/v1/activities", params={"contact_id": card["id"],
                                                      "type": "call"})).json()["data"][0]
    assert (call["direction"], call["duration_seconds"], call["owner_id"]) == (
        "in", 125, manager["id"])
    assert call["occurred_at"] == "2026-11-02T07:15:00Z"  # 10:15 in Moscow

    again = await import_file(ws, sessions, content, name="history.csv", object="activities")
    assert (again["created"], again["skipped"]) == (0, 3), again
    undone = await ws.post(f"/api/v1/imports/{job['id']}/undo")
    assert undone.status_code == 200, undone.text
    left = (await ws.get("/api/v1/activities", params={"contact_id": card["id"]})).json()
    assert left["data"] == []
