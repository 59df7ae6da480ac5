"""Shared GraphQL documents and helpers for the GraphQL API tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Workspace

ERRORS = """
  __typename
  ... on ValidationError { message errors { loc msg type } }
  ... on ConflictError { message existingId }
  ... on NotFoundError { message }
  ... on PreconditionFailedError { message currentVersion }
  ... on ForbiddenError { message }
"""

CONTACT_FIELDS = """
  id firstName lastName middleName fullName version status kind timezone localTime
  companyId tags customFields externalId createdAt updatedAt
  phones { e164 original label } emails { email label }
"""

COMPANY_FIELDS = """
  id name domain kind version tags externalId phones { e164 original label } emails { email }
"""

CONTACT_RESULT = f"{ERRORS} ... on Contact {{ {CONTACT_FIELDS} }}"
COMPANY_RESULT = f"{ERRORS} ... on Company {{ {COMPANY_FIELDS} }}"

CREATE_CONTACT = f"""
mutation($input: ContactInput!) {{ createContact(input: $input) {{ {CONTACT_RESULT} }} }}
"""
UPDATE_CONTACT = f"""
mutation($id: ID!, $input: ContactInput!, $version: Int) {{
  updateContact(id: $id, input: $input, version: $version) {{ {CONTACT_RESULT} }}
}}
"""
DELETE_CONTACT = f"""
mutation($id: ID!, $version: Int) {{
  deleteContact(id: $id, version: $version) {{ {ERRORS} ... on DeleteSuccess {{ id }} }}
}}
"""
MERGE_CONTACTS = f"""
mutation($id: ID!, $sourceId: ID!) {{
  mergeContacts(id: $id, sourceId: $sourceId) {{ {CONTACT_RESULT} }}
}}
"""
CREATE_COMPANY = f"""
mutation($input: CompanyInput!) {{ createCompany(input: $input) {{ {COMPANY_RESULT} }} }}
"""
UPDATE_COMPANY = f"""
mutation($id: ID!, $input: CompanyInput!, $version: Int) {{
  updateCompany(id: $id, input: $input, version: $version) {{ {COMPANY_RESULT} }}
}}
"""
DELETE_COMPANY = f"""
mutation($id: ID!, $version: Int) {{
  deleteCompany(id: $id, version: $version) {{ {ERRORS} ... on DeleteSuccess {{ id }} }}
}}
"""
GET_CONTACT = f"query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}"
GET_COMPANY = f"query($id: ID!) {{ company(id: $id) {{ {COMPANY_FIELDS} }} }}"
LIST_CONTACTS = """
query($first: Int, $after: String, $filter: JSON, $q: String, $sort: String) {
  contacts(first: $first, after: $after, filter: $filter, q: $q, sort: $sort) {
    edges { cursor node { id fullName status tags createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def ok(body: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a response that must have no GraphQL errors."""
    assert not body.get("errors"), body
    return body["data"]  # type: ignore[no-any-return]


async def mutate(ws: Workspace, document: str, field: str, **variables: Any) -> dict[str, Any]:
    """Run a mutation that must not fail at the GraphQL level; return its union result."""
    return ok(await ws.gql(document, variables))[field]  # type: ignore[no-any-return]


async def create_contact(ws: Workspace, **fields: Any) -> dict[str, Any]:
    result = await mutate(ws, CREATE_CONTACT, "createContact", input=fields)
    assert result["__typename"] == "Contact", result
    return result


async def create_company(ws: Workspace, **fields: Any) -> dict[str, Any]:
    result = await mutate(ws, CREATE_COMPANY, "createCompany", input=fields)
    assert result["__typename"] == "Company", result
    return result


async def all_contact_ids(ws: Workspace) -> list[str]:
    """Every live contact of the workspace, read over REST (an independent path)."""
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await ws.get("/api/v1/contacts", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [c["id"] for c in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


async def created_entity_ids(ws: Workspace, event_type: str) -> set[str]:
    """Entity ids of the workspace's `event_type` events. The log shows a transaction's
    events once no older transaction is open, so read it after a later request."""
    response = await ws.get("/api/v1/events", params={"limit": 200, "types": event_type})
    assert response.status_code == 200, response.text
    return {e["entity_id"] for e in response.json()["data"]}
