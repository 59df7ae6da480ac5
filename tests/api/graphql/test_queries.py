"""contact(id:) / contacts(...) / company / companies: Relay connections, filters, isolation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from tests.api.graphql.helpers import (
    GET_CONTACT,
    LIST_CONTACTS,
    UPDATE_CONTACT,
    create_company,
    create_contact,
    mutate,
    ok,
)
from tests.conftest import Workspace


async def batch_contacts(ws: Workspace, items: list[dict[str, Any]]) -> list[str]:
    response = await ws.post("/api/v1/contacts/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["status"] == "created" for r in results), results
    return [r["id"] for r in results]


async def page_through(ws: Workspace, first: int, **variables: Any) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        conn = ok(await ws.gql(LIST_CONTACTS, {"first": first, "after": after,
                                               **variables}))["contacts"]
        pages.append([e["node"] for e in conn["edges"]])
        assert conn["pageInfo"]["endCursor"] == (conn["edges"][-1]["cursor"]
                                                 if conn["edges"] else None)
        if not conn["pageInfo"]["hasNextPage"]:
            return pages
        after = conn["pageInfo"]["endCursor"]
        assert len(pages) < 50, "paging does not end"


async def test_contact_by_id(ws: Workspace) -> None:
    contact = await create_contact(ws, fullName="Solo")
    read = ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}))["contact"]
    assert read["id"] == contact["id"]
    assert read["fullName"] == "Solo"
    for missing in (str(uuid.uuid4()), "nonsense"):
        assert ok(await ws.gql(GET_CONTACT, {"id": missing}))["contact"] is None


async def test_paging_visits_every_contact_exactly_once(ws: Workspace) -> None:
    ids = await batch_contacts(ws, [{"full_name": f"Person {i:02}"} for i in range(23)])
    pages = await page_through(ws, 5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    seen = [c["id"] for page in pages for c in page]
    assert sorted(seen) == sorted(ids)
    assert len(set(seen)) == len(ids)
    # Newest first by default, like REST.
    created = [c["createdAt"] for page in pages for c in page]
    assert created == sorted(created, reverse=True)
    rest = await ws.get("/api/v1/contacts", params={"limit": 200})
    assert [c["id"] for c in rest.json()["data"]] == seen

    by_name = await page_through(ws, 4, sort="full_name")
    names = [c["fullName"] for page in by_name for c in page]
    assert names == [f"Person {i:02}" for i in range(23)]
    by_name_desc = await page_through(ws, 10, sort="-full_name")
    assert [c["fullName"] for page in by_name_desc for c in page] == names[::-1]


async def test_edge_cursor_continues_after_that_edge(ws: Workspace) -> None:
    await batch_contacts(ws, [{"full_name": f"P{i}"} for i in range(6)])
    conn = ok(await ws.gql(LIST_CONTACTS, {"first": 6, "sort": "full_name"}))["contacts"]
    assert [e["node"]["fullName"] for e in conn["edges"]] == [f"P{i}" for i in range(6)]
    assert conn["pageInfo"]["hasNextPage"] is False
    rest = ok(await ws.gql(LIST_CONTACTS, {"first": 2, "sort": "full_name",
                                           "after": conn["edges"][2]["cursor"]}))["contacts"]
    assert [e["node"]["fullName"] for e in rest["edges"]] == ["P3", "P4"]
    assert rest["pageInfo"]["hasNextPage"] is True


async def test_filter_with_and_or_groups(ws: Workspace) -> None:
    await batch_contacts(ws, [
        {"full_name": "Alice", "status": "hot", "tags": ["vip"]},
        {"full_name": "Bob", "status": "hot"},
        {"full_name": "Boris", "status": "cold"},
        {"full_name": "Carol", "status": "hot", "tags": ["other"]},
        {"full_name": "Dave", "status": "cold", "tags": ["vip"]},
    ])
    tree = {"and": [{"field": "status", "op": "eq", "value": "hot"},
                    {"or": [{"field": "tags", "op": "has", "value": "vip"},
                            {"field": "full_name", "op": "startswith", "value": "B"}]}]}
    conn = ok(await ws.gql(LIST_CONTACTS, {"filter": tree, "sort": "full_name"}))["contacts"]
    assert [e["node"]["fullName"] for e in conn["edges"]] == ["Alice", "Bob"]

    negated = {"not": {"field": "status", "op": "in", "value": ["hot"]}}
    conn = ok(await ws.gql(LIST_CONTACTS, {"filter": negated, "sort": "full_name"}))["contacts"]
    assert [e["node"]["fullName"] for e in conn["edges"]] == ["Boris", "Dave"]

    # The same body through REST search gives the same records.
    rest = await ws.post("/api/v1/contacts/search", json={"filter": tree, "sort": "full_name"})
    assert rest.status_code == 200, rest.text
    assert [c["full_name"] for c in rest.json()["data"]] == ["Alice", "Bob"]

    # Paging inside a filter.
    pages = await page_through(ws, 1, filter=tree, sort="full_name")
    assert [[c["fullName"] for c in p] for p in pages] == [["Alice"], ["Bob"]]


async def test_filter_on_company_and_search(ws: Workspace) -> None:
    acme = await create_company(ws, name="Acme Ltd")
    other = await create_company(ws, name="Globex")
    await create_contact(ws, fullName="Worker One", companyId=acme["id"])
    await create_contact(ws, fullName="Worker Two", companyId=other["id"])
    conn = ok(await ws.gql(LIST_CONTACTS, {
        "filter": {"field": "company.name", "op": "contains", "value": "acme"}}))["contacts"]
    assert [e["node"]["fullName"] for e in conn["edges"]] == ["Worker One"]
    conn = ok(await ws.gql(LIST_CONTACTS, {"q": "globex"}))["contacts"]
    assert [e["node"]["fullName"] for e in conn["edges"]] == ["Worker Two"]


async def test_bad_list_arguments_are_graphql_errors_with_status(ws: Workspace) -> None:
    body = await ws.gql(LIST_CONTACTS, {"first": 201})
    assert body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["contacts"]
    assert error["extensions"]["status"] == 422
    assert error["extensions"]["errors"][0]["loc"] == ["first"]
    body = await ws.gql(LIST_CONTACTS, {"first": 0})
    assert body["errors"][0]["extensions"]["status"] == 422
    ok(await ws.gql(LIST_CONTACTS, {"first": 200}))

    cases = [
        ({"filter": {"field": "nope", "op": "eq", "value": 1}}, ["filter"]),
        ({"filter": {"field": "status", "op": "like", "value": 1}}, ["filter"]),
        ({"filter": {"and": [{"field": "created_at", "op": "gt", "value": "yesterday"}]}},
         ["filter", "and", "0"]),
        ({"filter": [1, 2]}, ["filter"]),
        ({"sort": "phones"}, ["sort"]),
        ({"after": "garbage"}, ["after"]),
    ]
    for variables, loc in cases:
        body = await ws.gql(LIST_CONTACTS, variables)
        assert body["data"] is None, variables
        [error] = body["errors"]
        assert error["extensions"]["status"] == 422, (variables, error)
        assert error["extensions"]["errors"][0]["loc"] == loc, (variables, error)

    body = await ws.gql("{ companies(first: 1000) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["status"] == 422

    undefined = await ws.gql(LIST_CONTACTS, {"filter": {
        "field": "custom_fields.no_such_key", "op": "eq", "value": 1}})
    [error] = undefined["errors"]
    assert error["extensions"]["status"] == 422 and "'no_such_key'" in error["message"]


async def test_companies_connection(ws: Workspace) -> None:
    for name in ("Beta", "Alpha", "Gamma"):
        await create_company(ws, name=name, tags=["t"] if name != "Beta" else [])
    query = """query($after: String, $filter: JSON) {
      companies(first: 2, after: $after, sort: "name", filter: $filter) {
        edges { node { name } } pageInfo { hasNextPage endCursor } } }"""
    first = ok(await ws.gql(query))["companies"]
    assert [e["node"]["name"] for e in first["edges"]] == ["Alpha", "Beta"]
    second = ok(await ws.gql(query, {"after": first["pageInfo"]["endCursor"]}))["companies"]
    assert [e["node"]["name"] for e in second["edges"]] == ["Gamma"]
    assert second["pageInfo"]["hasNextPage"] is False
    tagged = ok(await ws.gql(query, {"filter": {"field": "tags", "op": "has",
                                                "value": "t"}}))["companies"]
    assert [e["node"]["name"] for e in tagged["edges"]] == ["Alpha", "Gamma"]


async def test_several_root_fields_in_one_request(ws: Workspace) -> None:
    """Root query fields resolve concurrently; they share one database session."""
    a = await create_contact(ws, fullName="A")
    b = await create_contact(ws, fullName="B")
    company = await create_company(ws, name="Co")
    body = ok(await ws.gql("""query($a: ID!, $b: ID!, $c: ID!) {
      x: contact(id: $a) { fullName } y: contact(id: $b) { fullName }
      z: company(id: $c) { name } all: contacts(first: 5) { edges { node { id } } }
      cs: companies { edges { node { name } } } }""",
                           {"a": a["id"], "b": b["id"], "c": company["id"]}))
    assert body["x"] == {"fullName": "A"}
    assert body["y"] == {"fullName": "B"}
    assert body["z"] == {"name": "Co"}
    assert len(body["all"]["edges"]) == 2
    assert body["cs"]["edges"] == [{"node": {"name": "Co"}}]


# Isolation -------------------------------------------------------------------------------

async def test_other_workspace_records_are_invisible(ws: Workspace, other_ws: Workspace) -> None:
    theirs = await create_contact(other_ws, fullName="Secret", phones=[{"number": "+74951234567"}])
    their_company = await create_company(other_ws, name="Secret Co")
    assert ok(await ws.gql(GET_CONTACT, {"id": theirs["id"]}))["contact"] is None
    assert ok(await ws.gql("query($id: ID!) { company(id: $id) { name } }",
                           {"id": their_company["id"]}))["company"] is None
    updated = await mutate(ws, UPDATE_CONTACT, "updateContact", id=theirs["id"],
                           input={"fullName": "Hacked"})
    assert updated["__typename"] == "NotFoundError"
    deleted = ok(await ws.gql("mutation($id: ID!) { deleteContact(id: $id) { __typename } }",
                              {"id": theirs["id"]}))["deleteContact"]
    assert deleted["__typename"] == "NotFoundError"
    merged = ok(await ws.gql("""mutation($id: ID!, $src: ID!) {
      mergeContacts(id: $id, sourceId: $src) { __typename } }""", {
        "id": (await create_contact(ws, fullName="Mine"))["id"], "src": theirs["id"]}))
    assert merged["mergeContacts"]["__typename"] == "NotFoundError"
    company_update = ok(await ws.gql("""mutation($id: ID!) {
      updateCompany(id: $id, input: {name: "Hacked"}) { __typename } }""",
                                     {"id": their_company["id"]}))["updateCompany"]
    assert company_update["__typename"] == "NotFoundError"
    # Linking to another workspace's company is refused like a missing one.
    linked = await mutate(ws, """mutation($input: ContactInput!) {
      createContact(input: $input) { __typename } }""", "createContact",
                          input={"fullName": "Link", "companyId": their_company["id"]})
    assert linked["__typename"] == "ValidationError"
    # Their phone is no conflict here: identities are per workspace.
    await create_contact(ws, fullName="Same phone", phones=[{"number": "+74951234567"}])
    listed = ok(await ws.gql(LIST_CONTACTS, {"first": 200}))["contacts"]
    assert theirs["id"] not in {e["node"]["id"] for e in listed["edges"]}
    assert ok(await ws.gql(LIST_CONTACTS, {"q": "secret"}))["contacts"]["edges"] == []
    # And theirs is untouched.
    read = ok(await other_ws.gql(GET_CONTACT, {"id": theirs["id"]}))["contact"]
    assert (read["fullName"], read["version"]) == ("Secret", 1)


async def test_unauthenticated_requests_are_refused(client: httpx.AsyncClient) -> None:
    query = {"query": "{ contacts { edges { node { id } } } }"}
    response = await client.post("/graphql", json=query)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    response = await client.post("/graphql", json=query,
                                 headers={"Authorization": "Bearer rlk_not_a_real_key"})
    assert response.status_code == 401
    response = await client.post("/graphql", json=query,
                                 headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    response = await client.get("/graphql", params=query)
    assert response.status_code == 401


async def test_graphiql_page_needs_no_token_but_its_queries_do(
        client: httpx.AsyncClient, settings: Any) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    query = await client.get("/graphql", params={"query": "{ contacts { pageInfo { "
                                                 "hasNextPage } } }"},
                             headers={"Accept": "text/html"})
    assert query.status_code == 401

    from app.main import create_app

    production = create_app(settings.model_copy(update={"env": "production",
                                                        "secret_key": "s" * 64}))
    async with LifespanManager(production), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=production), base_url="http://relata.test") as c:
        page = await c.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404


async def user_token(ws: Workspace, role: str) -> tuple[str, str]:
    """A new user of `role` in the workspace: (user id, access token)."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = await ws.post("/api/v1/users", json={"email": email, "role": role,
                                                "password": "agent password 1"})
    assert user.status_code == 201, user.text
    token = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": email, "password": "agent password 1"})
    assert token.status_code == 200, token.text
    return user.json()["id"], token.json()["access_token"]


