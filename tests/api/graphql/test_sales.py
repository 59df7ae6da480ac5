"""GraphQL for pipelines, stages, deals and the board: the same rules and values as REST."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.graphql.helpers import ERRORS, mutate, ok
from tests.api.graphql.test_dataloader import count_statements
from tests.api.rest.conftest import act_as, new_company, new_contact, new_user
from tests.conftest import Workspace

STAGE = "id name position kind probability rottingDays archived version"
PIPELINE = f"id name isDefault version stages {{ {STAGE} }}"
DEAL = """
  id title pipelineId stageId status amount currency version contactIds companyId ownerId
  lostReason closedAt stageEnteredAt tags customFields externalId rotting
  lineItems { name sku quantity unitPrice discount taxRate total }
  score { class points probability expectedAmount maxExpectedAmount dropFromMax explanation }
"""
DEAL_RESULT = f"{ERRORS} ... on Deal {{ {DEAL} }}"
PIPELINE_RESULT = f"{ERRORS} ... on Pipeline {{ {PIPELINE} }}"

CREATE_DEAL = f"mutation($input: DealInput!) {{ createDeal(input: $input) {{ {DEAL_RESULT} }} }}"
UPDATE_DEAL = f"""mutation($id: ID!, $input: DealInput!, $version: Int) {{
  updateDeal(id: $id, input: $input, version: $version) {{ {DEAL_RESULT} }} }}"""
MOVE_DEAL = f"""mutation($id: ID!, $stageId: ID!, $pipelineId: ID, $lostReason: String) {{
  moveDeal(id: $id, stageId: $stageId, pipelineId: $pipelineId, lostReason: $lostReason) {{
    {DEAL_RESULT} }} }}"""
DELETE_DEAL = f"""mutation($id: ID!) {{
  deleteDeal(id: $id) {{ {ERRORS} ... on DeleteSuccess {{ id }} }} }}"""
GET_DEAL = f"""query($id: ID!) {{ deal(id: $id) {{ {DEAL}
  contacts {{ id fullName }} company {{ id name }} stage {{ id name kind }}
  pipeline {{ id name }}
  stageHistory {{ stageId stageName fromStageId enteredAt leftAt enteredBy durationSeconds }}
}} }}"""
LIST_DEALS = """query($first: Int, $after: String, $filter: JSON, $q: String, $sort: String) {
  deals(first: $first, after: $after, filter: $filter, q: $q, sort: $sort) {
    edges { cursor node { id title amount stage { name } contacts { fullName }
                          company { name } } }
    pageInfo { hasNextPage endCursor } } }"""
BOARD = """query($id: ID!, $first: Int, $ownerId: ID) {
  board(pipelineId: $id, first: $first, ownerId: $ownerId) {
    currency pipeline { id }
    stages { stage { name } count totalAmount weightedAmount currency nextCursor
             otherCurrencies { currency count totalAmount weightedAmount }
             deals { title amount } } } }"""
PIPELINES = f"query {{ pipelines {{ {PIPELINE} }} }}"
CREATE_PIPELINE = f"""mutation($input: PipelineInput!) {{
  createPipeline(input: $input) {{ {PIPELINE_RESULT} }} }}"""
ADD_STAGE = f"""mutation($id: ID!, $input: StageInput!) {{
  addStage(pipelineId: $id, input: $input) {{ {PIPELINE_RESULT} }} }}"""
UPDATE_STAGE = f"""mutation($id: ID!, $stageId: ID!, $input: StageUpdateInput!, $version: Int) {{
  updateStage(pipelineId: $id, stageId: $stageId, input: $input, version: $version) {{
    {PIPELINE_RESULT} }} }}"""
REORDER = f"""mutation($id: ID!, $stageIds: [ID!]!) {{
  reorderStages(pipelineId: $id, stageIds: $stageIds) {{ {PIPELINE_RESULT} }} }}"""
ARCHIVE = f"""mutation($id: ID!, $stageId: ID!, $archived: Boolean) {{
  archiveStage(pipelineId: $id, stageId: $stageId, archived: $archived) {{
    {PIPELINE_RESULT} }} }}"""
UPDATE_PIPELINE = f"""mutation($id: ID!, $input: PipelineUpdateInput!) {{
  updatePipeline(id: $id, input: $input) {{ {PIPELINE_RESULT} }} }}"""


NO_SUCH_ID = "01a20000-0000-7000-8000-000000000000"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def default_pipeline(ws: Workspace) -> dict[str, Any]:
    return next(p for p in ok(await ws.gql(PIPELINES))["pipelines"] if p["isDefault"])


def stage(pipeline: dict[str, Any], name: str) -> str:
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


async def create_deal(ws: Workspace, **fields: Any) -> dict[str, Any]:
    result = await mutate(ws, CREATE_DEAL, "createDeal", input={"title": "Deal", **fields})
    assert result["__typename"] == "Deal", result
    return result


async def test_deal_with_line_items_matches_rest(ws: Workspace) -> None:
    contact = await new_contact(ws, first_name="Anna", last_name="Orlova")
    company = await new_company(ws, name="Okna")
    deal = await create_deal(ws, title="Windows", contactIds=[contact["id"]],
                             companyId=company["id"], tags=["vip"], lineItems=[
                                 {"name": "Window", "quantity": "3", "unitPrice": "19.99",
                                  "discount": "5", "taxRate": "20"}])
    assert deal["amount"] == "65.96" and deal["currency"] == "USD"
    assert deal["lineItems"] == [{"name": "Window", "sku": None, "quantity": "3",
                                  "unitPrice": "19.99", "discount": "5", "taxRate": "20",
                                  "total": "65.96"}]
    rest = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    for field in ("title", "pipeline_id", "stage_id", "status", "amount", "currency", "version",
                  "contact_ids", "company_id", "owner_id", "lost_reason", "tags",
                  "custom_fields", "external_id", "rotting"):
        assert deal[camel(field)] == rest[field], field
    assert deal["score"]["class"] == rest["score"]["class"]
    assert deal["score"]["expectedAmount"] == rest["score"]["expected_amount"] == "6.60"
    assert deal["score"]["explanation"] == rest["score"]["explanation"]
    read = ok(await ws.gql(GET_DEAL, {"id": deal["id"]}))["deal"]
    assert read["contacts"] == [{"id": contact["id"], "fullName": "Anna Orlova"}]
    assert read["company"] == {"id": company["id"], "name": "Okna"}
    assert read["stage"]["name"] == "New request" and read["pipeline"]["name"] == "Sales"
    assert [h["stageName"] for h in read["stageHistory"]] == ["New request"]


async def test_amount_conflict_and_stale_version(ws: Workspace) -> None:
    deal = await create_deal(ws, lineItems=[{"sku": "A-1", "quantity": "2",
                                             "unitPrice": "10"}])
    conflict = await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"],
                            input={"amount": "19.99"})
    assert conflict["__typename"] == "ValidationError"
    assert [e["loc"] for e in conflict["errors"]] == [["input", "amount"]]
    same = await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"], input={"amount": "20"})
    assert same["__typename"] == "Deal" and same["version"] == 1
    bad_line = await mutate(ws, CREATE_DEAL, "createDeal", input={"title": "x", "lineItems": [
        {"name": "x", "quantity": "1", "unitPrice": "1", "discount": "2"}]})
    assert [e["loc"] for e in bad_line["errors"]] == [["input", "lineItems", "0", "discount"]]
    await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"], input={"title": "v2"})
    stale = await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"], input={"title": "x"},
                         version=1)
    assert stale["__typename"] == "PreconditionFailedError" and stale["currentVersion"] == 2


async def test_move_lost_won_and_stage_history(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    deal = await create_deal(ws, amount="100")
    no_reason = await mutate(ws, MOVE_DEAL, "moveDeal", id=deal["id"],
                             stageId=stage(sales, "Lost"))
    assert no_reason["__typename"] == "ValidationError"
    assert [e["loc"] for e in no_reason["errors"]] == [["lostReason"]]
    lost = await mutate(ws, MOVE_DEAL, "moveDeal", id=deal["id"], stageId=stage(sales, "Lost"),
                        lostReason="competitor")
    assert (lost["status"], lost["lostReason"]) == ("lost", "competitor") and lost["closedAt"]
    won = await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"],
                       input={"stageId": stage(sales, "Won")})
    assert (won["status"], won["lostReason"], won["score"]["probability"]) == ("won", None, 100)
    status = await mutate(ws, UPDATE_DEAL, "updateDeal", id=deal["id"], input={"status": "open"})
    assert [e["loc"] for e in status["errors"]] == [["input", "status"]]
    history = ok(await ws.gql(GET_DEAL, {"id": deal["id"]}))["deal"]["stageHistory"]
    assert [(h["stageName"], h["fromStageId"]) for h in history] == [
        ("New request", None), ("Lost", stage(sales, "New request")),
        ("Won", stage(sales, "Lost"))]
    rest = (await ws.get(f"/api/v1/deals/{deal['id']}/stage-history")).json()["data"]
    assert [datetime.fromisoformat(h["entered_at"]) for h in rest] == [
        datetime.fromisoformat(h["enteredAt"]) for h in history]
    other = await mutate(ws, MOVE_DEAL, "moveDeal", id=deal["id"], stageId=deal["id"])
    assert [e["loc"] for e in other["errors"]] == [["stageId"]]
    deleted = await mutate(ws, DELETE_DEAL, "deleteDeal", id=deal["id"])
    assert deleted == {"__typename": "DeleteSuccess", "id": deal["id"]}
    assert ok(await ws.gql(GET_DEAL, {"id": deal["id"]}))["deal"] is None
    gone = await mutate(ws, MOVE_DEAL, "moveDeal", id=deal["id"], stageId=stage(sales, "Won"))
    assert gone["__typename"] == "NotFoundError"


async def test_a_move_between_edits_in_one_document(ws: Workspace) -> None:
    """Mutations of one document share a transaction: an edit, a move (written below the
    ORM, decision 0062) and another edit of the same deal each see the one before."""
    sales = await default_pipeline(ws)
    deal = await create_deal(ws, amount="100")
    body = ok(await ws.gql("""mutation($id: ID!, $stage: ID!) {
      first: updateDeal(id: $id, input: {title: "Edited"}) { ... on Deal { version stageId } }
      moved: moveDeal(id: $id, stageId: $stage) { ... on Deal { version stageId title } }
      last: updateDeal(id: $id, input: {source: "ads"}) {
        ... on Deal { version stageId title source } } }""",
                           {"id": deal["id"], "stage": stage(sales, "Clarified")}))
    assert (body["first"]["version"], body["first"]["stageId"]) == (2, deal["stageId"])
    assert body["moved"] == {"version": 3, "stageId": stage(sales, "Clarified"),
                             "title": "Edited"}
    assert body["last"] == {"version": 4, "stageId": stage(sales, "Clarified"),
                            "title": "Edited", "source": "ads"}
    read = (await ws.get(f"/api/v1/deals/{deal['id']}")).json()
    assert (read["version"], read["stage_id"], read["title"], read["source"]) == (
        4, stage(sales, "Clarified"), "Edited", "ads")
    history = (await ws.get(f"/api/v1/deals/{deal['id']}/stage-history")).json()["data"]
    assert [h["stage_name"] for h in history] == ["New request", "Clarified"]


async def test_deals_connection_filter_search_and_board(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    contact = await new_contact(ws, first_name="Zhanna")
    for i in range(3):
        await create_deal(ws, title=f"Deal {i}", amount=f"{i + 1}00")
    await create_deal(ws, title="Hers", amount="50", contactIds=[contact["id"]])
    await create_deal(ws, title="Euro", amount="10", currency="EUR")
    page = ok(await ws.gql(LIST_DEALS, {"first": 2, "filter": {
        "field": "amount", "op": "gte", "value": "100"}, "sort": "title"}))["deals"]
    assert [e["node"]["title"] for e in page["edges"]] == ["Deal 0", "Deal 1"]
    rest = ok(await ws.gql(LIST_DEALS, {"first": 2, "after": page["pageInfo"]["endCursor"],
                                        "filter": {"field": "amount", "op": "gte",
                                                   "value": "100"}, "sort": "title"}))["deals"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["Deal 2"]
    assert rest["pageInfo"]["hasNextPage"] is False
    found = ok(await ws.gql(LIST_DEALS, {"q": "zhan"}))["deals"]["edges"]
    assert [(e["node"]["title"], e["node"]["contacts"]) for e in found] == [
        ("Hers", [{"fullName": "Zhanna"}])]
    bad = await ws.gql(LIST_DEALS, {"filter": {"field": "amount", "op": "gte", "value": "x"}})
    assert bad["errors"][0]["extensions"]["status"] == 422
    board = ok(await ws.gql(BOARD, {"id": sales["id"], "first": 2}))["board"]
    first = board["stages"][0]
    assert (first["stage"]["name"], first["count"], first["totalAmount"],
            first["weightedAmount"]) == ("New request", 5, "650.00", "65.00")
    assert first["otherCurrencies"] == [{"currency": "EUR", "count": 1, "totalAmount": "10.00",
                                         "weightedAmount": "1.00"}]
    assert [d["title"] for d in first["deals"]] == ["Euro", "Hers"]
    more = ok(await ws.gql(LIST_DEALS, {"first": 10, "after": first["nextCursor"], "filter": {
        "field": "stage_id", "op": "eq", "value": stage(sales, "New request")}}))["deals"]
    assert [e["node"]["title"] for e in more["edges"]] == ["Deal 2", "Deal 1", "Deal 0"]
    rest_board = (await ws.get(f"/api/v1/pipelines/{sales['id']}/board",
                               params={"limit": 2})).json()
    assert rest_board["stages"][0]["next_cursor"] == first["nextCursor"]
    assert ok(await ws.gql(BOARD, {"id": NO_SUCH_ID}))["board"] is None
    too_many = await ws.gql(BOARD, {"id": sales["id"], "first": 500})
    assert too_many["errors"][0]["extensions"]["status"] == 422


async def test_pipeline_mutations(ws: Workspace) -> None:
    created = await mutate(ws, CREATE_PIPELINE, "createPipeline", input={
        "name": "Service", "stages": [{"name": "Call", "probability": 20},
                                      {"name": "Fixed", "kind": "won"}]})
    assert created["__typename"] == "Pipeline", created
    assert [(s["name"], s["kind"], s["probability"]) for s in created["stages"]] == [
        ("Call", "open", 20), ("Fixed", "won", 100)]
    invalid = await mutate(ws, CREATE_PIPELINE, "createPipeline", input={
        "name": "X", "stages": [{"name": "Won", "kind": "won"}]})
    assert [e["loc"] for e in invalid["errors"]] == [["input", "stages"]]
    added = await mutate(ws, ADD_STAGE, "addStage", id=created["id"],
                         input={"name": "Visit", "position": 1, "rottingDays": 3})
    assert [s["name"] for s in added["stages"]] == ["Call", "Visit", "Fixed"]
    visit = stage(added, "Visit")
    renamed = await mutate(ws, UPDATE_STAGE, "updateStage", id=created["id"], stageId=visit,
                           input={"name": "On-site", "probability": 40}, version=1)
    assert [s["name"] for s in renamed["stages"]] == ["Call", "On-site", "Fixed"]
    stale = await mutate(ws, UPDATE_STAGE, "updateStage", id=created["id"], stageId=visit,
                         input={"name": "x"}, version=1)
    assert stale["__typename"] == "PreconditionFailedError"
    ids = [s["id"] for s in renamed["stages"]]
    wrong = await mutate(ws, REORDER, "reorderStages", id=created["id"], stageIds=ids[:2])
    assert [e["loc"] for e in wrong["errors"]] == [["stageIds"]]
    reordered = await mutate(ws, REORDER, "reorderStages", id=created["id"],
                             stageIds=[ids[1], ids[0], ids[2]])
    assert [s["name"] for s in reordered["stages"]] == ["On-site", "Call", "Fixed"]
    archived = await mutate(ws, ARCHIVE, "archiveStage", id=created["id"], stageId=visit)
    assert [(s["name"], s["archived"]) for s in archived["stages"]] == [
        ("Call", False), ("Fixed", False), ("On-site", True)]
    refused = await mutate(ws, CREATE_DEAL, "createDeal", input={"title": "x",
                                                                 "stageId": visit})
    assert [e["loc"] for e in refused["errors"]] == [["input", "stageId"]]
    back = await mutate(ws, ARCHIVE, "archiveStage", id=created["id"], stageId=visit,
                        archived=False)
    assert back["stages"][-1]["archived"] is False
    default = await mutate(ws, UPDATE_PIPELINE, "updatePipeline", id=created["id"],
                           input={"isDefault": True})
    assert default["isDefault"] is True
    assert (await default_pipeline(ws))["id"] == created["id"]
    rest = (await ws.get(f"/api/v1/pipelines/{created['id']}")).json()
    assert [s["name"] for s in rest["stages"]] == [s["name"] for s in default["stages"]]
    assert rest["version"] == default["version"]


async def test_agents_see_only_their_deals_and_cannot_configure(ws: Workspace) -> None:
    sales = await default_pipeline(ws)
    alice, bob = await new_user(ws, "agent"), await new_user(ws, "agent")
    as_alice, as_bob = await act_as(ws, alice), await act_as(ws, bob)
    mine = await create_deal(as_alice, title="Alice's", amount="5")
    theirs = await create_deal(as_bob, title="Bob's", amount="7")
    assert mine["ownerId"] == alice["id"]
    assert ok(await as_alice.gql(GET_DEAL, {"id": theirs["id"]}))["deal"] is None
    titles = [e["node"]["title"] for e in ok(await as_alice.gql(LIST_DEALS))["deals"]["edges"]]
    assert titles == ["Alice's"]
    column = ok(await as_alice.gql(BOARD, {"id": sales["id"]}))["board"]["stages"][0]
    assert ([d["title"] for d in column["deals"]], column["totalAmount"]) == (["Alice's"],
                                                                             "5.00")
    hidden = await mutate(as_alice, UPDATE_DEAL, "updateDeal", id=theirs["id"],
                          input={"title": "mine now"})
    assert hidden["__typename"] == "NotFoundError"
    forbidden = await mutate(as_alice, CREATE_PIPELINE, "createPipeline", input={
        "name": "Mine", "stages": [{"name": "A"}]})
    assert forbidden["__typename"] == "ForbiddenError"
    assert [p["name"] for p in ok(await as_alice.gql(PIPELINES))["pipelines"]] == ["Sales"]


async def test_another_workspace_sees_nothing(ws: Workspace, other_ws: Workspace) -> None:
    deal = await create_deal(ws)
    sales = await default_pipeline(ws)
    assert ok(await other_ws.gql(GET_DEAL, {"id": deal["id"]}))["deal"] is None
    assert ok(await other_ws.gql(BOARD, {"id": sales["id"]}))["board"] is None
    moved = await mutate(other_ws, MOVE_DEAL, "moveDeal", id=deal["id"],
                         stageId=stage(sales, "Won"))
    assert moved["__typename"] == "NotFoundError"
    renamed = await mutate(other_ws, UPDATE_STAGE, "updateStage", id=sales["id"],
                           stageId=stage(sales, "Won"), input={"name": "Mine"})
    assert renamed["__typename"] == "NotFoundError"


async def test_nested_relations_cost_constant_queries(app: Any, ws: Workspace) -> None:
    company = await new_company(ws, name="Okna")
    contact = await new_contact(ws, first_name="Anna")
    query = """{ deals(first: 50) { edges { node { title company { name } contacts { fullName }
                 stage { name } pipeline { name } stageHistory { stageName } } } } }"""

    async def record_reads(count: int) -> list[str]:
        with count_statements(app) as statements:
            edges = ok(await ws.gql(query))["deals"]["edges"]
        assert len(edges) == count
        assert all(e["node"]["company"]["name"] == "Okna" for e in edges)
        assert all(e["node"]["contacts"] == [{"fullName": "Anna"}] for e in edges)
        return [s for s in statements if any(f"FROM {t}" in s for t in (
            "deals", "deal_contacts", "contacts", "companies", "stages", "stage_intervals",
            "pipelines"))]

    for i in range(2):
        await create_deal(ws, title=f"D{i}", companyId=company["id"], contactIds=[contact["id"]])
    few = await record_reads(2)
    for i in range(2, 12):
        await create_deal(ws, title=f"D{i}", companyId=company["id"], contactIds=[contact["id"]])
    many = await record_reads(12)
    assert len(many) == len(few) <= 9, many
