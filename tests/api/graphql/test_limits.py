"""Query cost limits: too deep, too many aliases, too many tokens are refused unexecuted."""

from __future__ import annotations

from typing import Any

import httpx
import strawberry

from app.api.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from app.api.graphql.schema import schema as relata_schema
from tests.api.graphql.helpers import all_contact_ids, ok
from tests.conftest import Workspace


def create_many(count: int) -> str:
    return "mutation {" + " ".join(
        f'c{i}: createContact(input: {{fullName: "N{i}"}}) {{ __typename }}'
        for i in range(count)) + "}"


def messages(body: dict[str, Any]) -> str:
    return " | ".join(e["message"] for e in body.get("errors") or [])


CALLS: list[int] = []


@strawberry.type
class DeepNode:
    name: str = "n"

    @strawberry.field
    def child(self) -> DeepNode:
        CALLS.append(1)
        return DeepNode()


@strawberry.type
class DeepQuery:
    @strawberry.field
    def root(self) -> DeepNode:
        CALLS.append(1)
        return DeepNode()


async def test_too_many_aliases_are_refused_before_execution(ws: Workspace) -> None:
    body = await ws.gql(create_many(MAX_ALIASES + 1))
    assert body.get("data") is None
    assert "aliases" in messages(body)
    assert await all_contact_ids(ws) == []
    data = ok(await ws.gql(create_many(MAX_ALIASES)))
    assert len(data) == MAX_ALIASES
    assert len(await all_contact_ids(ws)) == MAX_ALIASES


async def test_too_many_tokens_are_refused_before_execution(ws: Workspace) -> None:
    tags = ", ".join(f'"t{i}"' for i in range(MAX_TOKENS))
    body = await ws.gql(f'mutation {{ createContact(input: {{fullName: "X", tags: [{tags}]}}) '
                        "{ __typename } }")
    assert body.get("data") is None
    assert "token" in messages(body).lower()
    assert await all_contact_ids(ws) == []
    # The same data through a variable is fine: variables are not tokens of the document.
    result = ok(await ws.gql("mutation($input: ContactInput!) { createContact(input: $input) "
                             "{ __typename } }",
                             {"input": {"fullName": "X", "tags": [f"t{i}" for i in range(90)]}}))
    assert result["createContact"]["__typename"] == "Contact"


async def test_too_deep_query_is_refused(ws: Workspace) -> None:
    # Nothing in today's schema nests deeper than the limit; the rule still names the depth.
    deep = "{ contacts { edges { node { company { " + "x { " * MAX_DEPTH + "y" \
        + " }" * MAX_DEPTH + " } } } } }"
    body = await ws.gql(deep)
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in messages(body)


async def test_the_configured_depth_limit_refuses_deep_valid_queries() -> None:
    """The schema's own extensions on a self-referencing type: a valid query one level too
    deep is refused and its resolvers never run; one at the limit runs."""
    CALLS.clear()
    test_schema = strawberry.Schema(query=DeepQuery,
                                    extensions=list(relata_schema.extensions))

    def query(depth: int) -> str:  # `root` is depth 0
        return "{ root { " + "child { " * (depth - 1) + "name" + " }" * (depth - 1) + " } }"

    result = await test_schema.execute(query(MAX_DEPTH + 1))
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message
    assert CALLS == []
    result = await test_schema.execute(query(MAX_DEPTH))
    assert not result.errors, result.errors
    assert len(CALLS) == MAX_DEPTH


async def test_deepest_real_query_is_within_the_limit(ws: Workspace) -> None:
    body = ok(await ws.gql("""{ contacts(first: 1) { edges { node { company {
      phones { e164 } emails { email } } } } pageInfo { endCursor } } }"""))
    assert body["contacts"]["edges"] == []


async def test_introspection_is_not_limited(ws: Workspace) -> None:
    """GraphiQL and code generators send the standard, deeply nested introspection query."""
    from graphql import get_introspection_query

    body = ok(await ws.gql(get_introspection_query()))
    names = {t["name"] for t in body["__schema"]["types"]}
    assert {"Contact", "ContactConnection", "ContactResult", "ValidationError"} <= names


async def test_malformed_documents_are_errors_not_500(ws: Workspace,
                                                      client: httpx.AsyncClient) -> None:
    body = await ws.gql("{ contacts { edges { node { id } }")
    assert "Syntax Error" in messages(body)
    body = await ws.gql("{ contacts { nope } }")
    assert "Cannot query field" in messages(body)
    body = await ws.gql("query($first: Int) { contacts(first: $first) { pageInfo { "
                        "hasNextPage } } }", {"first": "many"})
    assert body.get("errors")
    response = await client.post("/graphql", content=b"{not json", headers={
        **ws.auth, "Content-Type": "application/json"})
    assert response.status_code == 400
    response = await ws.client.get("/graphql", params={
        "query": 'mutation { createContact(input: {fullName: "via GET"}) { __typename } }'},
        headers=ws.auth)
    assert response.status_code in (400, 405)
    assert await all_contact_ids(ws) == []


async def test_unexpected_errors_are_masked(ws: Workspace, monkeypatch: Any) -> None:
    """A resolver failing on our side says so, as REST's 500 does, without SQL or
    parameters; other root fields of the request still answer."""
    from app.domain.contacts import service

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("[SQL: SELECT secret FROM contacts] [parameters: ('hunter2',)]")

    monkeypatch.setattr(service, "get_contact", broken)
    body = await ws.gql('{ contact(id: "01a20919-798c-7266-ab61-5f66fb57f241") { id } '
                        "contacts { edges { cursor } } }")
    assert body["data"] == {"contact": None, "contacts": {"edges": []}}
    [error] = body["errors"]
    assert error["message"] == "something went wrong on our side"
    assert error["path"] == ["contact"]
    assert error["extensions"] == {"status": 500, "type": "internal"}
    assert "hunter2" not in str(body)
