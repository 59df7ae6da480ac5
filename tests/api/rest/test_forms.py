"""Website form definitions through /api/v1/forms: what an admin configures, and every
mistake refused with a 422 that names the faulty part."""

from __future__ import annotations

from typing import Any

from tests.api.rest.conftest import act_as, assert_problem, error_locs, new_custom_field, new_user
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace
from tests.workers.test_rules_worker import default_stages

FIELDS = [
    {"name": "name", "label": "Your name", "type": "text", "required": True,
     "maps_to": "contact.full_name"},
    {"name": "phone", "label": "Phone", "type": "phone", "required": True,
     "maps_to": "contact.phone"},
    {"name": "wish", "label": "What would you like?", "type": "textarea"},
]


async def new_form(ws: Workspace, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/forms", json={"name": "Order", "fields": FIELDS, **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_form_is_created_with_a_random_public_key_and_its_urls(ws: Workspace) -> None:
    stages = await default_stages(ws)
    response = await ws.post("/api/v1/forms", json={
        "name": "Window order", "fields": FIELDS, "pipeline_id": stages["pipeline_id"],
        "allowed_origins": ["https://Okna.example:443/", "http://localhost:8080"],
        "success_message": "Спасибо! Мы перезвоним."})
    assert response.status_code == 201, response.text
    form = response.json()
    assert response.headers["location"] == f"/api/v1/forms/{form['id']}"
    assert response.headers["etag"] == '"1"'
    assert form["form_key"].startswith("frm_") and form["id"] not in form["form_key"]
    assert len(form["form_key"]) >= 24
    # A pipeline alone: its deals start in its first open stage.
    assert form["stage_id"] == stages["New request"]
    assert form["allowed_origins"] == ["https://okna.example", "http://localhost:8080"]
    assert form["owner"] == {"strategy": "none"}
    assert form["submit_url"] == f"/api/v1/forms/{form['form_key']}/submissions"
    assert form["embed_url"] == f"/api/v1/forms/{form['form_key']}/embed.js"
    assert form["honeypot_field"] == "website" and form["honeypot_count"] == 0
    assert form["enabled"] is True and form["source"] == "website"
    other = await new_form(ws)
    assert other["form_key"] != form["form_key"]

    got = await ws.get(f"/api/v1/forms/{form['id']}")
    assert got.status_code == 200 and got.json() == form
    listed = (await ws.get("/api/v1/forms", params={"name": "Window order"})).json()["data"]
    assert [f["id"] for f in listed] == [form["id"]]


async def test_mapping_to_custom_fields_is_checked_against_the_definitions(
        ws: Workspace) -> None:
    await new_custom_field(ws, "windows", "number")
    await new_custom_field(ws, "budget", "money", object_type="deal")
    stages = await default_stages(ws)
    form = await new_form(ws, stage_id=stages["New request"], fields=[*FIELDS, {
        "name": "windows", "label": "How many windows", "maps_to": "contact.custom.windows"}, {
        "name": "budget", "label": "Budget", "maps_to": "deal.custom.budget"}])
    assert [f.get("maps_to") for f in form["fields"]][-2:] == [
        "contact.custom.windows", "deal.custom.budget"]

    unknown = await ws.post("/api/v1/forms", json={"name": "x", "fields": [*FIELDS, {
        "name": "colour", "label": "Colour", "maps_to": "contact.custom.colour"}]})
    assert_problem(unknown, 422)
    assert error_locs(unknown) == [["body", "fields", 3, "maps_to"]]
    assert "no contact custom field 'colour'" in unknown.json()["errors"][0]["msg"]
    # A deal's custom field is not a contact's.
    wrong_object = await ws.post("/api/v1/forms", json={"name": "x", "fields": [*FIELDS, {
        "name": "budget", "label": "Budget", "maps_to": "contact.custom.budget"}]})
    assert error_locs(wrong_object) == [["body", "fields", 3, "maps_to"]]


async def test_bad_definitions_are_refused_naming_the_part(ws: Workspace) -> None:
    stages = await default_stages(ws)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"fields": [*FIELDS, {"name": "x", "label": "X", "maps_to": "contact.shoe_size"}]},
         ["body", "fields", 3, "maps_to"]),
        ({"fields": [*FIELDS, {"name": "x", "label": "X", "maps_to": "company.name"}]},
         ["body", "fields", 3, "maps_to"]),
        ({"fields": [FIELDS[0], {"name": "phone", "label": "P", "type": "checkbox",
                                 "maps_to": "contact.phone"}]}, ["body", "fields", 1, "type"]),
        ({"fields": [*FIELDS, {"name": "phone", "label": "Again"}]},
         ["body", "fields", 3, "name"]),
        ({"fields": [*FIELDS, {"name": "second", "label": "P2", "maps_to": "contact.phone"}]},
         ["body", "fields", 3, "maps_to"]),
        ({"fields": [*FIELDS, {"name": "utm_source", "label": "Source"}]},
         ["body", "fields", 3, "name"]),
        ({"fields": [*FIELDS, {"name": "website", "label": "Site"}]},
         ["body", "fields", 3, "name"]),
        ({"fields": [FIELDS[0], FIELDS[2]]}, ["body", "fields"]),
        ({"fields": [*FIELDS, {"name": "t", "label": "Title", "maps_to": "deal.title"}]},
         ["body", "fields", 3, "maps_to"]),  # no pipeline: nothing takes deal.title
        ({"fields": [*FIELDS, {"name": "kind", "label": "Kind", "type": "select"}]},
         ["body", "fields", 3]),
        ({"pipeline_id": "00000000-0000-7000-8000-000000000000"}, ["body", "pipeline_id"]),
        ({"stage_id": "00000000-0000-7000-8000-000000000000"}, ["body", "stage_id"]),
        ({"stage_id": stages["Won"]}, ["body", "stage_id"]),
        ({"allowed_origins": ["https://okna.example/order"]}, ["body", "allowed_origins", 0]),
        ({"allowed_origins": ["ftp://okna.example"]}, ["body", "allowed_origins", 0]),
        ({"allowed_origins": ["https://*.okna.example"]}, ["body", "allowed_origins", 0]),
        ({"allowed_origins": ["okna.example", "https://ok.example"]},
         ["body", "allowed_origins", 0]),
        ({"redirect_url": "javascript:alert(1)"}, ["body", "redirect_url"]),
        ({"owner": {"strategy": "user", "user_id": "00000000-0000-7000-8000-000000000000"}},
         ["body", "owner", "user_id"]),
        ({"owner": {"strategy": "round_robin",
                    "team_id": "00000000-0000-7000-8000-000000000000"}},
         ["body", "owner", "team_id"]),
        ({"form_key": "frm_mine"}, ["body", "form_key"]),
        ({"workspace_id": ws.id}, ["body", "workspace_id"]),
    ]
    for extra, loc in cases:
        response = await ws.post("/api/v1/forms", json={"name": "Bad", "fields": FIELDS,
                                                        **extra})
        assert_problem(response, 422)
        assert loc in [e[:len(loc)] for e in error_locs(response)], (extra, response.text)
    assert (await ws.get("/api/v1/forms", params={"name": "Bad"})).json()["data"] == []


