"""GraphQL rules: the same rule language and checks as REST, union errors, dry-run, runs."""

from __future__ import annotations

from tests.api.rest.conftest import new_contact
from tests.api.rest.test_rules import HOT_CONTACT_RULE
from tests.conftest import Workspace
from tests.workers.harness import Automation

CREATE = """mutation($input: RuleInput!) { createRule(input: $input) {
  __typename ... on Rule { id name enabled trigger conditions actions version }
  ... on ValidationError { message errors { loc msg } }
  ... on ForbiddenError { message } } }"""
DRY_RUN = """mutation($id: ID!, $entityId: ID!) {
  dryRunRule(id: $id, entityType: "contact", entityId: $entityId) {
    __typename ... on RuleDryRun { matched explanation actions }
    ... on NotFoundError { message } } }"""
RUNS = """query($id: ID!) { rule(id: $id) { name runs(first: 5) {
  edges { node { status eventType explanation actions } } pageInfo { hasNextPage } } } }"""


async def test_create_dry_run_and_read_runs(ws: Workspace, auto: Automation) -> None:
    created = (await ws.gql(CREATE, {"input": HOT_CONTACT_RULE}))["data"]["createRule"]
    assert created["__typename"] == "Rule", created
    assert created["trigger"] == {"type": "record_created", "object": "contact"}
    rest = (await ws.get(f"/api/v1/rules/{created['id']}")).json()
    assert rest["actions"] == created["actions"], "one language on both APIs"

    hot = await new_contact(ws, full_name="Hot Hanna", status="hot", tags=["web"])
    dry = (await ws.gql(DRY_RUN, {"id": created["id"], "entityId": hot["id"]}))["data"]
    assert dry["dryRunRule"]["matched"] is True
    assert dry["dryRunRule"]["actions"][0]["params"]["title"] == "Call Hot Hanna"

    await auto.drain()
    rule = (await ws.gql(RUNS, {"id": created["id"]}))["data"]["rule"]
    [edge] = rule["runs"]["edges"]
    assert edge["node"]["status"] == "succeeded"
    assert edge["node"]["eventType"] == "contact.created"
    assert rule["runs"]["pageInfo"]["hasNextPage"] is False


async def test_invalid_rules_and_other_workspaces(ws: Workspace, other_ws: Workspace) -> None:
    bad = {**HOT_CONTACT_RULE, "actions": [{"type": "create_task", "title": "x",
                                            "due": {"in": "soon"}}]}
    result = (await ws.gql(CREATE, {"input": bad}))["data"]["createRule"]
    assert result["__typename"] == "ValidationError"
    assert any(e["loc"][:3] == ["input", "actions", "0"] for e in result["errors"]), result
    assert (await ws.gql("{ rules { edges { node { id } } } }"))["data"]["rules"]["edges"] == []

    created = (await ws.gql(CREATE, {"input": HOT_CONTACT_RULE}))["data"]["createRule"]
    theirs = await other_ws.gql("query($id: ID!) { rule(id: $id) { id } }",
                                {"id": created["id"]})
    assert theirs["data"]["rule"] is None
    contact = await new_contact(other_ws, full_name="Theirs")
    dry = (await other_ws.gql(DRY_RUN, {"id": created["id"], "entityId": contact["id"]}))
    assert dry["data"]["dryRunRule"]["__typename"] == "NotFoundError"
