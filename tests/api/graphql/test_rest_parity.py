"""GraphQL and REST are adapters over the same services: same normalization, same search,
same conflicts and versions, whichever side wrote the record."""

from __future__ import annotations

import unicodedata

from tests.api.graphql.helpers import (
    CREATE_CONTACT,
    GET_CONTACT,
    LIST_CONTACTS,
    UPDATE_CONTACT,
    create_company,
    create_contact,
    mutate,
    ok,
)
from tests.conftest import Workspace


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def test_names_are_nfc_and_whitespace_collapsed(ws: Workspace) -> None:
    decomposed = unicodedata.normalize("NFD", "José")
    assert decomposed != "José"
    contact = await create_contact(ws, firstName=f"  {decomposed} ", lastName="Ёлкин   Мл.")
    assert contact["firstName"] == "José"
    assert unicodedata.is_normalized("NFC", contact["fullName"])
    assert contact["fullName"] == "José Ёлкин Мл."
    rest = (await ws.get(f"/api/v1/contacts/{contact['id']}")).json()
    assert rest["first_name"] == "José"
    assert rest["full_name"] == contact["fullName"]


async def test_same_record_either_way(ws: Workspace) -> None:
    company = await create_company(ws, name="Acme")
    body = {"first_name": "Пётр", "last_name": "Ильин", "phones": ["+7 (916) 555-12-34"],
            "emails": ["Petr@Example.com"], "tags": ["a"], "company_id": company["id"],
            "source": "web", "birthday": "1990-05-01", "utm": {"utm_source": "ya"},
            "address": {"city": "Москва"}, "external_id": "crm-1"}
    via_rest = await ws.post("/api/v1/contacts", json=body)
    assert via_rest.status_code == 201, via_rest.text
    rest = via_rest.json()
    as_input = {camel(k): v for k, v in body.items() if k not in ("phones", "emails")}
    gql = await create_contact(ws, **{**as_input, "externalId": "crm-2",
                                      "phones": [{"number": "+7 (916) 555-12-35"}],
                                      "emails": [{"email": "Petr2@Example.com"}]})
    read = ok(await ws.gql("""query($id: ID!) { contact(id: $id) {
      firstName lastName fullName phones { e164 original label } emails { email label }
      tags companyId source birthday utm address externalId timezone status kind version
      ownerId } }""", {"id": rest["id"]}))["contact"]
    for field, value in read.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in field)
        assert rest[snake] == value, field
    assert read["phones"] == [{"e164": "+79165551234", "original": "+7 (916) 555-12-34",
                               "label": None}]
    assert read["emails"][0]["email"] == "petr@example.com"
    for same in ("fullName", "tags", "companyId", "source", "birthday", "utm", "address",
                 "timezone", "status", "kind", "version", "ownerId"):
        assert gql.get(same, read[same]) == read[same], same
    assert gql["phones"][0]["e164"] == "+79165551235"


async def test_search_is_accent_and_format_insensitive_like_rest(ws: Workspace) -> None:
    renee = await create_contact(ws, fullName="Renée Zoë Núñez",
                                 phones=[{"number": "8 (495) 123-45-67"}])
    yolkin = await create_contact(ws, fullName="Ёлкин Пётр", emails=[{"email": "YO@mail.ru"}])
    company = await create_company(ws, name="Łódź Café")
    worker = await create_contact(ws, fullName="Worker", companyId=company["id"])
    cases = {"renee": [renee], "ZOE nunez": [renee], "RENÉE": [renee], "елкин": [yolkin],
             "петр": [yolkin], "yo@mail": [yolkin], "+7 495 123 45 67": [renee],
             "84951234567": [renee], "4951234567": [renee], "lodz cafe": [worker],
             "nobody": [], "100%": [], "_": []}
    for q, expected in cases.items():
        conn = ok(await ws.gql(LIST_CONTACTS, {"q": q}))["contacts"]
        found = {e["node"]["id"] for e in conn["edges"]}
        assert found == {c["id"] for c in expected}, q
        rest = await ws.get("/api/v1/contacts", params={"q": q})
        assert {c["id"] for c in rest.json()["data"]} == found, q
    companies = ok(await ws.gql('{ companies(q: "LODZ") { edges { node { id } } } }'))
    assert [e["node"]["id"] for e in companies["companies"]["edges"]] == [company["id"]]
    too_long = await ws.gql(LIST_CONTACTS, {"q": "x" * 201})
    assert too_long["errors"][0]["extensions"]["status"] == 422


async def test_conflicts_and_versions_cross_the_adapters(ws: Workspace) -> None:
    via_rest = await ws.post("/api/v1/contacts", json={"full_name": "R",
                                                       "phones": ["+7 916 555-12-34"]})
    rest_id = via_rest.json()["id"]
    clash = await mutate(ws, CREATE_CONTACT, "createContact",
                         input={"fullName": "G", "phones": [{"number": "89165551234"}]})
    assert clash["__typename"] == "ConflictError"
    assert clash["existingId"] == rest_id

    gql = await create_contact(ws, fullName="G", emails=[{"email": "g@example.com"}])
    response = await ws.post("/api/v1/contacts", json={"full_name": "R2",
                                                       "emails": ["G@EXAMPLE.COM"]})
    assert response.status_code == 409
    assert response.json()["existing_id"] == gql["id"]

    updated = await mutate(ws, UPDATE_CONTACT, "updateContact", id=rest_id,
                           input={"tags": ["x"]}, version=1)
    assert updated["version"] == 2
    read = await ws.get(f"/api/v1/contacts/{rest_id}")
    assert read.headers["etag"] == '"2"'
    stale = await ws.patch(f"/api/v1/contacts/{rest_id}", json={"tags": []},
                           headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    fresh = await ws.patch(f"/api/v1/contacts/{rest_id}", json={"tags": []},
                           headers={"If-Match": '"2"'})
    assert fresh.status_code == 200
    stale_gql = await mutate(ws, UPDATE_CONTACT, "updateContact", id=rest_id,
                             input={"tags": ["y"]}, version=2)
    assert stale_gql["__typename"] == "PreconditionFailedError"
    assert stale_gql["currentVersion"] == 3
    history = await ws.get(f"/api/v1/contacts/{rest_id}/history")
    assert history.status_code == 200
    read_gql = ok(await ws.gql(GET_CONTACT, {"id": rest_id}))["contact"]
    assert (read_gql["tags"], read_gql["version"]) == ([], 3)