async def test_agent_sees_only_own_cards(ws: Workspace) -> None:
    """Record visibility applies through GraphQL as through REST: an agent's token shows
    the agent's own cards only, and the others are 'not found', not forbidden."""
    agent_id, token = await user_token(ws, "agent")
    theirs = await create_contact(ws, fullName="Owned by the admin key (unowned)")
    mine = ok(await ws.gql("""mutation { createContact(input: {fullName: "Agent's"}) {
      __typename ... on Contact { id ownerId } } }""", token=token))["createContact"]
    assert mine["ownerId"] == agent_id
    assert ok(await ws.gql(GET_CONTACT, {"id": theirs["id"]}, token=token))["contact"] is None
    listed = ok(await ws.gql(LIST_CONTACTS, token=token))["contacts"]["edges"]
    assert [e["node"]["id"] for e in listed] == [mine["id"]]
    refused = ok(await ws.gql(UPDATE_CONTACT.replace("$version: Int", "$version: Int = null"),
                              {"id": theirs["id"], "input": {"fullName": "Mine now"}},
                              token=token))["updateContact"]
    assert refused["__typename"] == "NotFoundError"
    # The API key sees both.
    listed = ok(await ws.gql(LIST_CONTACTS))["contacts"]["edges"]
    assert {e["node"]["id"] for e in listed} == {mine["id"], theirs["id"]}


async def test_read_only_api_key_reads_but_may_not_write(ws: Workspace) -> None:
    contact = await create_contact(ws, fullName="Read me")
    key = await ws.post("/api/v1/api-keys", json={"name": "reporting", "scope": "read"})
    assert key.status_code == 201, key.text
    token = key.json()["key"]
    assert ok(await ws.gql(GET_CONTACT, {"id": contact["id"]}, token=token))["contact"]
    result = ok(await ws.gql("""mutation($id: ID!) {
      a: createContact(input: {fullName: "No"}) { __typename ... on ForbiddenError { message } }
      b: deleteContact(id: $id) { __typename }
      c: createCompany(input: {name: "No"}) { __typename } }""", {"id": contact["id"]},
                             token=token))
    assert result["a"]["__typename"] == "ForbiddenError"
    assert result["b"]["__typename"] == "ForbiddenError"
    assert result["c"]["__typename"] == "ForbiddenError"
    listed = ok(await ws.gql(LIST_CONTACTS))["contacts"]["edges"]
    assert [e["node"]["id"] for e in listed] == [contact["id"]]
