"""Mutations: union results for success and every expected error, and nothing half-written."""

from __future__ import annotations

import uuid

from tests.api.graphql.helpers import (
    CREATE_COMPANY,
    CREATE_CONTACT,
    DELETE_COMPANY,
    DELETE_CONTACT,
    GET_COMPANY,
    GET_CONTACT,
    MERGE_CONTACTS,
    UPDATE_COMPANY,
    UPDATE_CONTACT,
    all_contact_ids,
    create_company,
    create_contact,
    created_entity_ids,
    mutate,
    ok,
)
from tests.conftest import Workspace


async def test_create_contact_returns_the_normalized_node(ws: Workspace) -> None:
    contact = await create_contact(ws, firstName="Иван", lastName="Петров",
                                   phones=[{"number": "8 (495) 123-45-67", "label": "work"}],
                                   emails=[{"email": "Ivan.Petrov@Example.COM"}],
                                   tags=["vip", "vip", " b2b "])
    assert contact["fullName"] == "Иван Петров"
    assert contact["phones"] == [{"e164": "+74951234567", "original": "8 (495) 123-45-67",
                                  "label": "work"}]
    assert contact["emails"] == [{"email": "ivan.petrov@example.com", "label": None}]
    assert contact["timezone"] == "Europe/Moscow"
    assert contact["localTime"]
    assert contact["tags"] == ["vip", "b2b"]
    assert contact["version"] == 1
    uuid.UUID(contact["id"])
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert read.pop("localTime")
    assert read == {k: v for k, v in contact.items() if k not in ("__typename", "localTime")}
    rest = await ws.get(f"/api/v1/contacts/{contact['id']}")
    assert rest.status_code == 200
    assert rest.json()["phones"][0]["e164"] == "+74951234567"


async def test_bad_phone_is_a_validation_error_naming_the_field(ws: Workspace) -> None:
    before = await all_contact_ids(ws)
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"firstName": "Bad", "phones": [{"number": "+7 495 123"}]})
    assert result["__typename"] == "ValidationError", result
    [error] = result["errors"]
    assert error["loc"] == ["input", "phones", "0"]
    assert "phone" in error["msg"]
    assert await all_contact_ids(ws) == before


async def test_schema_level_invalid_input_is_a_validation_error(ws: Workspace) -> None:
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"firstName": "x" * 201, "companyId": "not-a-uuid"})
    assert result["__typename"] == "ValidationError", result
    locs = sorted(tuple(e["loc"]) for e in result["errors"])
    assert locs == [("input", "companyId"), ("input", "firstName")]


async def test_input_errors_point_into_nested_objects(ws: Workspace) -> None:
    result = await mutate(ws, CREATE_CONTACT, "createContact", input={
        "phones": [{"number": "+74951234567"}, {"number": "+74951234568", "label": "x" * 51}],
        "address": {"planet": "Mars"}, "customFields": {"no_such_field": 1}})
    assert result["__typename"] == "ValidationError", result
    # One error per mistake, located as the client wrote it (no union branch noise).
    assert sorted(tuple(e["loc"]) for e in result["errors"]) == [
        ("input", "address", "planet"), ("input", "phones", "1", "label")]
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"customFields": {"no_such_field": 1}})
    assert [e["loc"] for e in result["errors"]] == [["input", "customFields", "no_such_field"]]
    assert await all_contact_ids(ws) == []


async def test_unknown_company_and_bad_status_are_validation_errors(ws: Workspace) -> None:
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"fullName": "A", "companyId": str(uuid.uuid4())})
    assert result["__typename"] == "ValidationError"
    assert result["errors"][0]["loc"] == ["input", "companyId"]
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"fullName": "A", "status": "no-such-status"})
    assert result["__typename"] == "ValidationError"
    assert result["errors"][0]["loc"] == ["input", "status"]


async def test_duplicate_phone_is_a_conflict_and_writes_nothing(ws: Workspace) -> None:
    first = await create_contact(ws, fullName="First", phones=[{"number": "+7 495 123-45-67"}])
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"fullName": "Second", "phones": [{"number": "84951234567"}],
                                 "emails": [{"email": "second@example.com"}]})
    assert result["__typename"] == "ConflictError", result
    assert result["existingId"] == first["id"]
    assert await all_contact_ids(ws) == [first["id"]]
    # The email of the refused card was not claimed either: a new card may take it.
    again = await create_contact(ws, fullName="Third", emails=[{"email": "second@example.com"}])
    assert again["emails"][0]["email"] == "second@example.com"
    # No event for the refused card either. (The log shows an event only once every older
    # transaction on the server has ended, so the newest events may not be listed yet.)
    assert await created_entity_ids(ws, "contact.created") <= {first["id"], again["id"]}


