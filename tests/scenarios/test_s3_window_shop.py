"""S3. A website order — the window shop, every step configured as pipeline rules.

Okna Plus sells windows in Moscow. The owner configures, through the public API only:
Sales (Masha and Petr, headed by Elena), Measurers (Pavel), Pricing (Petr), Installers (Igor), and
Sergey, the head of sales; an offer document template and an email template; and seven
rules. Then, on a frozen clock, with the real relay and arq worker doing the work:

1. A buyer leaves a request on the website: a card and a deal in "New request" appear; the
   rule gives the deal to the next sales manager (Masha) with a call task due in 15 minutes.
2. Masha does not call in time: at minute 16 the task is overdue and the head of the
   department (Elena) is told at once.
3. Masha calls, fills in the address and the visit time, completes the task: the deal moves
   to "Measurement" and the measurer gets a task at the visit time.
4. Pavel enters the measurements and completes his task: the deal moves to "Pricing" and the
   pricing manager gets a task.
5. Petr prices the order (line items); Masha generates the offer from the template — the
   buyer's data, the measurements and the amount — and emails it (a real SMTP server gets
   it, with the PDF).
6. Payment is recorded: the deal moves to "Installation" and the installer is told of the
   job and its date.
7. The deal is won: Sergey, the head of sales, receives a report (a notification and an
   email)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.rest.conftest import act_as, new_custom_field, new_user
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.receivers import SmtpInbox
from tests.workers.test_rules_worker import default_stages, new_rule, runs

MON_10 = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow
WED_11 = datetime(2027, 3, 3, 8, 0, tzinfo=UTC)  # the measurer's visit
INSTALL_DAY = "2027-03-15"

OFFER = """<h1>Offer for {{ contact.full_name }}</h1>
<p>Address: {{ task_data.address }}</p>
<p>{{ task_data.windows }} windows, {{ task_data.width_cm }} × {{ task_data.height_cm }} cm</p>
<ul>{% for item in deal.line_items %}<li>{{ item.name }} × {{ item.quantity }}</li>{% endfor %}</ul>
<p>Total: {{ deal.amount }} {{ deal.currency }}</p>"""

DEAL = """query($id: ID!) { deal(id: $id) { title status stage { name } ownerId amount
  contacts { fullName } } }"""


async def notifications(ws: Workspace) -> list[dict[str, Any]]:
    response = await ws.get("/api/v1/notifications")
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def open_task(ws: Workspace, deal_id: str, type_: str) -> dict[str, Any]:
    rows = (await ws.get("/api/v1/tasks", params={"deal_id": deal_id, "type": type_,
                                                  "status": "open"})).json()["data"]
    assert len(rows) == 1, rows
    return rows[0]  # type: ignore[no-any-return]


async def test_the_window_shop_runs_on_rules(
        ws: Workspace, auto: Automation, smtp_inbox: SmtpInbox,
        frozen: Callable[[datetime | None], None]) -> None:
    auto.deliver_to(smtp_port=smtp_inbox.port)
    people = {name: await new_user(ws, role, name) for name, role in [
        ("Masha", "manager"), ("Elena", "manager"), ("Pavel", "agent"), ("Petr", "manager"),
        ("Igor", "agent"), ("Sergey", "admin")]}
    sessions = {name: await act_as(ws, user) for name, user in people.items()}
    # Petr prices the sales team's deals, so he is in it (a manager sees his teams' deals).
    sales = await new_team(ws, "Sales", people["Elena"], [people["Masha"], people["Petr"]])
    teams = {"Sales": sales} | {name: await new_team(ws, name, None, [people[member]])
                                for name, member in [("Measurers", "Pavel"),
                                                     ("Pricing", "Petr"),
                                                     ("Installers", "Igor")]}
    await new_custom_field(ws, "paid", "boolean", object_type="deal")
    await new_custom_field(ws, "installation_date", "date", object_type="deal")
    stages = await default_stages(ws)
    offer = (await ws.post("/api/v1/templates", json={
        "kind": "document", "name": "Offer", "body": OFFER})).json()
    offer_email = (await ws.post("/api/v1/templates", json={
        "kind": "email", "name": "Your offer", "subject": "Your offer, {{ contact.first_name }}",
        "body": "Dear {{ contact.full_name }}, the offer for {{ deal.amount }} "
                "{{ deal.currency }} is attached."})).json()

    def round_robin(team: str) -> dict[str, Any]:
        return {"strategy": "round_robin", "team_id": teams[team]["id"]}

    rules = {
        "web lead": await new_rule(
            ws, name="A web request: a manager calls within 15 minutes",
            trigger={"type": "stage_entered", "stage_id": stages["New request"]},
            conditions={"field": "deal.source", "op": "eq", "value": "website"},
            actions=[{"type": "assign_owner", "assignee": round_robin("Sales")},
                     {"type": "create_task", "task_type": "call",
                      "title": "Call {{ contact.full_name }} to clarify the order",
                      "due": {"in": "15m"}, "assignee": {"strategy": "owner"}}]),
        "overdue": await new_rule(
            ws, name="An overdue call: tell the head of department",
            trigger={"type": "task_overdue", "task_type": "call"},
            actions=[{"type": "notify", "to": {"strategy": "team_head"},
                      "title": "Not called in time: {{ contact.full_name }}",
                      "body": "{{ task.title }}"}]),
        "clarified": await new_rule(
            ws, name="Clarified: book the measurer",
            trigger={"type": "task_completed", "task_type": "call", "outcome": "done"},
            conditions={"field": "task.data.visit_at", "op": "is_set"},
            actions=[{"type": "move_deal", "stage_id": stages["Measurement"]},
                     {"type": "create_task", "task_type": "measurement",
                      "title": "Measure at {{ task.data.address }}",
                      "due": {"field": "task.data.visit_at"},
                      "assignee": round_robin("Measurers")}]),
        "measured": await new_rule(
            ws, name="Measured: price it",
            trigger={"type": "task_completed", "task_type": "measurement"},
            actions=[{"type": "move_deal", "stage_id": stages["Pricing"]},
                     {"type": "create_task", "task_type": "todo",
                      "title": "Price {{ task.data.windows }} windows for "
                               "{{ contact.full_name }}",
                      "due": {"in": "1d", "business_hours": True},
                      "assignee": round_robin("Pricing")}]),
        "paid": await new_rule(
            ws, name="Paid: to installation",
            trigger={"type": "record_updated", "object": "deal", "fields": ["custom_fields"]},
            conditions={"all": [{"field": "deal.custom_fields.paid", "op": "eq", "value": True},
                                {"field": "stage.name", "op": "eq", "value": "Payment"}]},
            actions=[{"type": "move_deal", "stage_id": stages["Installation"]}]),
        "installation": await new_rule(
            ws, name="Installation: the installer's job",
            trigger={"type": "stage_entered", "stage_id": stages["Installation"]},
            actions=[{"type": "create_task", "task_type": "installation",
                      "title": "Install windows for {{ contact.full_name }}",
                      "due": {"field": "deal.custom_fields.installation_date"},
                      "assignee": round_robin("Installers")}]),
        "won": await new_rule(
            ws, name="Won: report to the head of sales",
            trigger={"type": "event", "event": "deal.won"},
            actions=[{"type": "notify", "to": {"strategy": "user",
                                               "user_id": people["Sergey"]["id"]},
                      "title": "Won: {{ deal.title }}",
                      "body": "{{ deal.amount }} {{ deal.currency }} from "
                              "{{ contact.full_name }}, by {{ owner.full_name }}"},
                     {"type": "send_email", "to": {"strategy": "user",
                                                   "user_id": people["Sergey"]["id"]},
                      "subject": "Won: {{ deal.title }}",
                      "body": "{{ deal.title }}: {{ deal.amount }} {{ deal.currency }}, "
                              "manager {{ owner.full_name }}."}]),
    }

    # 1. The website request (the site posts the card and the deal; forms are the
    # integrations' business, the API is the same).
    frozen(MON_10)
    buyer = (await ws.post("/api/v1/contacts", json={
        "first_name": "Ivan", "last_name": "Petrov", "phones": [{"number": "8 (495) 123-45-67"}],
        "emails": [{"email": "ivan.petrov@example.ru"}], "source": "website"})).json()
    deal = (await ws.post("/api/v1/deals", json={
        "title": "Windows for the dacha", "contact_ids": [buyer["id"]], "source": "website",
        "currency": "RUB"})).json()
    assert deal["stage_id"] == stages["New request"] and deal["owner_id"] is None
    await auto.drain()
    call = await open_task(ws, deal["id"], "call")
    assert call["title"] == "Call Ivan Petrov to clarify the order"
    assert call["assignee_id"] == people["Masha"]["id"]
    assert datetime.fromisoformat(call["due_at"]) == MON_10 + timedelta(minutes=15)
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["owner_id"] == \
        people["Masha"]["id"]

    # 2. Sixteen minutes later the call is overdue: Elena hears of it at once.
    frozen(MON_10 + timedelta(minutes=16))
    await auto.sweep(ws)
    told = [n for n in await notifications(sessions["Elena"]) if n["type"] == "rule"]
    assert [n["title"] for n in told] == ["Not called in time: Ivan Petrov"]
    assert told[0]["entity_id"] == call["id"]

    # 3. Masha calls and books the measurement.
    frozen(MON_10 + timedelta(minutes=20))
    done = await sessions["Masha"].post(f"/api/v1/tasks/{call['id']}/complete", json={
        "outcome": "done", "note": "wants 3 windows",
        "data": {"address": "Dachnaya 5, Istra", "visit_at": WED_11.isoformat()}})
    assert done.status_code == 200, done.text
    await auto.drain()
    measure = await open_task(ws, deal["id"], "measurement")
    assert measure["title"] == "Measure at Dachnaya 5, Istra"
    assert measure["assignee_id"] == people["Pavel"]["id"]
    assert datetime.fromisoformat(measure["due_at"]) == WED_11
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["stage_id"] == \
        stages["Measurement"]

    # 4. Pavel measures.
    frozen(WED_11 + timedelta(hours=1))
    await sessions["Pavel"].post(f"/api/v1/tasks/{measure['id']}/complete", json={
        "data": {"windows": 3, "width_cm": 120, "height_cm": 140}})
    await auto.drain()
    pricing = await open_task(ws, deal["id"], "todo")
    assert pricing["title"] == "Price 3 windows for Ivan Petrov"
    assert pricing["assignee_id"] == people["Petr"]["id"]
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["stage_id"] == \
        stages["Pricing"]

    # 5. Petr prices it; Masha sends the offer from the template.
    priced = await sessions["Petr"].patch(f"/api/v1/deals/{deal['id']}", json={
        "line_items": [{"name": "PVC window 120×140", "quantity": "3", "unit_price": "18500"},
                       {"name": "Installation", "quantity": "1", "unit_price": "6000"}]})
    assert priced.status_code == 200, priced.text
    assert priced.json()["amount"] == "61500.00"
    await sessions["Petr"].post(f"/api/v1/tasks/{pricing['id']}/complete")
    document = await sessions["Masha"].post(f"/api/v1/deals/{deal['id']}/documents",
                                            json={"template_id": offer["id"]})
    assert document.status_code == 201, document.text
    html = (await sessions["Masha"].get(f"/api/v1/documents/{document.json()['id']}/content",
                                        params={"format": "html"})).text
    for expected in ("Offer for Ivan Petrov", "Dachnaya 5, Istra", "3 windows, 120 × 140 cm",
                     "PVC window 120×140 × 3", "61500.00 RUB"):
        assert expected in html, expected
    sent = await sessions["Masha"].post("/api/v1/messages", json={
        "channel": "email", "contact_id": buyer["id"], "deal_id": deal["id"],
        "template_id": offer_email["id"], "document_ids": [document.json()["id"]]})
    assert sent.status_code == 201, sent.text
    await auto.send_messages()
    [mail] = smtp_inbox.to("ivan.petrov@example.ru")
    assert mail["Subject"] == "Your offer, Ivan"
    assert "61500.00 RUB" in mail.get_body(("plain",)).get_content()
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")

    # 6. Payment is recorded: to installation, and the installer is told.
    await sessions["Masha"].post(f"/api/v1/deals/{deal['id']}/move",
                                 json={"stage_id": stages["Payment"]})
    await auto.drain()
    await sessions["Masha"].patch(f"/api/v1/deals/{deal['id']}", json={
        "custom_fields": {"paid": True, "installation_date": INSTALL_DAY}})
    await auto.drain()
    assert (await ws.get(f"/api/v1/deals/{deal['id']}")).json()["stage_id"] == \
        stages["Installation"]
    install = await open_task(ws, deal["id"], "installation")
    assert install["assignee_id"] == people["Igor"]["id"]
    assert install["due_at"].startswith(INSTALL_DAY)
    igor_told = await notifications(sessions["Igor"])
    assert [(n["type"], n["entity_id"]) for n in igor_told] == [("task_assigned", install["id"])]
    assert "Install windows for Ivan Petrov" in igor_told[0]["title"]

    # 7. Won: Sergey gets the report.
    await sessions["Igor"].post(f"/api/v1/tasks/{install['id']}/complete")
    won = await sessions["Masha"].post(f"/api/v1/deals/{deal['id']}/move",
                                       json={"stage_id": stages["Won"]})
    assert won.json()["status"] == "won"
    await auto.drain()
    report = [n for n in await notifications(sessions["Sergey"]) if n["type"] == "rule"]
    assert [(n["title"], n["body"]) for n in report] == [
        ("Won: Windows for the dacha", "61500.00 RUB from Ivan Petrov, by Masha")]
    await auto.send_messages()
    [report_mail] = smtp_inbox.to(people["Sergey"]["email"])
    assert report_mail["Subject"] == "Won: Windows for the dacha"
    assert "manager Masha" in report_mail.get_body(("plain",)).get_content()

    # The whole story is on the record: every rule ran once, and GraphQL agrees.
    for name, rule in rules.items():
        statuses = [r["status"] for r in await runs(ws, rule["id"])]
        assert statuses == ["succeeded"], (name, statuses)
    final = (await ws.gql(DEAL, {"id": deal["id"]}))["data"]["deal"]
    assert final == {"title": "Windows for the dacha", "status": "won",
                     "stage": {"name": "Won"}, "ownerId": people["Masha"]["id"],
                     "amount": "61500.00", "contacts": [{"fullName": "Ivan Petrov"}]}
    frozen(None)
