"""S1. The customer card — one place for everything about a customer.

A beauty salon in Yekaterinburg, "Lotus", keeps its clients in Relata. Marina, one of its
client managers (an `agent` in Relata's roles), opens a card for a Moscow client who typed her
phone as `8 (495) 123-45-67`; the card resolves every other spelling of that number, shows the
client's own clock (derived from the phone, not the salon's), the salon's statuses and custom
fields, and gathers the whole history: a deal with line items, a recorded call, an email, a
note, a task completed with its outcome. Then Marina leaves. The administrator hands the card
and the deal to Pavel, who opens the card and sees everything — nothing lived in Marina's
notebook — while Dina, another agent of the same salon, sees none of it, and another company
sees nothing at all.

Everything goes through the public API (REST, and GraphQL where a frontend reads or writes
the card), on a server clock stepped minute by minute so the history has a known order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.domain.shared.clock import clock
from tests.api.graphql.helpers import ok as gql_ok
from tests.api.rest.conftest import (
    PASSWORD,
    act_as,
    all_pages,
    assert_problem,
    new_custom_field,
    new_user,
)
from tests.conftest import Workspace

# A moment in the recent past: access tokens issued in real time stay valid while the server's
# clock stands there, and every step below happens one minute after the previous one.
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)

SALON_STATUSES = ["new", "first_visit", "regular", "vip", "archived"]

CARD_QUERY = """
query($id: ID!) {
  contact(id: $id) {
    id fullName status kind ownerId timezone localTime tags customFields
    phones { e164 original label } emails { email }
  }
  timeline(recordType: CONTACT, id: $id, first: 50) {
    edges { node { kind occurredAt actor actorName summary record { type id }
                   activity { type direction callStatus durationSeconds recordingUrl } } }
    pageInfo { hasNextPage }
  }
}
"""
UPDATE_CARD = """
mutation($id: ID!, $input: ContactInput!, $version: Int) {
  updateContact(id: $id, input: $input, version: $version) {
    __typename
    ... on Contact { id tags customFields status version }
    ... on NotFoundError { message }
    ... on ValidationError { errors { loc msg } }
  }
}
"""
DEAL_QUERY = """
query($id: ID!) {
  deal(id: $id) {
    title ownerId amount currency contactIds
    lineItems { name quantity unitPrice discount taxRate total }
    stage { name }
  }
}
"""


@pytest.fixture
def at() -> Iterator[Any]:
    """`at(minutes)` sets the server's clock to T0 + minutes; thawed after the test."""
    def set_clock(minutes: float) -> datetime:
        moment = T0 + timedelta(minutes=minutes)
        clock.freeze(moment)
        return moment
    yield set_clock
    clock.freeze(None)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def body(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def timeline(who: Workspace, card_id: str) -> list[dict[str, Any]]:
    return await all_pages(who, f"/api/v1/contacts/{card_id}/timeline", limit=3)


def story(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """What a person reads on the card: what happened and who did it, newest first."""
    return [(e["kind"], e["summary"], e["actor_name"]) for e in entries]


async def test_s1_the_customer_card_outlives_its_manager(
        ws: Workspace, other_ws: Workspace, fresh_client: httpx.AsyncClient, at: Any) -> None:
    # --- The salon: Yekaterinburg clock, its own statuses, "own records only" for agents.
    salon = await body(await ws.patch("/api/v1/workspaces/current", json={
        "name": "Салон «Лотос»", "timezone": "Asia/Yekaterinburg",
        "settings": {"contact_statuses": SALON_STATUSES, "agents_see_team": False}}))
    assert salon["default_region"] == "RU"
    assert salon["settings"]["contact_statuses"] == SALON_STATUSES
    assert salon["settings"]["agents_see_team"] is False
    frequency = await new_custom_field(ws, "visit_frequency", "select",
                                       options=["weekly", "monthly", "rarely"])
    await new_custom_field(ws, "average_bill", "money")
    assert frequency["options"] == ["weekly", "monthly", "rarely"]

    elena = await new_user(ws, "admin", "Елена Соколова")
    marina = await new_user(ws, "agent", "Марина Волкова")
    pavel = await new_user(ws, "agent", "Павел Орлов")
    dina = await new_user(ws, "agent", "Дина Ахмедова")
    team = await body(await ws.post("/api/v1/teams", json={
        "name": "Администраторы", "member_ids": [marina["id"], pavel["id"], dina["id"]]}), 201)
    assert set(team["member_ids"]) == {marina["id"], pavel["id"], dina["id"]}
    as_elena = await act_as(ws, elena)
    # Marina's app resolves her token afresh on every request, so her leaving shows at once.
    as_marina = await act_as(ws, marina, client=fresh_client)
    as_pavel, as_dina = await act_as(ws, pavel), await act_as(ws, dina)

    # --- Step 1. Marina opens the card: a messy phone, the salon's status and fields, tags.
    created_at = at(0)
    card = await body(await as_marina.post("/api/v1/contacts", json={
        "first_name": "Анна", "middle_name": "Сергеевна", "last_name": "Смирнова",
        "phones": [{"number": "8 (495) 123-45-67", "label": "mobile"}],
        "emails": ["Anna.Smirnova@Example.RU"],
        "address": {"street": "ул. Тверская, 7", "city": "Москва", "country": "RU"},
        "status": "first_visit", "source": "instagram",
        "tags": ["manicure", " manicure ", "pedicure"],
        "custom_fields": {"visit_frequency": "monthly",
                          "average_bill": {"amount": "3500", "currency": "rub"}}}), 201)
    card_id = card["id"]
    assert card["full_name"] == "Анна Сергеевна Смирнова"
    assert card["phones"] == [{"e164": "+74951234567", "original": "8 (495) 123-45-67",
                               "label": "mobile"}]
    assert card["emails"] == [{"email": "anna.smirnova@example.ru", "label": None}]
    assert (card["status"], card["kind"], card["source"]) == ("first_visit", "customer",
                                                              "instagram")
    assert card["tags"] == ["manicure", "pedicure"]
    assert card["custom_fields"]["visit_frequency"] == "monthly"
    assert card["custom_fields"]["average_bill"] == {"amount": "3500", "currency": "RUB"}
    assert card["owner_id"] == marina["id"] and card["created_by"] == f"user:{marina['id']}"
    # The client's clock, not the salon's: a Moscow landline puts her in Moscow.
    assert card["timezone"] == "Europe/Moscow"
    moscow_now = created_at.astimezone(ZoneInfo("Europe/Moscow"))
    assert card["local_time"] == moscow_now.isoformat()
    assert card["local_time"].endswith("+03:00")

    # The salon's lists are enforced: no "hot" in a salon, no "daily" visits.
    refused = await as_marina.patch(f"/api/v1/contacts/{card_id}", json={"status": "hot"})
    assert assert_problem(refused, 422)["errors"][0]["loc"] == ["body", "status"]
    refused = await as_marina.patch(f"/api/v1/contacts/{card_id}",
                                    json={"custom_fields": {"visit_frequency": "daily"}})
    assert assert_problem(refused, 422)["errors"][0]["loc"] == [
        "body", "custom_fields", "visit_frequency"]

    # --- Step 2. Any spelling of the number finds the one card; a second card is refused.
    for spelling in ("+7 495 1234567", "84951234567", "+7(495)123 45 67", "495-123-4567"):
        found = await body(await as_marina.get("/api/v1/contacts/lookup",
                                               params={"phone": spelling}))
        assert found["id"] == card_id, spelling
    duplicate = await as_dina.post("/api/v1/contacts", json={
        "full_name": "Анна С.", "phones": ["+7 495 123 45 67"]})
    assert assert_problem(duplicate, 409)["existing_id"] == card_id

    # --- Step 3. After her second visit she is a regular.
    at(1)
    regular = await body(await as_marina.patch(f"/api/v1/contacts/{card_id}",
                                               json={"status": "regular"}))
    assert regular["status"] == "regular" and regular["version"] == 2

    # --- Step 4. A deal on the card, its amount computed from the line items.
    at(2)
    deal = await body(await as_marina.post("/api/v1/deals", json={
        "title": "Абонемент: маникюр и педикюр", "currency": "RUB",
        "contact_ids": [card_id], "line_items": [
            {"name": "Маникюр с покрытием", "quantity": "4", "unit_price": "1500",
             "discount": "500", "tax_rate": "20"},
            {"name": "Педикюр", "quantity": "2", "unit_price": "2000.50"}]}), 201)
    deal_id = deal["id"]
    assert [li["total"] for li in deal["line_items"]] == ["6600.00", "4001.00"]
    assert (deal["amount"], deal["currency"]) == ("10601.00", "RUB")
    assert deal["owner_id"] == marina["id"]

    # --- Step 5. The call, logged with its recording, on the card and the deal.
    at(3)
    call = await body(await as_marina.post("/api/v1/activities", json={
        "type": "call", "direction": "out", "contact_id": card_id, "deal_id": deal_id,
        "to_number": "8 (495) 123-45-67", "call_status": "answered", "duration_seconds": 185,
        "recording_url": "https://pbx.lotus.example/rec/2041.mp3"}), 201)
    assert call["to_number"] == "+74951234567" and call["owner_id"] == marina["id"]

    # --- Step 6. An email confirming the appointment.
    at(4)
    email = await body(await as_marina.post("/api/v1/activities", json={
        "type": "email", "direction": "out", "contact_id": card_id,
        "subject": "Запись на 12 марта", "body": "Анна, ждём вас 12 марта в 11:00.",
        "participants": [{"name": "Анна Смирнова", "email": "Anna.Smirnova@Example.RU"}]}), 201)
    assert email["participants"][0]["email"] == "anna.smirnova@example.ru"

    # --- Step 7. A note only the salon should know.
    at(5)
    note = await body(await as_marina.post("/api/v1/activities", json={
        "type": "note", "contact_id": card_id,
        "body": "Предпочитает мастера Ольгу, аллергия на акрил"}), 201)

    # --- Step 8. A task to call about the correction, then completed with its outcome.
    at(6)
    task = await body(await as_marina.post("/api/v1/tasks", json={
        "title": "Напомнить о коррекции", "type": "call", "contact_id": card_id,
        "deal_id": deal_id, "due_at": iso(T0 + timedelta(days=1))}), 201)
    assert task["assignee_id"] == marina["id"]
    assert task["contact_timezone"] == "Europe/Moscow"
    at(7)
    done = await body(await as_marina.post(f"/api/v1/tasks/{task['id']}/complete", json={
        "outcome": "done", "note": "Записана на коррекцию 26 марта"}))
    assert (done["status"], done["outcome"], done["completed_by"]) == (
        "done", "done", f"user:{marina['id']}")

    # --- Step 9. Marina leaves. The administrator hands her card to Pavel...
    at(8)
    handed = await body(await as_elena.patch(f"/api/v1/contacts/{card_id}",
                                             json={"owner_id": pavel["id"]}))
    assert handed["owner_id"] == pavel["id"] and handed["updated_by"] == f"user:{elena['id']}"
    gone = await body(await as_elena.patch(f"/api/v1/users/{marina['id']}",
                                           json={"is_active": False}))
    assert gone["is_active"] is False
    assert_problem(await as_marina.get(f"/api/v1/deals/{deal_id}"), 401)
    relogin = await fresh_client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": marina["email"], "password": PASSWORD})
    assert relogin.status_code == 400, relogin.text
    # ... who now opens the card, but not yet the deal: a deal is a record of its own.
    assert (await body(await as_pavel.get(f"/api/v1/contacts/{card_id}")))["id"] == card_id
    assert_problem(await as_pavel.get(f"/api/v1/deals/{deal_id}"), 404)
    assert "stage_change" not in {e["kind"] for e in await timeline(as_pavel, card_id)}
    # ... and then the deal too.
    at(9)
    deal = await body(await as_elena.patch(f"/api/v1/deals/{deal_id}",
                                           json={"owner_id": pavel["id"]}))
    assert deal["owner_id"] == pavel["id"]

    # --- Step 10. Pavel sees the card, the deal and the complete history, in time order,
    # with who did each thing (Marina's name stays on her work after she left).
    seen = await body(await as_pavel.get(f"/api/v1/contacts/{card_id}"))
    assert seen["phones"][0]["e164"] == "+74951234567"
    assert (seen["status"], seen["tags"], seen["owner_id"]) == ("regular",
                                                                ["manicure", "pedicure"],
                                                                pavel["id"])
    assert seen["custom_fields"]["visit_frequency"] == "monthly"
    assert (await body(await as_pavel.get("/api/v1/contacts/lookup",
                                          params={"phone": "+7 495 1234567"})))["id"] == card_id
    his_deal = await body(await as_pavel.get(f"/api/v1/deals/{deal_id}"))
    assert (his_deal["amount"], [li["name"] for li in his_deal["line_items"]]) == (
        "10601.00", ["Маникюр с покрытием", "Педикюр"])
    assert (await body(await as_pavel.get(f"/api/v1/activities/{call['id']}")))[
        "recording_url"] == "https://pbx.lotus.example/rec/2041.mp3"

    entries = await timeline(as_pavel, card_id)
    assert story(entries) == [
        # The reassignment names the owners by id (the payload carries them for the UI).
        ("change", f"Owner id: {marina['id']} → {pavel['id']}", "Елена Соколова"),
        ("task", "Task completed: Напомнить о коррекции (outcome: done)", "Марина Волкова"),
        ("task", "Task created: Напомнить о коррекции", "Марина Волкова"),
        ("activity", "Note: Предпочитает мастера Ольгу, аллергия на акрил", "Марина Волкова"),
        ("activity", "Email sent: Запись на 12 марта", "Марина Волкова"),
        ("activity", "Outgoing call, 3 min 5 s", "Марина Волкова"),
        ("stage_change", "Deal “Абонемент: маникюр и педикюр” created in stage New request",
         "Марина Волкова"),
        ("change", "Status: first_visit → regular", "Марина Волкова"),
        ("created", "Contact created", "Марина Волкова"),
    ]
    assert [e["occurred_at"] for e in entries] == [
        iso(T0 + timedelta(minutes=m)) for m in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
    assert [e["record"]["id"] for e in entries] == [
        card_id, task["id"], task["id"], note["id"], email["id"], call["id"], deal_id,
        card_id, card_id]
    call_entry = entries[5]["payload"]
    assert (call_entry["call_status"], call_entry["duration_seconds"],
            call_entry["recording_url"]) == ("answered", 185,
                                             "https://pbx.lotus.example/rec/2041.mp3")
    assert entries[1]["payload"]["note"] == "Записана на коррекцию 26 марта"
    assert entries[0]["payload"]["before"] == {"owner_id": marina["id"]}
    assert entries[0]["payload"]["after"] == {"owner_id": pavel["id"]}

    # The deal's own timeline: what was logged on the deal, and its handover.
    deal_story = await all_pages(as_pavel, f"/api/v1/deals/{deal_id}/timeline")
    assert story(deal_story) == [
        ("change", f"Owner id: {marina['id']} → {pavel['id']}", "Елена Соколова"),
        ("task", "Task completed: Напомнить о коррекции (outcome: done)", "Марина Волкова"),
        ("task", "Task created: Напомнить о коррекции", "Марина Волкова"),
        ("activity", "Outgoing call, 3 min 5 s", "Марина Волкова"),
        ("created", "Deal created", "Марина Волкова"),
    ]
    # Who changed what on the card, field by field.
    changes = (await body(await as_pavel.get(f"/api/v1/contacts/{card_id}/history")))["data"]
    assert [(e["type"], e["actor"]) for e in changes] == [
        ("contact.created", f"user:{marina['id']}"),
        ("contact.updated", f"user:{marina['id']}"),
        ("contact.updated", f"user:{elena['id']}")]
    assert (changes[1]["before"]["status"], changes[1]["after"]["status"]) == ("first_visit",
                                                                               "regular")
    # Search finds the card by the digits of its phone, and the deal by her name.
    found = await body(await as_pavel.get("/api/v1/contacts", params={"q": "4951234567"}))
    assert [c["id"] for c in found["data"]] == [card_id]
    found = await body(await as_pavel.get("/api/v1/deals", params={"q": "Смирнова"}))
    assert [d["id"] for d in found["data"]] == [deal_id]
    logged = await all_pages(as_pavel, "/api/v1/activities", contact_id=card_id)
    assert [a["id"] for a in logged] == [note["id"], email["id"], call["id"]]

    # The same card and history through GraphQL, as Pavel's frontend reads it.
    data = gql_ok(await as_pavel.gql(CARD_QUERY, {"id": card_id}))
    assert data["contact"]["ownerId"] == pavel["id"]
    assert data["contact"]["phones"] == [{"e164": "+74951234567",
                                          "original": "8 (495) 123-45-67", "label": "mobile"}]
    assert data["contact"]["timezone"] == "Europe/Moscow"
    assert data["contact"]["localTime"] == seen["local_time"]
    assert data["contact"]["customFields"] == seen["custom_fields"]
    nodes = [edge["node"] for edge in data["timeline"]["edges"]]
    assert [(n["kind"].lower(), n["summary"], n["actorName"]) for n in nodes] == story(entries)
    assert nodes[5]["activity"] == {"type": "call", "direction": "out",
                                    "callStatus": "answered", "durationSeconds": 185,
                                    "recordingUrl": "https://pbx.lotus.example/rec/2041.mp3"}
    gql_deal = gql_ok(await as_pavel.gql(DEAL_QUERY, {"id": deal_id}))["deal"]
    assert (gql_deal["ownerId"], gql_deal["amount"], gql_deal["contactIds"]) == (
        pavel["id"], "10601.00", [card_id])
    assert [li["total"] for li in gql_deal["lineItems"]] == ["6600.00", "4001.00"]

    # --- Step 11. Pavel carries on where Marina stopped.
    at(10)
    await body(await as_pavel.post("/api/v1/activities", json={
        "type": "note", "contact_id": card_id, "body": "Познакомились, всё в силе"}), 201)
    latest = (await timeline(as_pavel, card_id))[0]
    assert (latest["kind"], latest["actor"], latest["actor_name"]) == (
        "activity", f"user:{pavel['id']}", "Павел Орлов")
    # His frontend writes through GraphQL: she now comes weekly, and a new tag.
    at(11)
    updated = gql_ok(await as_pavel.gql(UPDATE_CARD, {
        "id": card_id, "version": seen["version"],
        "input": {"tags": ["manicure", "pedicure", "vip-candidate"],
                  "customFields": {"visit_frequency": "weekly"}}}))["updateContact"]
    assert updated["__typename"] == "Contact", updated
    assert updated["tags"] == ["manicure", "pedicure", "vip-candidate"]
    assert updated["customFields"] == {"visit_frequency": "weekly",
                                       "average_bill": {"amount": "3500", "currency": "RUB"}}
    assert updated["version"] == seen["version"] + 1
    latest = (await timeline(as_pavel, card_id))[0]
    assert (latest["summary"], latest["actor_name"]) == ("Changed custom fields, tags",
                                                         "Павел Орлов")
    assert latest["payload"]["after"]["custom_fields"]["visit_frequency"] == "weekly"

    # --- Step 12. Dina, an agent of the same team, sees none of it ("own records" salon).
    for url in (f"/api/v1/contacts/{card_id}", f"/api/v1/contacts/{card_id}/timeline",
                f"/api/v1/contacts/{card_id}/history", f"/api/v1/deals/{deal_id}",
                f"/api/v1/deals/{deal_id}/timeline", f"/api/v1/activities/{call['id']}",
                f"/api/v1/activities/{note['id']}", f"/api/v1/tasks/{task['id']}"):
        assert_problem(await as_dina.get(url), 404)
    assert_problem(await as_dina.get("/api/v1/contacts/lookup",
                                     params={"phone": "8 (495) 123-45-67"}), 404)
    assert_problem(await as_dina.patch(f"/api/v1/contacts/{card_id}",
                                       json={"status": "vip"}), 404)
    assert card_id not in {c["id"] for c in await all_pages(as_dina, "/api/v1/contacts")}
    assert await all_pages(as_dina, "/api/v1/contacts", q="4951234567") == []
    assert await all_pages(as_dina, "/api/v1/deals", q="Смирнова") == []
    assert await all_pages(as_dina, "/api/v1/activities", contact_id=card_id) == []
    assert deal_id not in {d["id"] for d in await all_pages(as_dina, "/api/v1/deals")}
    hidden = gql_ok(await as_dina.gql(CARD_QUERY, {"id": card_id}))
    assert hidden == {"contact": None, "timeline": None}
    assert gql_ok(await as_dina.gql(DEAL_QUERY, {"id": deal_id})) == {"deal": None}
    refused = gql_ok(await as_dina.gql(UPDATE_CARD, {"id": card_id,
                                                     "input": {"status": "vip"}}))
    assert refused["updateContact"] == {"__typename": "NotFoundError",
                                        "message": f"contact {card_id} not found"}

    # --- Step 13. Another company sees nothing at all: every id is as if it did not exist.
    for url in (f"/api/v1/contacts/{card_id}", f"/api/v1/contacts/{card_id}/timeline",
                f"/api/v1/deals/{deal_id}", f"/api/v1/deals/{deal_id}/timeline",
                f"/api/v1/activities/{call['id']}", f"/api/v1/tasks/{task['id']}"):
        assert_problem(await other_ws.get(url), 404)
    assert_problem(await other_ws.get("/api/v1/contacts/lookup",
                                      params={"phone": "+7 495 1234567"}), 404)
    assert gql_ok(await other_ws.gql(CARD_QUERY, {"id": card_id})) == {"contact": None,
                                                                        "timeline": None}
    assert gql_ok(await other_ws.gql(DEAL_QUERY, {"id": deal_id})) == {"deal": None}
    refused = gql_ok(await other_ws.gql(UPDATE_CARD, {"id": card_id,
                                                      "input": {"status": "vip"}}))
    assert refused["updateContact"]["__typename"] == "NotFoundError"
    # ... and the card is untouched by either attempt.
    final = await body(await as_pavel.get(f"/api/v1/contacts/{card_id}"))
    assert (final["status"], final["version"]) == ("regular", updated["version"])
