"""GraphQL for templates, documents and messages: the same rules as REST."""

from __future__ import annotations

from tests.api.graphql.helpers import ERRORS
from tests.api.rest.conftest import new_contact
from tests.api.rest.test_pipelines import new_deal
from tests.conftest import Workspace

CREATE_TEMPLATE = f"""
mutation($input: TemplateInput!) {{
  createTemplate(input: $input) {{ {ERRORS} ... on Template {{ id kind name subject body
    format version }} }}
}}"""
UPDATE_TEMPLATE = f"""
mutation($id: ID!, $input: TemplateInput!, $version: Int) {{
  updateTemplate(id: $id, input: $input, version: $version) {{ {ERRORS}
    ... on Template {{ id body version }} }}
}}"""
PREVIEW = f"""
mutation($id: ID!, $contactId: ID) {{
  previewTemplate(id: $id, contactId: $contactId) {{ {ERRORS}
    ... on TemplatePreview {{ subject body }} }}
}}"""
SEND = f"""
mutation($input: SendMessageInput!) {{
  sendMessage(input: $input) {{ {ERRORS} ... on Message {{ id channel status to subject body
    messageKey }} }}
}}"""
GENERATE = f"""
mutation($dealId: ID!, $templateId: ID!) {{
  generateDocument(dealId: $dealId, templateId: $templateId) {{ {ERRORS}
    ... on Document {{ id name pdfSize pdfUrl }} }}
}}"""


async def test_templates_messages_and_documents_over_graphql(ws: Workspace) -> None:
    created = (await ws.gql(CREATE_TEMPLATE, {"input": {
        "kind": "email", "name": "Hello", "subject": "Hi {{ contact.first_name }}",
        "body": "Dear {{ contact.full_name }}"}}))["data"]["createTemplate"]
    assert created["__typename"] == "Template" and created["version"] == 1
    contact = await new_contact(ws, first_name="Ivan", last_name="Ivanov",
                                emails=[{"email": "ivan@example.com"}])
    preview = (await ws.gql(PREVIEW, {"id": created["id"], "contactId": contact["id"]}))
    assert preview["data"]["previewTemplate"] == {
        "__typename": "TemplatePreview", "subject": "Hi Ivan", "body": "Dear Ivan Ivanov"}

    sent = (await ws.gql(SEND, {"input": {"channel": "email", "contactId": contact["id"],
                                          "templateId": created["id"]}}))["data"]["sendMessage"]
    assert (sent["status"], sent["to"], sent["subject"]) == ("queued", "ivan@example.com",
                                                             "Hi Ivan")
    read = await ws.gql("query($id: ID!) { message(id: $id) { id status } }",
                        {"id": sent["id"]})
    assert read["data"]["message"] == {"id": sent["id"], "status": "queued"}
    listed = await ws.gql("{ messages(first: 5) { edges { node { id } } } }")
    assert sent["id"] in [e["node"]["id"] for e in listed["data"]["messages"]["edges"]]

    offer = (await ws.gql(CREATE_TEMPLATE, {"input": {
        "kind": "document", "name": "Offer", "body": "<h1>{{ deal.title }}</h1>"}})
             )["data"]["createTemplate"]
    assert offer["format"] == "html"
    deal = await new_deal(ws, title="Balcony")
    document = (await ws.gql(GENERATE, {"dealId": deal["id"], "templateId": offer["id"]}))[
        "data"]["generateDocument"]
    assert document["name"] == "Offer — Balcony" and document["pdfSize"] > 0
    on_deal = await ws.gql("query($id: ID!) { deal(id: $id) { documents { id name } } }",
                           {"id": deal["id"]})
    assert on_deal["data"]["deal"]["documents"] == [{"id": document["id"],
                                                     "name": "Offer — Balcony"}]
    templates = await ws.gql("{ templates(first: 10) { edges { node { id kind } } } }")
    assert {e["node"]["kind"] for e in templates["data"]["templates"]["edges"]} == {
        "email", "document"}


async def test_errors_are_union_results(ws: Workspace, other_ws: Workspace) -> None:
    hostile = (await ws.gql(CREATE_TEMPLATE, {"input": {
        "kind": "sms", "name": "x", "body": "{{ ''.__class__.__mro__ }}"}}))["data"][
        "createTemplate"]
    assert hostile["__typename"] == "ValidationError"
    assert hostile["errors"][0]["type"] == "template_security"
    created = (await ws.gql(CREATE_TEMPLATE, {"input": {
        "kind": "sms", "name": "x", "body": "Hi"}}))["data"]["createTemplate"]
    stale = (await ws.gql(UPDATE_TEMPLATE, {"id": created["id"], "input": {"body": "Yo"},
                                            "version": 9}))["data"]["updateTemplate"]
    assert stale["__typename"] == "PreconditionFailedError"
    silent = await new_contact(ws, first_name="Silent")
    no_phone = (await ws.gql(SEND, {"input": {"channel": "sms", "contactId": silent["id"],
                                              "body": "Hi"}}))["data"]["sendMessage"]
    assert no_phone["__typename"] == "ValidationError"
    theirs = (await other_ws.gql(CREATE_TEMPLATE, {"input": {
        "kind": "sms", "name": "x", "body": "Hi"}}))["data"]["createTemplate"]
    assert (await ws.gql("query($id: ID!) { template(id: $id) { id } }",
                         {"id": theirs["id"]}))["data"]["template"] is None
    their_update = (await ws.gql(UPDATE_TEMPLATE, {"id": theirs["id"],
                                                   "input": {"body": "Mine"}}))
    assert their_update["data"]["updateTemplate"]["__typename"] == "NotFoundError"
