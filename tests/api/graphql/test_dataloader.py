"""Nested relations cost a constant number of SQL statements, however long the list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.api.graphql.helpers import ok
from tests.conftest import Workspace

QUERY = """query($first: Int!) {
  contacts(first: $first, sort: "full_name") {
    edges { node { fullName companyId company { id name } } }
  }
}"""


@contextmanager
def count_statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    engine = app.state.resources.sessions.kw["bind"].sync_engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def table_read(statement: str) -> str | None:
    """Which record table a statement reads; None for the per-request bookkeeping (the
    workspace setting, and the principal lookup when its short cache has expired)."""
    for table in ("contacts", "companies"):
        if f"FROM {table}" in statement:
            return table
    return None


async def seed(ws: Workspace, count: int) -> None:
    companies = await ws.post("/api/v1/companies/batch", json={
        "items": [{"name": f"Company {i:03}"} for i in range(count)]})
    assert companies.status_code == 200, companies.text
    ids = [r["id"] for r in companies.json()["results"]]
    contacts = await ws.post("/api/v1/contacts/batch", json={
        "items": [{"full_name": f"Person {i:03}", "company_id": ids[i]} for i in range(count)]})
    assert contacts.status_code == 200, contacts.text
    assert all(r["status"] == "created" for r in contacts.json()["results"])


async def statements_for(app: Any, ws: Workspace, first: int) -> list[str]:
    with count_statements(app) as statements:
        data = ok(await ws.gql(QUERY, {"first": first}))
    edges = data["contacts"]["edges"]
    assert len(edges) == first
    for i, edge in enumerate(edges):
        node = edge["node"]
        assert node["fullName"] == f"Person {i:03}"
        assert node["company"] == {"id": node["companyId"], "name": f"Company {i:03}"}
    return statements


async def test_company_of_each_contact_is_batched(app: Any, ws: Workspace) -> None:
    await seed(ws, 50)
    await ws.gql(QUERY, {"first": 1})  # warm the principal cache and API key bookkeeping
    few = await statements_for(app, ws, 10)
    many = await statements_for(app, ws, 50)
    # One page query, one batched company query: 10 contacts or 50. The rest is the same
    # per-request bookkeeping whatever the page size.
    reads = [[t for t in map(table_read, run) if t] for run in (few, many)]
    assert reads == [["contacts", "companies"]] * 2, many
    assert len(many) <= 6, many


async def test_shared_companies_are_loaded_once(app: Any, ws: Workspace) -> None:
    company = await ws.post("/api/v1/companies", json={"name": "Shared"})
    company_id = company.json()["id"]
    response = await ws.post("/api/v1/contacts/batch", json={
        "items": [{"full_name": f"P{i}", "company_id": company_id} for i in range(20)]
        + [{"full_name": "Loner"}]})
    assert response.status_code == 200
    await ws.gql(QUERY, {"first": 1})
    with count_statements(app) as statements:
        data = ok(await ws.gql(QUERY, {"first": 21}))
    names = [e["node"]["company"] and e["node"]["company"]["name"]
             for e in data["contacts"]["edges"]]
    assert names == [None] + ["Shared"] * 20  # "Loner" sorts first
    assert len([s for s in statements if "FROM companies" in s]) == 1