async def test_duplicate_on_update_keeps_the_record_unchanged(ws: Workspace) -> None:
    first = await create_contact(ws, fullName="First", phones=[{"number": "+74951234567"}])
    second = await create_contact(ws, fullName="Second", phones=[{"number": "+74951234568"}])
    result = await mutate(ws, UPDATE_CONTACT, "updateContact", id=second["id"], input={
        "fullName": "Renamed", "phones": [{"number": "+74951234567"}]})
    assert result["__typename"] == "ConflictError"
    assert result["existingId"] == first["id"]
    read = ok(await ws.gql(GET_CONTACT, {"id": second["id"]}))["contact"]
    assert read["fullName"] == "Second"
    assert read["version"] == 1
    assert [p["e164"] for p in read["phones"]] == ["+74951234568"]


async def test_duplicate_external_id_is_a_conflict(ws: Workspace) -> None:
    first = await create_contact(ws, fullName="A", externalId="ext-1")
    result = await mutate(ws, CREATE_CONTACT, "createContact",
                          input={"fullName": "B", "externalId": "ext-1"})
    assert result["__typename"] == "ConflictError", result
    assert result["existingId"] == first["id"]
    assert len(await all_contact_ids(ws)) == 1


async def test_update_contact_is_a_merge_patch_with_versions(ws: Workspace) -> None:
    contact = await create_contact(ws, firstName="Anna", lastName="Ivanova",
                                   phones=[{"number": "+74951234567"}], tags=["a"])
    updated = await mutate(ws, UPDATE_CONTACT, "updateContact", id=contact["id"], version=1,
                           input={"lastName": "Smirnova", "tags": None})
    assert updated["__typename"] == "Contact", updated
    assert updated["fullName"] == "Anna Smirnova"
    assert updated["firstName"] == "Anna"
    assert updated["phones"] == contact["phones"]
    assert updated["tags"] == []
    assert updated["version"] == 2

    stale = await mutate(ws, UPDATE_CONTACT, "updateContact", id=contact["id"], version=1,
                         input={"lastName": "Stale"})
    assert stale["__typename"] == "PreconditionFailedError", stale
    assert stale["currentVersion"] == 2
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert read["lastName"] == "Smirnova"
    assert read["version"] == 2

    # No change is no new version.
    same = await mutate(ws, UPDATE_CONTACT, "updateContact", id=contact["id"],
                        input={"lastName": "Smirnova"})
    assert same["version"] == 2


async def test_update_and_delete_of_missing_contact_are_not_found(ws: Workspace) -> None:
    for bad_id in (str(uuid.uuid4()), "not-a-uuid"):
        result = await mutate(ws, UPDATE_CONTACT, "updateContact", id=bad_id,
                              input={"firstName": "X"})
        assert result["__typename"] == "NotFoundError", result
        result = await mutate(ws, DELETE_CONTACT, "deleteContact", id=bad_id)
        assert result["__typename"] == "NotFoundError", result


async def test_delete_contact_releases_it_and_its_phone(ws: Workspace) -> None:
    contact = await create_contact(ws, fullName="Gone", phones=[{"number": "+74951234567"}])
    stale = await mutate(ws, DELETE_CONTACT, "deleteContact", id=contact["id"], version=7)
    assert stale["__typename"] == "PreconditionFailedError"
    assert stale["currentVersion"] == 1
    assert ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"] is not None

    deleted = await mutate(ws, DELETE_CONTACT, "deleteContact", id=contact["id"], version=1)
    assert deleted == {"__typename": "DeleteSuccess", "id": contact["id"]}
    assert ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"] is None
    assert (await ws.get(f"/api/v1/contacts/{contact['id']}")).status_code == 404
    again = await mutate(ws, DELETE_CONTACT, "deleteContact", id=contact["id"])
    assert again["__typename"] == "NotFoundError"
    # Soft delete released the phone; REST restore brings the card back.
    await create_contact(ws, fullName="New owner", phones=[{"number": "+74951234567"}])


