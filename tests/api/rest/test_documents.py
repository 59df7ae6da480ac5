"""Documents: an offer rendered for a deal to HTML and PDF, stored, listed, on the timeline."""

from __future__ import annotations

from typing import Any

from tests.api.rest.conftest import act_as, assert_problem, error_locs, new_contact, new_user
from tests.api.rest.test_pipelines import new_deal
from tests.api.rest.test_tasks import new_task
from tests.api.rest.test_templates import new_template
from tests.conftest import Workspace

OFFER = ("<h1>Offer for {{ contact.full_name }}</h1>"
         "<p>Measured: {{ task_data.width_cm }} × {{ task_data.height_cm }} cm</p>"
         "<table><tr><th>Item</th><th>Qty</th><th>Total</th></tr>"
         "{% for item in deal.line_items %}<tr><td>{{ item.name }}</td>"
         "<td>{{ item.quantity }}</td><td>{{ item.total }}</td></tr>{% endfor %}</table>"
         "<p>Total: <b>{{ deal.amount }} {{ deal.currency }}</b></p>")


async def offer_deal(ws: Workspace, **fields: Any) -> dict[str, Any]:
    buyer = await new_contact(ws, first_name="Иван", last_name="Петров")
    deal = await new_deal(ws, title="Windows for the dacha", contact_ids=[buyer["id"]],
                          currency="RUB", line_items=[
                              {"name": "Window 120×140", "quantity": "2", "unit_price": "15000"},
                              {"name": "Sill", "quantity": "1", "unit_price": "2000"}], **fields)
    measured = await new_task(ws, title="Measure", type="measurement", deal_id=deal["id"])
    done = await ws.post(f"/api/v1/tasks/{measured['id']}/complete",
                         json={"data": {"width_cm": 120, "height_cm": 140}})
    assert done.status_code == 200, done.text
    return deal


async def test_an_offer_is_rendered_stored_and_downloadable(ws: Workspace) -> None:
    template = await new_template(ws, kind="document", name="Offer", subject=None, body=OFFER)
    deal = await offer_deal(ws)
    created = await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                            json={"template_id": template["id"]})
    assert created.status_code == 201, created.text
    document = created.json()
    assert created.headers["location"] == f"/api/v1/documents/{document['id']}"
    assert document["name"] == "Offer — Windows for the dacha"
    assert document["deal_id"] == deal["id"] and document["pdf_size"] > 1000

    html = await ws.get(f"/api/v1/documents/{document['id']}/content", params={"format": "html"})
    assert html.status_code == 200
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "Offer for Иван Петров" in html.text
    assert "Measured: 120 × 140 cm" in html.text
    assert "<td>Window 120×140</td><td>2</td><td>30000.00</td>" in html.text
    assert "Total: <b>32000.00 RUB</b>" in html.text
    pdf = await ws.get(f"/api/v1/documents/{document['id']}/content")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) == document["pdf_size"]
    assert "attachment" in pdf.headers["content-disposition"]

    assert (await ws.get(f"/api/v1/documents/{document['id']}")).json() == document
    listed = (await ws.get(f"/api/v1/deals/{deal['id']}/documents")).json()["data"]
    assert [d["id"] for d in listed] == [document["id"]]
    timeline = (await ws.get(f"/api/v1/deals/{deal['id']}/timeline",
                             params={"types": "document"})).json()["data"]
    assert [(e["kind"], e["summary"]) for e in timeline] == [
        ("document", "Document generated: Offer — Windows for the dacha")]
    history = (await ws.get(f"/api/v1/deals/{deal['id']}/history")).json()["data"]
    generated = [e for e in history if e["type"] == "document.generated"]
    assert generated and generated[0]["after"]["document_id"] == document["id"]


async def test_the_buyers_name_is_escaped_in_html(ws: Workspace) -> None:
    template = await new_template(ws, kind="document", name="Offer", subject=None,
                                  body="<p>{{ contact.first_name }}</p>")
    buyer = await new_contact(ws, first_name="<script>alert(1)</script>")
    deal = await new_deal(ws, contact_ids=[buyer["id"]])
    document = (await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                              json={"template_id": template["id"]})).json()
    html = await ws.get(f"/api/v1/documents/{document['id']}/content", params={"format": "html"})
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in html.text
    assert html.headers["content-security-policy"].startswith("default-src 'none'")


async def test_a_text_document_is_preformatted(ws: Workspace) -> None:
    template = await new_template(ws, kind="document", name="Note", subject=None,
                                  format="text", body="Deal: {{ deal.title }} <b>")
    deal = await new_deal(ws, title="Sill")
    document = (await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                              json={"template_id": template["id"]})).json()
    html = await ws.get(f"/api/v1/documents/{document['id']}/content", params={"format": "html"})
    assert html.text == "<pre>Deal: Sill &lt;b&gt;</pre>"


async def test_wrong_template_kind_and_remote_images_are_refused(ws: Workspace) -> None:
    deal = await new_deal(ws)
    email = await new_template(ws)
    wrong = await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                          json={"template_id": email["id"]})
    assert_problem(wrong, 422)
    assert error_locs(wrong) == [["body", "template_id"]]
    remote = await new_template(ws, kind="document", name="Img", subject=None,
                                body='<img src="http://169.254.169.254/latest">')
    refused = await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                            json={"template_id": remote["id"]})
    assert assert_problem(refused, 422)["errors"][0]["type"] == "document_image"
    assert (await ws.get(f"/api/v1/deals/{deal['id']}/documents")).json()["data"] == []


async def test_documents_follow_the_deals_visibility(ws: Workspace) -> None:
    template = await new_template(ws, kind="document", name="Offer", subject=None, body="Hi")
    owner = await new_user(ws, "agent")
    other = await act_as(ws, await new_user(ws, "agent"))
    deal = await new_deal(ws, owner_id=owner["id"])
    document = (await ws.post(f"/api/v1/deals/{deal['id']}/documents",
                              json={"template_id": template["id"]})).json()
    assert_problem(await other.get(f"/api/v1/documents/{document['id']}"), 404)
    assert_problem(await other.get(f"/api/v1/documents/{document['id']}/content"), 404)
    assert_problem(await other.post(f"/api/v1/deals/{deal['id']}/documents",
                                    json={"template_id": template["id"]}), 404)
    mine = await act_as(ws, owner)
    assert (await mine.get(f"/api/v1/documents/{document['id']}")).status_code == 200


async def test_another_workspaces_documents_are_not_found(ws: Workspace,
                                                         other_ws: Workspace) -> None:
    template = await new_template(other_ws, kind="document", name="Offer", subject=None,
                                  body="Secret")
    their_deal = await new_deal(other_ws)
    theirs = (await other_ws.post(f"/api/v1/deals/{their_deal['id']}/documents",
                                  json={"template_id": template["id"]})).json()
    assert_problem(await ws.get(f"/api/v1/documents/{theirs['id']}"), 404)
    assert_problem(await ws.get(f"/api/v1/documents/{theirs['id']}/content"), 404)
    assert_problem(await ws.get(f"/api/v1/deals/{their_deal['id']}/documents"), 404)
    my_deal = await new_deal(ws)
    cross = await ws.post(f"/api/v1/deals/{my_deal['id']}/documents",
                          json={"template_id": template["id"]})
    assert error_locs(assert_problem(cross, 422) and cross) == [["body", "template_id"]]
