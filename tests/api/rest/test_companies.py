"""Companies: the organisations contacts belong to."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.rest.conftest import (
    all_pages,
    assert_problem,
    error_locs,
    new_company,
    new_contact,
)
from tests.conftest import Workspace


async def company_names(ws: Workspace, **params: Any) -> list[str]:
    response = await ws.get("/api/v1/companies", params=params)
    assert response.status_code == 200, response.text
    return sorted(c["name"] for c in response.json()["data"])


async def test_create_read_update_delete_restore(ws: Workspace) -> None:
    created = await ws.post("/api/v1/companies", json={
        "name": "  Okna   Plus ", "domain": " Okna.Example ", "phones": ["8 (495) 123-45-67"],
        "emails": ["Info@Okna.Example"], "address": {"city": "Moscow"}, "kind": "supplier",
        "tags": ["windows"], "external_id": "1c-9", "owner_id": ws.owner_id})
    assert created.status_code == 201, created.text
    company = created.json()
    assert created.headers["location"] == f"/api/v1/companies/{company['id']}"
    assert created.headers["etag"] == '"1"'
    assert company["name"] == "Okna Plus" and company["domain"] == "okna.example"
    assert company["phones"] == [{"e164": "+74951234567", "original": "8 (495) 123-45-67",
                                  "label": None}]
    assert company["emails"] == [{"email": "info@okna.example", "label": None}]
    assert (company["kind"], company["tags"], company["owner_id"]) == (
        "supplier", ["windows"], ws.owner_id)

    url = f"/api/v1/companies/{company['id']}"
    read = await ws.get(url)
    assert read.json() == company and read.headers["etag"] == '"1"'

    patched = await ws.patch(url, json={"domain": None, "tags": ["windows", "doors"]},
                             headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["domain"] is None and patched.json()["tags"] == ["windows", "doors"]
    assert patched.json()["name"] == "Okna Plus" and patched.json()["version"] == 2
    assert_problem(await ws.patch(url, json={"name": "Stale"}, headers={"If-Match": '"1"'}), 412)

    assert (await ws.delete(url)).status_code == 204
    assert_problem(await ws.get(url), 404)
    assert await company_names(ws) == []
    assert await company_names(ws, include_deleted="true") == ["Okna Plus"]
    restored = await ws.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert await company_names(ws) == ["Okna Plus"]

    history = (await ws.get(f"{url}/history")).json()["data"]
    assert [e["type"] for e in history] == ["company.created", "company.updated",
                                            "company.deleted", "company.restored"]
    assert history[1]["before"]["domain"] == "okna.example" and history[1]["after"]["domain"] \
        is None


@pytest.mark.parametrize("body,loc", [
    ({}, ["body", "name"]),
    ({"name": ""}, ["body", "name"]),
    ({"name": "   "}, ["body", "name"]),
    ({"name": "Acme", "kind": "competitor"}, ["body", "kind"]),
    ({"name": "Acme", "phones": ["12"]}, ["body", "phones", 0]),
    ({"name": "Acme", "emails": ["nope"]}, ["body", "emails", 0]),
    ({"name": "Acme", "id": "0190b6a2-0000-7000-8000-000000000000"}, ["body", "id"]),
    ({"name": "Acme", "workspace_id": "0190b6a2-0000-7000-8000-000000000000"},
     ["body", "workspace_id"]),
    ({"name": "Acme", "version": 3}, ["body", "version"]),
    ({"name": "Acme", "custom_fields": {"nope": 1}}, ["body", "custom_fields", "nope"]),
    ({"name": "Acme", "owner_id": "0190b6a2-0000-7000-8000-000000000000"}, ["body", "owner_id"]),
])
async def test_invalid_company_is_422_naming_the_field(shared_ws: Workspace, body: dict[str, Any],
                                                       loc: list[Any]) -> None:
    response = await shared_ws.post("/api/v1/companies", json=body)
    assert_problem(response, 422)
    assert error_locs(response) == [loc]
    assert await company_names(shared_ws) == []


async def test_a_company_name_cannot_be_cleared(ws: Workspace) -> None:
    company = await new_company(ws, name="Acme")
    response = await ws.patch(f"/api/v1/companies/{company['id']}", json={"name": None})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "name"]]


async def test_duplicate_external_id_is_409_naming_the_company(ws: Workspace) -> None:
    existing = await new_company(ws, name="Acme", external_id="1c-1")
    response = await ws.post("/api/v1/companies", json={"name": "Other", "external_id": "1c-1"})
    body = assert_problem(response, 409)
    assert (body["existing_id"], body["field"]) == (existing["id"], "external_id")
    other = await new_company(ws, name="Other", external_id="1c-2")
    patched = await ws.patch(f"/api/v1/companies/{other['id']}", json={"external_id": "1c-1"})
    assert assert_problem(patched, 409)["existing_id"] == existing["id"]
    assert (await ws.get(f"/api/v1/companies/{other['id']}")).json()["external_id"] == "1c-2"


async def test_list_filters_search_and_sort(ws: Workspace) -> None:
    await new_company(ws, name="Okna Plus", domain="okna.example", kind="supplier",
                      tags=["windows"], phones=["+7 495 1234567"])
    await new_company(ws, name="Dveri Mira", kind="partner", tags=["doors"],
                      emails=["hello@dveri.example"])
    await new_company(ws, name="Ёлка и Ко", tags=["windows", "trees"])
    assert await company_names(ws, kind="supplier") == ["Okna Plus"]
    assert await company_names(ws, kind__in="supplier,partner") == ["Dveri Mira", "Okna Plus"]
    assert await company_names(ws, tags__has="windows") == sorted(["Ёлка и Ко", "Okna Plus"])
    assert await company_names(ws, name__startswith="okna") == ["Okna Plus"]
    assert await company_names(ws, domain__isnull="false") == ["Okna Plus"]
    assert await company_names(ws, q="елка") == ["Ёлка и Ко"]
    assert await company_names(ws, q="OKNA.EXAMPLE") == ["Okna Plus"]
    assert await company_names(ws, q="dveri.example") == ["Dveri Mira"]
    assert await company_names(ws, q="74951234567") == ["Okna Plus"]
    by_name = await all_pages(ws, "/api/v1/companies", sort="name", limit=2)
    assert [c["name"] for c in by_name[:2]] == ["Dveri Mira", "Okna Plus"]
    assert len(by_name) == 3
    search = await ws.post("/api/v1/companies/search", json={"filter": {"or": [
        {"field": "kind", "op": "eq", "value": "partner"},
        {"field": "tags", "op": "has", "value": "trees"}]}})
    assert sorted(c["name"] for c in search.json()["data"]) == sorted(["Dveri Mira",
                                                                      "Ёлка и Ко"])


@pytest.mark.parametrize("params", [{"colour": "red"}, {"limit": "500"}, {"sort": "domain"},
                                    {"created_at__gte": "soon"}])
async def test_bad_company_list_parameters_are_422(shared_ws: Workspace,
                                                   params: dict[str, str]) -> None:
    assert_problem(await shared_ws.get("/api/v1/companies", params=params), 422)


async def test_contacts_filter_by_their_companys_fields(ws: Workspace) -> None:
    okna = await new_company(ws, name="Okna Plus", kind="supplier", domain="okna.example")
    dveri = await new_company(ws, name="Dveri Mira", kind="partner")
    await new_contact(ws, full_name="Window Guy", company_id=okna["id"])
    await new_contact(ws, full_name="Door Guy", company_id=dveri["id"])
    await new_contact(ws, full_name="Freelancer")

    async def contacts(**params: str) -> list[str]:
        response = await ws.get("/api/v1/contacts", params=params)
        assert response.status_code == 200, response.text
        return sorted(c["full_name"] for c in response.json()["data"])

    assert await contacts(**{"company.kind__in": "supplier,partner"}) == ["Door Guy",
                                                                          "Window Guy"]
    assert await contacts(**{"company.domain": "okna.example"}) == ["Window Guy"]
    assert await contacts(**{"company.name__startswith": "dveri"}) == ["Door Guy"]
    assert await contacts(q="dveri") == ["Door Guy"]
    await ws.delete(f"/api/v1/companies/{dveri['id']}")
    assert await contacts(**{"company.kind": "partner"}) == []


async def test_company_batch_upserts_on_external_id(ws: Workspace) -> None:
    existing = await new_company(ws, name="Old name", external_id="1c-1")
    response = await ws.post("/api/v1/companies/batch", json={"upsert_on": "external_id",
                                                              "items": [
        {"name": "New name", "external_id": "1c-1"},
        {"name": "Fresh", "external_id": "1c-2"},
        {"name": "", "external_id": "1c-3"},
        {"name": "Fresh", "external_id": "1c-2"},
    ]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["updated", "created", "error", "unchanged"]
    assert results[0]["id"] == existing["id"]
    assert (await ws.get(f"/api/v1/companies/{existing['id']}")).json()["name"] == "New name"


async def test_company_batch_upsert_on_email_is_refused_up_front(ws: Workspace) -> None:
    response = await ws.post("/api/v1/companies/batch", json={
        "upsert_on": "email", "items": [{"name": "A", "emails": ["a@example.com"]}]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "upsert_on"]]
    assert await company_names(ws) == []


async def test_company_kind_follows_the_workspace_list(ws: Workspace) -> None:
    await ws.patch("/api/v1/workspaces/current", json={"settings": {
        "company_kinds": ["client", "vendor"]}})
    assert (await new_company(ws, name="Default"))["kind"] == "client"
    assert (await new_company(ws, name="Vendor", kind="vendor"))["kind"] == "vendor"
    assert_problem(await ws.post("/api/v1/companies", json={"name": "X", "kind": "supplier"}),
                   422)