async def test_merge_contacts_moves_phones_and_closes_the_source(ws: Workspace) -> None:
    target = await create_contact(ws, firstName="Олег", phones=[{"number": "+74951234567"}],
                                  tags=["a"])
    source = await create_contact(ws, firstName="Oleg", lastName="Sidorov",
                                  phones=[{"number": "+74951234568"}],
                                  emails=[{"email": "oleg@example.com"}], tags=["b"])
    merged = await mutate(ws, MERGE_CONTACTS, "mergeContacts", id=target["id"],
                          sourceId=source["id"])
    assert merged["__typename"] == "Contact", merged
    assert merged["id"] == target["id"]
    assert [p["e164"] for p in merged["phones"]] == ["+74951234567", "+74951234568"]
    assert merged["emails"][0]["email"] == "oleg@example.com"
    assert merged["lastName"] == "Sidorov"
    assert merged["tags"] == ["a", "b"]
    assert ok(await ws.gql(GET_CONTACT, {"id": source["id"]}))["contact"] is None
    assert await all_contact_ids(ws) == [target["id"]]

    itself = await mutate(ws, MERGE_CONTACTS, "mergeContacts", id=target["id"],
                          sourceId=target["id"])
    assert itself["__typename"] == "ValidationError"
    assert itself["errors"][0]["loc"] == ["sourceId"]
    missing = await mutate(ws, MERGE_CONTACTS, "mergeContacts", id=target["id"],
                           sourceId=source["id"])
    assert missing["__typename"] == "NotFoundError"


async def test_company_crud(ws: Workspace) -> None:
    company = await create_company(ws, name="  ООО   «Ромашка» ", domain="Romashka.RU",
                                   phones=[{"number": "8 495 123 45 67"}])
    assert company["name"] == "ООО «Ромашка»"
    assert company["domain"] == "romashka.ru"
    assert company["phones"][0]["e164"] == "+74951234567"
    assert company["version"] == 1

    bad = await mutate(ws, CREATE_COMPANY, "createCompany",
                       input={"name": "X", "phones": [{"number": "12"}]})
    assert bad["__typename"] == "ValidationError"
    assert bad["errors"][0]["loc"] == ["input", "phones", "0"]
    nameless = await mutate(ws, CREATE_COMPANY, "createCompany", input={"name": "   "})
    assert nameless["__typename"] == "ValidationError"
    assert nameless["errors"][0]["loc"] == ["input", "name"]

    updated = await mutate(ws, UPDATE_COMPANY, "updateCompany", id=company["id"], version=1,
                           input={"tags": ["key"], "domain": None})
    assert updated["__typename"] == "Company", updated
    assert updated["tags"] == ["key"]
    assert updated["domain"] is None
    assert updated["name"] == "ООО «Ромашка»"
    assert updated["version"] == 2
    stale = await mutate(ws, UPDATE_COMPANY, "updateCompany", id=company["id"], version=1,
                         input={"name": "Stale"})
    assert stale["__typename"] == "PreconditionFailedError"
    assert stale["currentVersion"] == 2

    stale_delete = await mutate(ws, DELETE_COMPANY, "deleteCompany", id=company["id"], version=1)
    assert stale_delete["__typename"] == "PreconditionFailedError"
    deleted = await mutate(ws, DELETE_COMPANY, "deleteCompany", id=company["id"], version=2)
    assert deleted == {"__typename": "DeleteSuccess", "id": company["id"]}
    assert ok(await ws.gql(GET_COMPANY, {"id": company["id"]}))["company"] is None
    missing = await mutate(ws, UPDATE_COMPANY, "updateCompany", id=company["id"],
                           input={"name": "Ghost"})
    assert missing["__typename"] == "NotFoundError"


async def test_failed_mutation_does_not_undo_the_earlier_one(ws: Workspace) -> None:
    """Mutations in one document run in order; each failure undoes only its own writes."""
    body = await ws.gql("""
      mutation {
        a: createContact(input: {fullName: "A", phones: [{number: "+74951234567"}]}) {
          __typename ... on Contact { id } }
        b: createContact(input: {fullName: "B", phones: [{number: "+74951234567"}]}) {
          __typename ... on ConflictError { existingId } }
        c: createContact(input: {fullName: "C", phones: [{number: "+74951234569"}]}) {
          __typename ... on Contact { id } }
      }""")
    data = ok(body)
    assert data["a"]["__typename"] == "Contact"
    assert data["b"] == {"__typename": "ConflictError", "existingId": data["a"]["id"]}
    assert data["c"]["__typename"] == "Contact"
    assert sorted(await all_contact_ids(ws)) == sorted([data["a"]["id"], data["c"]["id"]])


