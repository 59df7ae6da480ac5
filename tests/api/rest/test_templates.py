"""Templates: CRUD for admins, checks on save, previews with a card's variables, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.rest.conftest import (
    act_as,
    assert_problem,
    error_locs,
    new_contact,
    new_user,
)
from tests.api.rest.test_pipelines import new_deal
from tests.conftest import Workspace

GREETING = {"kind": "email", "name": "Measurement booked",
            "subject": "{{ contact.first_name }}, your measurement",
            "body": "Hello {{ contact.first_name }}! {{ owner.full_name or 'We' }} will call."}


async def new_template(ws: Workspace, **fields: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/templates", json={**GREETING, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_read_update_delete_restore(ws: Workspace) -> None:
    created = await ws.post("/api/v1/templates", json=GREETING)
    assert created.status_code == 201, created.text
    template = created.json()
    assert created.headers["location"] == f"/api/v1/templates/{template['id']}"
    assert created.headers["etag"] == '"1"'
    assert (template["kind"], template["name"], template["format"]) == (
        "email", "Measurement booked", None)
    read = await ws.get(f"/api/v1/templates/{template['id']}")
    assert read.json() == template

    stale = await ws.patch(f"/api/v1/templates/{template['id']}", json={"name": "x"},
                           headers={"If-Match": '"7"'})
    assert_problem(stale, 412)
    patched = await ws.patch(f"/api/v1/templates/{template['id']}",
                             json={"body": "Hi {{ contact.first_name }}"},
                             headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["body"] == "Hi {{ contact.first_name }}"
    assert patched.headers["etag"] == '"2"'

    listed = await ws.get("/api/v1/templates", params={"kind": "email"})
    assert [t["id"] for t in listed.json()["data"]] == [template["id"]]
    assert (await ws.delete(f"/api/v1/templates/{template['id']}")).status_code == 204
    assert_problem(await ws.get(f"/api/v1/templates/{template['id']}"), 404)
    restored = await ws.post(f"/api/v1/templates/{template['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = (await ws.get(f"/api/v1/templates/{template['id']}/history")).json()["data"]
    assert [e["type"] for e in history] == ["template.created", "template.updated",
                                            "template.deleted", "template.restored"]


async def test_a_document_template_defaults_to_html(ws: Workspace) -> None:
    template = await new_template(ws, kind="document", name="Offer", subject=None,
                                  body="<h1>Offer for {{ contact.full_name }}</h1>")
    assert template["format"] == "html" and template["subject"] is None


@pytest.mark.parametrize(("fields", "loc"), [
    ({"body": "Hello {{ contact.first_name "}, ["body", "body"]),
    ({"subject": "{% if %}"}, ["body", "subject"]),
    ({"body": "{{ ''.__class__.__mro__ }}"}, ["body", "body"]),
    ({"body": "{{ cycler.__init__.__globals__ }}"}, ["body", "body"]),
    ({"kind": "sms", "subject": "Hi"}, ["body", "subject"]),
    ({"format": "html"}, ["body", "format"]),
])
async def test_a_broken_or_hostile_template_is_refused_on_save(
        shared_ws: Workspace, fields: dict[str, Any], loc: list[str]) -> None:
    response = await shared_ws.post("/api/v1/templates", json={**GREETING, **fields})
    assert_problem(response, 422)
    assert error_locs(response) == [loc]


async def test_a_hostile_patch_is_refused(ws: Workspace) -> None:
    template = await new_template(ws)
    response = await ws.patch(f"/api/v1/templates/{template['id']}",
                              json={"body": "{{ lipsum.__globals__['os'].popen('id') }}"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["type"] == "template_security"
    assert (await ws.get(f"/api/v1/templates/{template['id']}")).json()["version"] == 1


async def test_only_owners_and_admins_write_templates(ws: Workspace) -> None:
    template = await new_template(ws)
    agent = await act_as(ws, await new_user(ws, "manager"))
    assert_problem(await agent.post("/api/v1/templates", json=GREETING), 403)
    assert_problem(await agent.patch(f"/api/v1/templates/{template['id']}",
                                     json={"name": "Mine"}), 403)
    assert_problem(await agent.delete(f"/api/v1/templates/{template['id']}"), 403)
    assert (await agent.get(f"/api/v1/templates/{template['id']}")).status_code == 200
    admin = await act_as(ws, await new_user(ws, "admin"))
    assert (await admin.patch(f"/api/v1/templates/{template['id']}",
                              json={"name": "Booked"})).status_code == 200


async def test_preview_renders_with_the_cards_variables(ws: Workspace) -> None:
    template = await new_template(ws)
    owner = await new_user(ws, "manager", name="Olga Petrova")
    contact = await new_contact(ws, first_name="Ivan", last_name="Ivanov",
                                owner_id=owner["id"])
    response = await ws.post(f"/api/v1/templates/{template['id']}/preview",
                             json={"contact_id": contact["id"]})
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["subject"] == "Ivan, your measurement"
    assert preview["body"] == "Hello Ivan! Olga Petrova will call."
    assert preview["variables"]["contact"]["full_name"] == "Ivan Ivanov"


async def test_preview_of_an_unsaved_document_with_line_items(ws: Workspace) -> None:
    contact = await new_contact(ws, first_name="Anna")
    deal = await new_deal(ws, title="Balcony", contact_ids=[contact["id"]], currency="RUB",
                          line_items=[{"name": "Window", "quantity": "2",
                                       "unit_price": "15000"}])
    response = await ws.post("/api/v1/templates/preview", json={
        "kind": "document", "deal_id": deal["id"],
        "body": "{{ contact.first_name }}: {% for i in deal.line_items %}{{ i.name }} × "
                "{{ i.quantity }} = {{ i.total }}{% endfor %}; {{ deal.amount }} "
                "{{ deal.currency }}; stage {{ deal.stage.name }}"})
    assert response.status_code == 200, response.text
    assert response.json()["body"] == ("Anna: Window × 2 = 30000.00; 30000.00 RUB; "
                                       "stage New request")


async def test_preview_with_explicit_variables_and_a_runaway_template(ws: Workspace) -> None:
    response = await ws.post("/api/v1/templates/preview", json={
        "kind": "sms", "body": "Hi {{ contact.first_name }}",
        "variables": {"contact": {"first_name": "Test"}}})
    assert response.json()["body"] == "Hi Test"
    escape = await ws.post("/api/v1/templates/preview", json={
        "kind": "sms", "body": "{{ ''|attr('_' ~ '_class__') }}"})
    assert assert_problem(escape, 422)["errors"][0]["type"] == "template_security"
    huge = await ws.post("/api/v1/templates/preview", json={
        "kind": "sms", "body": "{% for i in range(100000) %}{{ 'abcdefghij' }}{% endfor %}"})
    assert assert_problem(huge, 422)["errors"][0]["loc"] == ["body", "body"]


async def test_another_workspaces_template_is_not_found(ws: Workspace,
                                                        other_ws: Workspace) -> None:
    theirs = await new_template(other_ws)
    mine = await new_contact(ws, first_name="Ivan")
    for response in (
        await ws.get(f"/api/v1/templates/{theirs['id']}"),
        await ws.patch(f"/api/v1/templates/{theirs['id']}", json={"name": "x"}),
        await ws.delete(f"/api/v1/templates/{theirs['id']}"),
        await ws.post(f"/api/v1/templates/{theirs['id']}/preview",
                      json={"contact_id": mine["id"]}),
    ):
        assert_problem(response, 404)
    their_contact = await new_contact(other_ws, first_name="Secret")
    peek = await ws.post("/api/v1/templates/preview", json={
        "kind": "sms", "body": "{{ contact.first_name }}", "contact_id": their_contact["id"]})
    assert_problem(peek, 404)
