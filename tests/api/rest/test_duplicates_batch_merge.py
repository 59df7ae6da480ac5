"""One customer, one card: duplicates are refused, batches upsert, duplicates merge."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.rest.conftest import (
    assert_problem,
    error_locs,
    new_contact,
    stored,
)
from tests.conftest import Workspace


async def batch(ws: Workspace, items: list[Any], upsert_on: str | None = None
                ) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"items": items}
    if upsert_on:
        body["upsert_on"] = upsert_on
    response = await ws.post("/api/v1/contacts/batch", json=body)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    return results


async def count(ws: Workspace, **params: str) -> int:
    response = await ws.get("/api/v1/contacts", params={"limit": "200", **params})
    return len(response.json()["data"])


async def test_duplicate_phone_is_409_naming_existing_card(ws: Workspace) -> None:
    existing = await new_contact(ws, first_name="First", phones=["+7 (495) 123-45-67"])
    for typed in ["8 (495) 123-45-67", "+7 495 1234567", "84951234567"]:
        response = await ws.post("/api/v1/contacts", json={"first_name": "Second",
                                                           "phones": ["+7 495 7654321", typed]})
        body = assert_problem(response, 409)
        assert body["existing_id"] == existing["id"]
        assert body["field"] == "phone" and body["value"] == "+74951234567"
        assert existing["id"] in body["detail"]
        assert error_locs(response) == [["body", "phones"]]
    assert await count(ws) == 1
    free = await ws.get("/api/v1/contacts/lookup", params={"phone": "+7 495 7654321"})
    assert_problem(free, 404)


async def test_duplicate_email_in_other_case_is_409_naming_existing_card(ws: Workspace) -> None:
    existing = await new_contact(ws, emails=["ivan@example.com"])
    response = await ws.post("/api/v1/contacts", json={"emails": ["IVAN@Example.COM"]})
    body = assert_problem(response, 409)
    assert (body["existing_id"], body["field"]) == (existing["id"], "email")
    assert await count(ws) == 1


async def test_duplicate_external_id_is_409_naming_existing_card(ws: Workspace) -> None:
    existing = await new_contact(ws, external_id="1c-000123")
    response = await ws.post("/api/v1/contacts", json={"external_id": "1c-000123"})
    body = assert_problem(response, 409)
    assert (body["existing_id"], body["field"]) == (existing["id"], "external_id")
    assert await count(ws) == 1


async def test_patch_taking_another_cards_external_id_is_409_naming_it(ws: Workspace) -> None:
    holder = await new_contact(ws, external_id="1c-7")
    other = await new_contact(ws, first_name="Other", external_id="1c-8")
    response = await ws.patch(f"/api/v1/contacts/{other['id']}", json={"external_id": "1c-7"})
    body = assert_problem(response, 409)
    assert (body["existing_id"], body["field"]) == (holder["id"], "external_id")
    assert stored((await ws.get(f"/api/v1/contacts/{other['id']}")).json()) == stored(other)


async def test_patch_taking_another_cards_phone_is_409_and_changes_nothing(
        ws: Workspace) -> None:
    owner = await new_contact(ws, phones=["+7 495 1234567"])
    other = await new_contact(ws, first_name="Other", phones=["+7 495 7654321"])
    response = await ws.patch(f"/api/v1/contacts/{other['id']}", json={
        "first_name": "Changed", "phones": ["+7 495 7654321", "8 495 123 45 67"]})
    assert assert_problem(response, 409)["existing_id"] == owner["id"]
    after = (await ws.get(f"/api/v1/contacts/{other['id']}")).json()
    assert stored(after) == stored(other)
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "+74957654321"})
    assert found.json()["id"] == other["id"]


async def test_concurrent_creates_with_one_phone_make_one_card(ws: Workspace) -> None:
    responses = await asyncio.gather(*(
        ws.post("/api/v1/contacts", json={"first_name": f"Racer{i}",
                                          "phones": ["+7 495 1234567"]}) for i in range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409], [r.text for r in responses]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    for r in responses:
        if r.status_code == 409:
            assert assert_problem(r, 409)["existing_id"] == winner
    assert await count(ws) == 1


async def test_same_phone_in_another_workspace_is_not_a_duplicate(
        ws: Workspace, other_ws: Workspace) -> None:
    await new_contact(ws, phones=["+7 495 1234567"], external_id="x-1")
    await new_contact(other_ws, phones=["+7 495 1234567"], external_id="x-1")


async def test_deleted_card_frees_its_phone_and_restoring_it_then_is_409(ws: Workspace) -> None:
    old = await new_contact(ws, phones=["+7 495 1234567"])
    assert (await ws.delete(f"/api/v1/contacts/{old['id']}")).status_code == 204
    new = await new_contact(ws, phones=["84951234567"])
    response = await ws.post(f"/api/v1/contacts/{old['id']}/restore")
    assert assert_problem(response, 409)["existing_id"] == new["id"]
    assert_problem(await ws.get(f"/api/v1/contacts/{old['id']}"), 404)


async def test_batch_creates_each_item_and_reports_per_item(ws: Workspace) -> None:
    results = await batch(ws, [
        {"first_name": "A", "phones": ["+7 495 1111111"]},
        {"first_name": "B", "phones": ["not a phone"]},
        {"first_name": "C", "emails": ["c@example.com"]},
        {"first_name": "D", "status": "nonexistent"},
        {"first_name": "E", "colour": "red"},
    ])
    assert [r["status"] for r in results] == ["created", "error", "created", "error", "error"]
    assert results[1]["error"]["status"] == 422
    assert results[1]["error"]["errors"][0]["loc"] == ["body", "phones", 0]
    assert results[3]["error"]["errors"][0]["loc"] == ["body", "status"]
    assert results[4]["error"]["errors"][0]["loc"] == ["body", "colour"]
    assert all(r["id"] is None for r in results if r["status"] == "error")
    for r in results:
        if r["status"] == "created":
            assert (await ws.get(f"/api/v1/contacts/{r['id']}")).status_code == 200
            history = (await ws.get(f"/api/v1/contacts/{r['id']}/history")).json()["data"]
            assert [e["type"] for e in history] == ["contact.created"]
    assert await count(ws) == 2


async def test_a_batch_item_that_is_not_an_object_fails_alone(ws: Workspace) -> None:
    results = await batch(ws, [{"first_name": "A"}, "oops", 42, None, {"first_name": "B"}])
    assert [r["status"] for r in results] == ["created", "error", "error", "error", "created"]
    assert results[1]["error"]["status"] == 422


async def test_batch_of_1000_items_is_accepted_with_a_result_for_each(shared_ws: Workspace) -> None:
    # Items that fail validation keep this cheap: the point is the size limit.
    results = await batch(shared_ws, [{"first_name": f"Bulk{i}", "colour": "red"} for i in range(1000)])
    assert len(results) == 1000 and {r["status"] for r in results} == {"error"}
    assert {tuple(r["error"]["errors"][0]["loc"]) for r in results} == {("body", "colour")}


async def test_batch_import_of_a_hundred_cards_creates_them_all(ws: Workspace) -> None:
    results = await batch(ws, [{"first_name": f"Bulk{i:03}", "phones": [f"+7 495 {1000000 + i}"],
                                "tags": ["import"]} for i in range(100)])
    assert {r["status"] for r in results} == {"created"}
    assert len({r["id"] for r in results}) == 100
    assert await count(ws, tags__has="import") == 100
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "8 495 100-00-42"})
    assert found.json()["id"] == results[42]["id"]


async def test_batch_of_1001_items_is_422_and_creates_nothing(ws: Workspace) -> None:
    response = await ws.post("/api/v1/contacts/batch",
                             json={"items": [{"first_name": "x"}] * 1001})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "items"]]
    assert await count(ws) == 0


@pytest.mark.parametrize("body,loc", [
    ({"items": []}, ["body", "items"]),
    ({"items": [{}], "upsert_on": "name"}, ["body", "upsert_on"]),
    ({"items": [{}], "atomic": True}, ["body", "atomic"]),
    ({}, ["body", "items"]),
])
async def test_malformed_batch_is_422(shared_ws: Workspace, body: dict[str, Any],
                                      loc: list[str]) -> None:
    response = await shared_ws.post("/api/v1/contacts/batch", json=body)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_duplicates_inside_one_batch_are_reported_against_the_first(ws: Workspace) -> None:
    results = await batch(ws, [
        {"first_name": "First", "phones": ["+7 495 1234567"]},
        {"first_name": "Second", "phones": ["8 (495) 123-45-67"]},
        {"first_name": "Third", "emails": ["t@example.com"]},
        {"first_name": "Fourth", "emails": ["T@EXAMPLE.COM"]},
    ])
    assert [r["status"] for r in results] == ["created", "error", "created", "error"]
    assert results[1]["error"]["status"] == 409
    assert results[1]["error"]["existing_id"] == results[0]["id"]
    assert results[3]["error"]["existing_id"] == results[2]["id"]
    assert await count(ws) == 2


async def test_batch_upsert_on_email_updates_existing_cards(ws: Workspace) -> None:
    existing = await new_contact(ws, first_name="Ivan", emails=["ivan@example.com"],
                                 status="cold", tags=["expo"])
    same = await new_contact(ws, first_name="Same", emails=["same@example.com"], status="hot")
    results = await batch(ws, [
        {"emails": ["IVAN@example.com"], "status": "hot"},
        {"first_name": "Same", "emails": ["same@example.com"], "status": "hot"},
        {"first_name": "New", "emails": ["new@example.com"]},
    ], upsert_on="email")
    assert [r["status"] for r in results] == ["updated", "unchanged", "created"]
    assert results[0]["id"] == existing["id"] and results[1]["id"] == same["id"]
    updated = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert updated["status"] == "hot" and updated["version"] == 2
    # what the item did not mention stays
    assert updated["first_name"] == "Ivan" and updated["tags"] == ["expo"]
    assert (await ws.get(f"/api/v1/contacts/{same['id']}")).json()["version"] == 1
    assert await count(ws) == 3


async def test_batch_upsert_on_phone_matches_any_format(ws: Workspace) -> None:
    existing = await new_contact(ws, first_name="Caller", phones=["+7 495 1234567"])
    results = await batch(ws, [
        {"phones": ["8 (495) 123-45-67"], "source": "call"},
        {"first_name": "Fresh", "phones": ["+7 495 7654321"]},
        {"first_name": "No phone"},
    ], upsert_on="phone")
    assert [r["status"] for r in results] == ["updated", "created", "error"]
    assert results[0]["id"] == existing["id"]
    assert results[2]["error"]["status"] == 422
    assert results[2]["error"]["errors"][0]["loc"] == ["body", "phones"]
    card = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert card["source"] == "call" and card["first_name"] == "Caller"


async def test_batch_upsert_on_external_id(ws: Workspace) -> None:
    existing = await new_contact(ws, first_name="Old", external_id="1c-1")
    results = await batch(ws, [
        {"external_id": "1c-1", "first_name": "Renamed"},
        {"external_id": "1c-2", "first_name": "Created"},
        {"first_name": "No id"},
        {"external_id": "1c-2", "first_name": "Created"},
    ], upsert_on="external_id")
    assert [r["status"] for r in results] == ["updated", "created", "error", "unchanged"]
    assert results[0]["id"] == existing["id"] and results[3]["id"] == results[1]["id"]
    card = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert card["full_name"] == "Renamed"


async def test_batch_upsert_repeated_key_inside_one_batch_updates_the_card_just_made(
        ws: Workspace) -> None:
    results = await batch(ws, [
        {"first_name": "Lead", "emails": ["lead@example.com"], "status": "new"},
        {"emails": ["lead@example.com"], "status": "warm"},
    ], upsert_on="email")
    assert [r["status"] for r in results] == ["created", "updated"]
    assert results[0]["id"] == results[1]["id"]
    card = (await ws.get(f"/api/v1/contacts/{results[0]['id']}")).json()
    assert (card["first_name"], card["status"]) == ("Lead", "warm")


async def test_failed_upsert_item_leaves_the_existing_card_untouched(ws: Workspace) -> None:
    existing = await new_contact(ws, first_name="Ivan", emails=["ivan@example.com"])
    results = await batch(ws, [
        {"emails": ["ivan@example.com"], "first_name": "Broken", "status": "nonexistent"},
        {"emails": ["ivan@example.com"], "last_name": "Petrov"},
    ], upsert_on="email")
    assert [r["status"] for r in results] == ["error", "updated"]
    card = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert (card["first_name"], card["last_name"]) == ("Ivan", "Petrov")
    assert card["version"] == 2


async def test_batch_upsert_cannot_steal_a_phone_from_a_third_card(ws: Workspace) -> None:
    a = await new_contact(ws, emails=["a@example.com"])
    b = await new_contact(ws, phones=["+7 495 1234567"])
    results = await batch(ws, [{"emails": ["a@example.com"], "phones": ["84951234567"]}],
                          upsert_on="email")
    assert results[0]["status"] == "error"
    assert results[0]["error"]["existing_id"] == b["id"]
    assert (await ws.get(f"/api/v1/contacts/{a['id']}")).json()["phones"] == []


async def test_merge_moves_phones_emails_tags_and_fills_gaps(ws: Workspace) -> None:
    target = await new_contact(ws, first_name="Ivan", phones=["+7 495 1234567"],
                               emails=["ivan@example.com"], tags=["vip"])
    source = await new_contact(ws, first_name="Ivan P.", last_name="Petrov",
                               phones=["+7 916 765-43-21", "+7 495 1234568"],
                               emails=["ivan.work@example.com"], tags=["b2b", "vip"],
                               source="expo", birthday="1980-01-02")
    response = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                             json={"source_id": source["id"]})
    assert response.status_code == 200, response.text
    merged = response.json()
    assert response.headers["etag"] == f'"{merged["version"]}"'
    assert [p["e164"] for p in merged["phones"]] == ["+74951234567", "+79167654321",
                                                     "+74951234568"]
    assert [e["email"] for e in merged["emails"]] == ["ivan@example.com",
                                                      "ivan.work@example.com"]
    assert merged["tags"] == ["vip", "b2b"]
    assert merged["first_name"] == "Ivan"  # the target's own value wins
    assert merged["full_name"] == "Ivan Petrov"
    assert (merged["last_name"], merged["source"], merged["birthday"]) == (
        "Petrov", "expo", "1980-01-02")
    assert merged["version"] == target["version"] + 1

    assert_problem(await ws.get(f"/api/v1/contacts/{source['id']}"), 404)
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "89167654321"})
    assert found.json()["id"] == target["id"]
    found = await ws.get("/api/v1/contacts/lookup", params={"email": "ivan.work@example.com"})
    assert found.json()["id"] == target["id"]
    listed = (await ws.get("/api/v1/contacts")).json()["data"]
    assert [c["id"] for c in listed] == [target["id"]]
    assert await count(ws, q="petrov") == 1


async def test_history_of_the_merged_card_includes_the_sources_events(ws: Workspace) -> None:
    target = await new_contact(ws, first_name="Target")
    source = await new_contact(ws, first_name="Source")
    await ws.patch(f"/api/v1/contacts/{source['id']}", json={"status": "hot"})
    await ws.post(f"/api/v1/contacts/{target['id']}/merge", json={"source_id": source["id"]})
    history = (await ws.get(f"/api/v1/contacts/{target['id']}/history")).json()["data"]
    assert [(e["type"], e["entity_id"]) for e in history] == [
        ("contact.created", target["id"]),
        ("contact.created", source["id"]),
        ("contact.updated", source["id"]),
        ("contact.merged", source["id"]),
        ("contact.updated", target["id"]),
    ]
    assert history[3]["after"] == {"merged_into_id": target["id"],
                                   "moved": {"deals": 0, "tasks": 0, "activities": 0}}


async def test_history_follows_a_chain_of_merges(ws: Workspace) -> None:
    first = await new_contact(ws, first_name="First", phones=["+7 495 1111111"])
    second = await new_contact(ws, first_name="Second")
    third = await new_contact(ws, first_name="Third")
    await ws.post(f"/api/v1/contacts/{second['id']}/merge", json={"source_id": first["id"]})
    await ws.post(f"/api/v1/contacts/{third['id']}/merge", json={"source_id": second["id"]})
    history = (await ws.get(f"/api/v1/contacts/{third['id']}/history")).json()["data"]
    created = {e["entity_id"] for e in history if e["type"] == "contact.created"}
    assert created == {first["id"], second["id"], third["id"]}
    found = await ws.get("/api/v1/contacts/lookup", params={"phone": "+7 495 1111111"})
    assert found.json()["id"] == third["id"]


async def test_merge_moves_custom_fields_the_target_lacks(ws: Workspace) -> None:
    await ws.post("/api/v1/custom-fields", json={"object_type": "contact", "key": "visits",
                                                 "label": "Visits", "type": "number"})
    await ws.post("/api/v1/custom-fields", json={"object_type": "contact", "key": "nickname",
                                                 "label": "Nickname", "type": "text"})
    target = await new_contact(ws, custom_fields={"visits": 5})
    source = await new_contact(ws, custom_fields={"visits": 1, "nickname": "Vanya"})
    merged = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                           json={"source_id": source["id"]})
    assert merged.json()["custom_fields"] == {"visits": 5, "nickname": "Vanya"}


async def test_merged_source_cannot_be_restored_or_merged_again(ws: Workspace) -> None:
    target = await new_contact(ws, first_name="Target")
    source = await new_contact(ws, first_name="Source")
    await ws.post(f"/api/v1/contacts/{target['id']}/merge", json={"source_id": source["id"]})
    assert_problem(await ws.post(f"/api/v1/contacts/{source['id']}/restore"), 422)
    again = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                          json={"source_id": source["id"]})
    assert_problem(again, 404)


async def test_merge_into_itself_is_422(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Solo")
    response = await ws.post(f"/api/v1/contacts/{card['id']}/merge", json={"source_id": card["id"]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "source_id"]]
    assert (await ws.get(f"/api/v1/contacts/{card['id']}")).json()["version"] == 1


async def test_merge_body_is_strict(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Solo")
    for body in ({}, {"source_id": "nope"}, {"source_id": card["id"], "keep": "target"}):
        assert_problem(await ws.post(f"/api/v1/contacts/{card['id']}/merge", json=body), 422)


async def test_merge_moves_deals_tasks_and_activities_to_the_surviving_card(
        ws: Workspace) -> None:
    target = await new_contact(ws, full_name="Irina Petrova", phones=["+7 495 123 45 67"])
    source = await new_contact(ws, full_name="I. Petrova", emails=["irina@example.com"])
    shared = await ws.post("/api/v1/deals", json={"title": "Both", "contact_ids": [
        target["id"], source["id"]]})
    only_source = await ws.post("/api/v1/deals", json={"title": "Windows",
                                                       "contact_ids": [source["id"]]})
    task = await ws.post("/api/v1/tasks", json={"title": "Call back", "type": "call",
                                                "contact_id": source["id"]})
    note = await ws.post("/api/v1/activities", json={"type": "note", "body": "Wants PVC",
                                                     "contact_id": source["id"]})
    for response in (shared, only_source, task, note):
        assert response.status_code == 201, response.text

    merged = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                           json={"source_id": source["id"]})
    assert merged.status_code == 200, merged.text

    deals = (await ws.get("/api/v1/deals", params={"contact_id": target["id"]})).json()["data"]
    assert sorted(d["title"] for d in deals) == ["Both", "Windows"]
    both = next(d for d in deals if d["title"] == "Both")
    assert both["contact_ids"] == [target["id"]]  # listed once, not twice
    assert (await ws.get(f"/api/v1/tasks/{task.json()['id']}")).json()["contact_id"] \
        == target["id"]
    assert (await ws.get(f"/api/v1/activities/{note.json()['id']}")).json()["contact_id"] \
        == target["id"]
    history = (await ws.get(f"/api/v1/contacts/{source['id']}/history")).json()["data"]
    merge = next(e for e in history if e["type"] == "contact.merged")
    assert merge["after"]["moved"] == {"deals": 1, "tasks": 1, "activities": 1}


async def test_records_a_merge_moves_get_a_new_version_and_their_own_event(
        ws: Workspace) -> None:
    """A moved deal, task or activity changed: its ETag moves on (an If-Match on the old
    version is refused) and its history says what the link was and is."""
    target = await new_contact(ws, full_name="Irina Petrova", phones=["+7 495 123 45 67"])
    source = await new_contact(ws, full_name="I. Petrova", emails=["irina@example.com"])
    made = {
        "deal": await ws.post("/api/v1/deals", json={"title": "Windows",
                                                     "contact_ids": [source["id"]]}),
        "shared": await ws.post("/api/v1/deals", json={"title": "Both", "contact_ids": [
            source["id"], target["id"]]}),
        "task": await ws.post("/api/v1/tasks", json={"title": "Call back", "type": "call",
                                                     "contact_id": source["id"]}),
        "activity": await ws.post("/api/v1/activities", json={
            "type": "note", "body": "Wants PVC", "contact_id": source["id"]}),
    }
    assert all(r.status_code == 201 for r in made.values()), [r.text for r in made.values()]
    merged = await ws.post(f"/api/v1/contacts/{target['id']}/merge",
                           json={"source_id": source["id"]})
    assert merged.status_code == 200, merged.text

    paths = {"deal": "deals", "shared": "deals", "task": "tasks", "activity": "activities"}
    links = {"deal": ([source["id"]], [target["id"]]),
             "shared": ([source["id"], target["id"]], [target["id"]])}
    for key, response in made.items():
        old = response.json()
        path = f"/api/v1/{paths[key]}/{old['id']}"
        now = await ws.get(path)
        assert now.json()["version"] == old["version"] + 1, key
        assert now.headers["etag"] != response.headers["etag"], key
        stale = await ws.patch(path, json={"title" if key != "activity" else "body": "x"},
                               headers={"If-Match": response.headers["etag"]})
        assert_problem(stale, 412)
        history = (await ws.get(f"{path}/history")).json()["data"]
        [event] = [e for e in history if e["type"].endswith(".updated")]
        if key in links:
            assert (event["before"]["contact_ids"], event["after"]["contact_ids"]) \
                == links[key]
        else:
            assert (event["before"]["contact_id"], event["after"]["contact_id"]) \
                == (source["id"], target["id"])
        assert event["after"]["version"] == old["version"] + 1


async def test_a_batch_stores_cards_and_events_as_single_creates_do(
        ws: Workspace, settings: Any) -> None:
    """The batch writes with one INSERT per table on the driver connection, single creates
    through the ORM: the stored rows (JSON nulls, arrays, search text) and their
    `contact.created` events, payloads included, are the same."""
    from sqlalchemy import text

    from app.db import create_engine

    card = {"first_name": "Ашот", "last_name": "Մարտիրոսյան", "phones": ["8 916 123-45-67"],
            "tags": ["vip"], "custom_fields": {}, "birthday": "1990-05-01"}
    single = await new_contact(ws, **card)
    [result] = await batch(ws, [{**card, "phones": ["8 916 765-43-21"],
                                 "first_name": "Ашот2"}])
    made = result["id"]
    engine = create_engine(settings, as_app_role=False)
    volatile = ("'id','created_at','updated_at','phones','search_text','first_name',"
                "'full_name'")
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                f"select (to_jsonb(c) - array[{volatile}]) as row,"
                " (select jsonb_agg(jsonb_build_object('before', e.before is null,"
                "   'before_type', jsonb_typeof(e.before), 'type', e.type,"
                "   'changed', e.changed, 'actor', e.actor,"
                f"  'after', e.after - array[{volatile}]))"
                "  from events e where e.entity_id = c.id) as events"
                " from contacts c where c.id = any(:ids) order by c.first_name"),
                {"ids": [single["id"], made]})).all()
    finally:
        await engine.dispose()
    assert len(rows) == 2
    assert rows[0].row == rows[1].row
    assert rows[0].events == rows[1].events