async def test_contact_company_relation(ws: Workspace) -> None:
    company = await create_company(ws, name="Acme")
    contact = await create_contact(ws, fullName="Worker", companyId=company["id"])
    body = ok(await ws.gql("query($id: ID!) { contact(id: $id) { companyId company { id name } } }",
                           {"id": contact["id"]}))
    assert body["contact"] == {"companyId": company["id"],
                               "company": {"id": company["id"], "name": "Acme"}}
    await mutate(ws, DELETE_COMPANY, "deleteCompany", id=company["id"])
    body = ok(await ws.gql("query($id: ID!) { contact(id: $id) { company { id } } }",
                           {"id": contact["id"]}))
    assert body["contact"]["company"] is None


async def test_duplicate_external_id_on_create_company_is_a_conflict(ws: Workspace) -> None:
    other = await create_company(ws, name="Other", externalId="c-1")
    dup = await mutate(ws, CREATE_COMPANY, "createCompany",
                       input={"name": "Second", "externalId": "c-1"})
    assert dup["__typename"] == "ConflictError", dup
    assert dup["existingId"] == other["id"]
    listed = ok(await ws.gql("{ companies { edges { node { name } } } }"))["companies"]
    assert [e["node"]["name"] for e in listed["edges"]] == ["Other"]


async def test_duplicate_external_id_on_update_company_is_a_conflict(ws: Workspace) -> None:
    other = await create_company(ws, name="Other", externalId="c-1")
    company = await create_company(ws, name="Mine")
    dup = await mutate(ws, UPDATE_COMPANY, "updateCompany", id=company["id"],
                       input={"externalId": "c-1", "name": "Renamed"})
    assert dup["__typename"] == "ConflictError", dup
    assert dup["existingId"] == other["id"]
    read = ok(await ws.gql(GET_COMPANY, {"id": company["id"]}))["company"]
    assert (read["name"], read["externalId"], read["version"]) == ("Mine", None, 1)


async def test_duplicate_external_id_on_update_contact_is_a_conflict(ws: Workspace) -> None:
    other = await create_contact(ws, fullName="Other", externalId="e-1")
    contact = await create_contact(ws, fullName="Mine")
    dup = await mutate(ws, UPDATE_CONTACT, "updateContact", id=contact["id"],
                       input={"externalId": "e-1"})
    assert dup["__typename"] == "ConflictError", dup
    assert dup["existingId"] == other["id"]
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert (read["externalId"], read["version"]) == (None, 1)


async def test_later_mutations_see_what_earlier_ones_did(ws: Workspace) -> None:
    """Mutations in one document share the request's loaders: a failed one (whose savepoint
    rollback expires what it touched) or a delete must not leave them stale."""
    company = await create_company(ws, name="Old")
    contact = await create_contact(ws, fullName="W", companyId=company["id"])
    body = await ws.gql("""mutation($ct: ID!, $co: ID!) {
      a: updateContact(id: $ct, input: {tags: ["a"]}) { ... on Contact { company { name } } }
      b: updateCompany(id: $co, input: {name: "New", kind: "bogus"}) { __typename }
      c: updateContact(id: $ct, input: {tags: ["c"]}) { ... on Contact { company { name } } }
      d: updateCompany(id: $co, input: {name: "Newer"}) { ... on Company { name } }
      e: updateContact(id: $ct, input: {tags: ["e"]}) { ... on Contact { company { name } } }
      f: deleteCompany(id: $co) { __typename }
      g: updateContact(id: $ct, input: {tags: ["g"]}) { ... on Contact { company { name } } }
    }""", {"ct": contact["id"], "co": company["id"]})
    assert ok(body) == {
        "a": {"company": {"name": "Old"}}, "b": {"__typename": "ValidationError"},
        "c": {"company": {"name": "Old"}}, "d": {"name": "Newer"},
        "e": {"company": {"name": "Newer"}}, "f": {"__typename": "DeleteSuccess"},
        "g": {"company": None}}
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert (read["tags"], read["version"]) == (["g"], 5)


async def test_failed_update_leaves_no_partial_change(ws: Workspace) -> None:
    """The service sets fields one by one and fails on a later one: nothing of it remains,
    although the request's transaction commits (other mutations in it may have succeeded)."""
    contact = await create_contact(ws, fullName="Original", tags=["t"])
    result = await mutate(ws, UPDATE_CONTACT, "updateContact", id=contact["id"],
                          input={"fullName": "Changed", "tags": [], "status": "bogus"})
    assert result["__typename"] == "ValidationError"
    assert result["errors"][0]["loc"] == ["input", "status"]
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert (read["fullName"], read["tags"], read["version"]) == ("Original", ["t"], 1)
