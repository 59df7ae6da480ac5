"""Pipelines and stages: the default pipeline, stage edits, reorder, archive, access."""

from __future__ import annotations

from typing import Any

from tests.api.rest.conftest import act_as, assert_problem, error_locs, new_user
from tests.conftest import Workspace

WINDOW_SHOP = ["New request", "Clarified", "Measurement", "Pricing", "Proposal", "Payment",
               "Installation", "Won", "Lost", "Archive"]


async def default_pipeline(ws: Workspace) -> dict[str, Any]:
    response = await ws.get("/api/v1/pipelines")
    assert response.status_code == 200, response.text
    [pipeline] = [p for p in response.json()["data"] if p["is_default"]]
    return pipeline  # type: ignore[no-any-return]


async def new_pipeline(ws: Workspace, name: str = "Repairs", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "stages": [
        {"name": "Lead", "probability": 10}, {"name": "Quote", "probability": 50},
        {"name": "Done", "kind": "won"}, {"name": "Dropped", "kind": "lost"}], **fields}
    response = await ws.post("/api/v1/pipelines", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def stage_id(pipeline: dict[str, Any], name: str) -> str:
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


async def new_deal(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/deals", json={"title": "Deal", **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_new_workspace_has_the_window_shop_pipeline(ws: Workspace) -> None:
    pipeline = await default_pipeline(ws)
    assert pipeline["name"] == "Sales" and pipeline["is_default"] is True
    stages = pipeline["stages"]
    assert [s["name"] for s in stages] == WINDOW_SHOP
    assert [s["position"] for s in stages] == list(range(10))
    assert [s["kind"] for s in stages] == ["open"] * 7 + ["won", "lost", "lost"]
    assert stages[0]["probability"] == 10 and stages[0]["rotting_days"] == 1
    assert stages[7]["probability"] == 100 and stages[7]["rotting_days"] is None
    assert all(s["archived"] is False and s["pipeline_id"] == pipeline["id"] for s in stages)
    one = await ws.get(f"/api/v1/pipelines/{pipeline['id']}")
    assert one.json() == pipeline and one.headers["etag"] == f'"{pipeline["version"]}"'


async def test_create_pipeline_and_move_the_default(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    created = await ws.post("/api/v1/pipelines", json={
        "name": " Service ", "is_default": True,
        "stages": [{"name": "Call"}, {"name": "Won", "kind": "won"},
                   {"name": "Lost", "kind": "lost", "probability": 5}]})
    assert created.status_code == 201, created.text
    service = created.json()
    assert created.headers["location"] == f"/api/v1/pipelines/{service['id']}"
    assert service["name"] == "Service" and service["is_default"] is True
    assert [(s["name"], s["kind"], s["probability"]) for s in service["stages"]] == [
        ("Call", "open", 0), ("Won", "won", 100), ("Lost", "lost", 5)]
    assert service["position"] > sales["position"]
    assert (await default_pipeline(ws))["id"] == service["id"]
    # A deal without a pipeline now goes to the new default's first open stage.
    deal = await new_deal(ws)
    assert (deal["pipeline_id"], deal["stage_id"]) == (service["id"], service["stages"][0]["id"])
    back = await ws.patch(f"/api/v1/pipelines/{sales['id']}", json={"is_default": True})
    assert back.status_code == 200 and back.json()["is_default"] is True
    assert (await default_pipeline(ws))["id"] == sales["id"]
    refused = await ws.patch(f"/api/v1/pipelines/{sales['id']}", json={"is_default": False})
    assert error_locs(refused) == [["body", "is_default"]]


async def test_pipeline_needs_an_open_stage_and_valid_stages(ws: Workspace) -> None:
    only_closed = await ws.post("/api/v1/pipelines", json={
        "name": "X", "stages": [{"name": "Won", "kind": "won"}]})
    assert error_locs(only_closed) == [["body", "stages"]]
    bad = await ws.post("/api/v1/pipelines", json={"name": "X", "stages": [
        {"name": "A", "probability": 101, "rotting_days": 0, "kind": "maybe"}]})
    assert sorted(map(tuple, error_locs(bad))) == [
        ("body", "stages", 0, "kind"), ("body", "stages", 0, "probability"),
        ("body", "stages", 0, "rotting_days")]
    no_stages = await ws.post("/api/v1/pipelines", json={"name": "X", "stages": []})
    assert_problem(no_stages, 422)
    unknown = await ws.post("/api/v1/pipelines", json={"name": "X", "id": "x",
                                                       "stages": [{"name": "A"}]})
    assert_problem(unknown, 422)
    assert len((await ws.get("/api/v1/pipelines")).json()["data"]) == 1


async def test_stage_add_rename_update_and_validation(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    url = f"/api/v1/pipelines/{pipeline['id']}"
    added = await ws.post(f"{url}/stages", json={"name": "Visit", "probability": 30,
                                                 "position": 1, "rotting_days": 2})
    assert added.status_code == 201, added.text
    names = [s["name"] for s in added.json()["stages"]]
    assert names == ["Lead", "Visit", "Quote", "Done", "Dropped"]
    assert [s["position"] for s in added.json()["stages"]] == [0, 1, 2, 3, 4]
    assert added.json()["version"] == pipeline["version"] + 1
    visit = stage_id(added.json(), "Visit")
    assert added.headers["location"] == f"{url}/stages/{visit}"
    one = await ws.get(added.headers["location"])
    assert one.json()["name"] == "Visit" and one.headers["etag"] == '"1"'
    renamed = await ws.patch(f"{url}/stages/{visit}", json={
        "name": "On-site visit", "probability": 35, "rotting_days": None},
        headers={"If-Match": '"1"'})
    assert renamed.status_code == 200, renamed.text
    stage = next(s for s in renamed.json()["stages"] if s["id"] == visit)
    assert (stage["name"], stage["probability"], stage["rotting_days"], stage["version"]) == (
        "On-site visit", 35, None, 2)
    stale = await ws.patch(f"{url}/stages/{visit}", json={"name": "x"},
                           headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    for body, loc in (({"probability": -1}, "probability"), ({"probability": 100.5}, "probability"),
                      ({"rotting_days": 0}, "rotting_days"), ({"kind": "closed"}, "kind"),
                      ({"name": ""}, "name"), ({"name": None}, "name"),
                      ({"position": 2}, "position")):
        response = await ws.patch(f"{url}/stages/{visit}", json=body)
        assert_problem(response, 422)
        assert error_locs(response)[0][:2] == ["body", loc], (body, response.text)
    other = await new_pipeline(ws, name="Other")
    assert_problem(await ws.patch(f"{url}/stages/{stage_id(other, 'Lead')}",
                                  json={"name": "x"}), 404)
    # Only the last open stage cannot become closed.
    lead = stage_id(pipeline, "Lead")
    await ws.patch(f"{url}/stages/{visit}", json={"kind": "won"})
    await ws.patch(f"{url}/stages/{stage_id(pipeline, 'Quote')}", json={"kind": "lost"})
    last_open = await ws.patch(f"{url}/stages/{lead}", json={"kind": "won"})
    assert error_locs(last_open) == [["body", "kind"]]


async def test_kind_cannot_change_under_deals(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    quote = stage_id(pipeline, "Quote")
    await new_deal(ws, stage_id=quote)
    response = await ws.patch(f"/api/v1/pipelines/{pipeline['id']}/stages/{quote}",
                              json={"kind": "won"})
    assert_problem(response, 409)
    assert (await ws.patch(f"/api/v1/pipelines/{pipeline['id']}/stages/{quote}",
                           json={"kind": "open", "name": "Offer"})).status_code == 200


async def test_reorder_needs_exactly_the_active_stages(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    url = f"/api/v1/pipelines/{pipeline['id']}/stages/reorder"
    ids = [s["id"] for s in pipeline["stages"]]
    for wrong in (ids[:-1], ids + [ids[0]], ids[:-1] + [stage_id(await default_pipeline(ws),
                                                                  "Won")]):
        response = await ws.post(url, json={"stage_ids": wrong})
        assert error_locs(response) == [["body", "stage_ids"]], response.text
    assert_problem(await ws.post(url, json={"stage_ids": ["nope"]}), 422)
    reordered = await ws.post(url, json={"stage_ids": [ids[1], ids[0], ids[3], ids[2]]})
    assert reordered.status_code == 200, reordered.text
    assert [s["name"] for s in reordered.json()["stages"]] == ["Quote", "Lead", "Dropped",
                                                               "Done"]
    assert [s["position"] for s in reordered.json()["stages"]] == [0, 1, 2, 3]
    stale = await ws.post(url, json={"stage_ids": ids}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412)


async def test_archived_stage_keeps_deals_and_refuses_new_ones(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    url = f"/api/v1/pipelines/{pipeline['id']}"
    lead, quote = stage_id(pipeline, "Lead"), stage_id(pipeline, "Quote")
    deal = await new_deal(ws, stage_id=quote)
    archived = await ws.post(f"{url}/stages/{quote}/archive")
    assert archived.status_code == 200, archived.text
    stages = archived.json()["stages"]
    assert [s["name"] for s in stages] == ["Lead", "Done", "Dropped", "Quote"]
    assert stages[-1]["archived"] is True and stages[-1]["archived_at"]
    # The deal stays; no new deal and no move may enter the stage.
    kept = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert kept["stage_id"] == quote
    refused = await ws.post("/api/v1/deals", json={"title": "New", "stage_id": quote})
    assert error_locs(refused) == [["body", "stage_id"]]
    other = await new_deal(ws, stage_id=lead)
    moved = await ws.post(f"/api/v1/deals/{other['id']}/move", json={"stage_id": quote})
    assert error_locs(moved) == [["body", "stage_id"]]
    # Moving out of the archived stage works.
    out = await ws.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": lead})
    assert out.status_code == 200, out.text
    # Reorder covers the active stages only; the archived one is not in it.
    active = [s["id"] for s in stages if not s["archived"]]
    assert (await ws.post(f"{url}/stages/reorder", json={"stage_ids": active})).status_code == 200
    assert_problem(await ws.post(f"{url}/stages/reorder",
                                 json={"stage_ids": [*active, quote]}), 422)
    back = await ws.post(f"{url}/stages/{quote}/unarchive")
    assert [s["name"] for s in back.json()["stages"]] == ["Lead", "Done", "Dropped", "Quote"]
    assert back.json()["stages"][-1]["archived"] is False
    assert (await ws.post("/api/v1/deals", json={"title": "Again", "stage_id": quote})
            ).status_code == 201
    # The last open stage cannot be archived.
    await ws.post(f"{url}/stages/{quote}/archive")
    last = await ws.post(f"{url}/stages/{lead}/archive")
    assert_problem(last, 422)


async def test_delete_rules_restore_and_history(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    assert_problem(await ws.delete(f"/api/v1/pipelines/{sales['id']}"), 409)
    pipeline = await new_pipeline(ws)
    url = f"/api/v1/pipelines/{pipeline['id']}"
    deal = await new_deal(ws, pipeline_id=pipeline["id"])
    assert_problem(await ws.delete(url), 409)
    assert (await ws.delete(f"/api/v1/deals/{deal['id']}")).status_code == 204
    assert_problem(await ws.delete(url, headers={"If-Match": '"99"'}), 412)
    assert (await ws.delete(url)).status_code == 204
    assert_problem(await ws.get(url), 404)
    assert [p["id"] for p in (await ws.get("/api/v1/pipelines")).json()["data"]] == [
        sales["id"]]
    # A deal cannot come back into a deleted pipeline, nor be created there.
    assert_problem(await ws.post(f"/api/v1/deals/{deal['id']}/restore"), 409)
    assert error_locs(await ws.post("/api/v1/deals", json={
        "title": "x", "pipeline_id": pipeline["id"]})) == [["body", "pipeline_id"]]
    restored = await ws.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    await ws.patch(url, json={"name": "Repairs 2"})
    await ws.patch(f"{url}/stages/{stage_id(pipeline, 'Lead')}", json={"name": "Inquiry"})
    history = (await ws.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in history] == [
        "pipeline.created", "pipeline.deleted", "pipeline.restored", "pipeline.updated",
        "stage.updated"]
    renamed = history[-1]
    assert renamed["entity_id"] == stage_id(pipeline, "Lead")
    assert set(renamed["changed"]) == {"name", "updated_at", "version"}
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("Lead", "Inquiry")


async def test_agents_read_pipelines_but_only_admins_change_them(ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    agent = await act_as(ws, await new_user(ws, "agent"))
    manager = await act_as(ws, await new_user(ws, "manager"))
    admin = await act_as(ws, await new_user(ws, "admin"))
    url = f"/api/v1/pipelines/{pipeline['id']}"
    for member in (agent, manager):
        assert (await member.get(url)).status_code == 200
        assert len((await member.get("/api/v1/pipelines")).json()["data"]) == 2
        assert (await member.get(f"{url}/board")).status_code == 200
        assert_problem(await member.post("/api/v1/pipelines", json={
            "name": "Mine", "stages": [{"name": "A"}]}), 403)
        assert_problem(await member.patch(url, json={"name": "Mine"}), 403)
        assert_problem(await member.post(f"{url}/stages", json={"name": "B"}), 403)
        assert_problem(await member.post(
            f"{url}/stages/{stage_id(pipeline, 'Lead')}/archive"), 403)
        assert_problem(await member.delete(url), 403)
    assert (await admin.patch(url, json={"name": "By admin"})).status_code == 200


async def test_read_only_key_and_other_workspace(ws: Workspace, other_ws: Workspace) -> None:
    pipeline = await new_pipeline(ws)
    key = await ws.post("/api/v1/api-keys", json={"name": "ro", "scope": "read"})
    reader = Workspace(id=ws.id, owner_id=ws.owner_id, api_key=key.json()["key"],
                       client=ws.client)
    url = f"/api/v1/pipelines/{pipeline['id']}"
    assert (await reader.get(url)).status_code == 200
    assert_problem(await reader.patch(url, json={"name": "x"}), 403)
    assert_problem(await reader.post(f"{url}/stages", json={"name": "x"}), 403)
    assert_problem(await other_ws.get(url), 404)
    assert_problem(await other_ws.patch(url, json={"name": "x"}), 404)
    assert_problem(await other_ws.get(f"{url}/board"), 404)
    assert_problem(await other_ws.post(f"{url}/stages/reorder", json={
        "stage_ids": [s["id"] for s in pipeline["stages"]]}), 404)