async def test_update_moves_the_target_and_replaces_fields(ws: Workspace) -> None:
    stages = await default_stages(ws)
    form = await new_form(ws)
    assert form["pipeline_id"] is None and form["stage_id"] is None
    response = await ws.patch(f"/api/v1/forms/{form['id']}", json={
        "stage_id": stages["Measurement"], "enabled": False,
        "fields": [*FIELDS, {"name": "title", "label": "Order", "maps_to": "deal.title"}]},
        headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["pipeline_id"], body["stage_id"]) == (stages["pipeline_id"],
                                                       stages["Measurement"])
    assert body["enabled"] is False and body["version"] == 2 and len(body["fields"]) == 4
    stale = await ws.patch(f"/api/v1/forms/{form['id']}", json={"name": "x"},
                           headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    # Without a pipeline, deal fields have nothing to fill.
    orphan = await ws.patch(f"/api/v1/forms/{form['id']}", json={"pipeline_id": None})
    assert error_locs(orphan) == [["body", "fields", 3, "maps_to"]]
    assert_problem(await ws.patch(f"/api/v1/forms/{form['id']}", json={"fields": None}), 422)
    history = (await ws.get(f"/api/v1/forms/{form['id']}/history")).json()["data"]
    assert [e["type"] for e in history] == ["form.created", "form.updated"]


async def test_rotating_the_key_retires_the_old_one(ws: Workspace) -> None:
    form = await new_form(ws)
    rotated = (await ws.post(f"/api/v1/forms/{form['id']}/rotate-key")).json()
    assert rotated["form_key"] != form["form_key"] and rotated["version"] == 2
    old = await ws.client.get(f"/api/v1/forms/{form['form_key']}/definition")
    assert_problem(old, 404)
    new = await ws.client.get(f"/api/v1/forms/{rotated['form_key']}/definition")
    assert new.status_code == 200


async def test_delete_and_restore(ws: Workspace) -> None:
    form = await new_form(ws)
    assert (await ws.delete(f"/api/v1/forms/{form['id']}")).status_code == 204
    assert_problem(await ws.get(f"/api/v1/forms/{form['id']}"), 404)
    assert_problem(await ws.client.get(f"/api/v1/forms/{form['form_key']}/embed.js"), 404)
    restored = await ws.post(f"/api/v1/forms/{form['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert (await ws.client.get(f"/api/v1/forms/{form['form_key']}/embed.js")).status_code \
        == 200


async def test_owner_strategies_name_a_user_or_a_team(ws: Workspace) -> None:
    masha = await new_user(ws, "manager", "Masha")
    sales = await new_team(ws, "Sales", None, [masha])
    fixed = await new_form(ws, owner={"strategy": "user", "user_id": masha["id"]})
    assert fixed["owner"] == {"strategy": "user", "user_id": masha["id"]}
    turns = await new_form(ws, owner={"strategy": "round_robin", "team_id": sales["id"]})
    assert turns["owner"] == {"strategy": "round_robin", "team_id": sales["id"]}


async def test_agents_read_forms_but_only_admins_write_them(ws: Workspace) -> None:
    form = await new_form(ws)
    agent = await act_as(ws, await new_user(ws, "agent", "Anna"))
    assert (await agent.get(f"/api/v1/forms/{form['id']}")).status_code == 200
    assert_problem(await agent.post("/api/v1/forms", json={"name": "x", "fields": FIELDS}), 403)
    assert_problem(await agent.patch(f"/api/v1/forms/{form['id']}", json={"name": "x"}), 403)
    assert_problem(await agent.get("/api/v1/form-submissions"), 403)


async def test_another_workspaces_form_is_not_found(ws: Workspace, other_ws: Workspace) -> None:
    form = await new_form(ws)
    for response in (await other_ws.get(f"/api/v1/forms/{form['id']}"),
                     await other_ws.patch(f"/api/v1/forms/{form['id']}", json={"name": "x"}),
                     await other_ws.delete(f"/api/v1/forms/{form['id']}"),
                     await other_ws.post(f"/api/v1/forms/{form['id']}/rotate-key"),
                     await other_ws.get(f"/api/v1/forms/{form['id']}/history")):
        assert_problem(response, 404)
    assert (await other_ws.get("/api/v1/forms")).json()["data"] == []
    # Its stage cannot be a target of the other workspace's form.
    stages = await default_stages(ws)
    foreign = await other_ws.post("/api/v1/forms", json={
        "name": "x", "fields": FIELDS, "stage_id": stages["New request"]})
    assert error_locs(foreign) == [["body", "stage_id"]]


async def test_forms_in_graphql(ws: Workspace) -> None:
    stages = await default_stages(ws)
    created = await ws.gql("""mutation($input: FormInput!) { createForm(input: $input) {
        __typename ... on Form { id name formKey stageId fields allowedOrigins submitUrl }
        ... on ValidationError { errors { loc msg } } } }""", {"input": {
        "name": "Landing", "fields": FIELDS, "pipelineId": stages["pipeline_id"],
        "allowedOrigins": ["https://okna.example"]}})
    form = created["data"]["createForm"]
    assert form["__typename"] == "Form", created
    assert form["stageId"] == stages["New request"]
    assert form["formKey"].startswith("frm_")
    assert form["allowedOrigins"] == ["https://okna.example"]

    bad = await ws.gql("""mutation($input: FormInput!) { createForm(input: $input) {
        __typename ... on ValidationError { errors { loc msg } } } }""", {"input": {
        "name": "Bad", "fields": [*FIELDS, {"name": "x", "label": "X",
                                            "maps_to": "contact.custom.nope"}]}})
    assert bad["data"]["createForm"]["__typename"] == "ValidationError"
    assert bad["data"]["createForm"]["errors"][0]["loc"] == ["input", "fields", "3", "maps_to"]

    read = await ws.gql("""query($id: ID!) { form(id: $id) { name enabled owner }
        forms(first: 10) { edges { node { id } } } }""", {"id": form["id"]})
    assert read["data"]["form"] == {"name": "Landing", "enabled": True,
                                    "owner": {"strategy": "none"}}
    assert form["id"] in [e["node"]["id"] for e in read["data"]["forms"]["edges"]]

    updated = await ws.gql("""mutation($id: ID!) { updateForm(id: $id, input: {enabled: false})
        { __typename ... on Form { enabled version } } }""", {"id": form["id"]})
    assert updated["data"]["updateForm"] == {"__typename": "Form", "enabled": False,
                                             "version": 2}
    deleted = await ws.gql("""mutation($id: ID!) { deleteForm(id: $id) {
        __typename } }""", {"id": form["id"]})
    assert deleted["data"]["deleteForm"]["__typename"] == "DeleteSuccess"
