"""S6. Automatic messages to customers, configured as rules and sent by the real worker to a
real SMTP server and a real SMS endpoint:

* an order-status SMS when the deal enters "Installation" ("the installer comes on …");
* a birthday greeting with a personal discount, at 10:00 in the customer's own time zone —
  once, however often the sweep runs;
* a car service's email 30 days before the next service date (a custom field), with the
  consumables and a proposed slot from the template;
* a beauty salon's "time to renew your manicure" 21 days after the last visit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tests.api.rest.conftest import new_contact, new_custom_field
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.receivers import SmsReceiver, SmtpInbox
from tests.workers.test_rules_worker import default_stages, new_rule, runs

MAR_5_0959_MSK = datetime(2027, 3, 5, 6, 59, tzinfo=UTC)
MAR_5_1000_MSK = datetime(2027, 3, 5, 7, 0, tzinfo=UTC)
ARMEN = "+37410545454"

SERVICE_EMAIL = """Hello {{ contact.first_name }},

your car is due for service on {{ contact.custom_fields.next_service_date }}.
Consumables: oil filter 1 200 RUB, engine oil 5 l 4 500 RUB, air filter 900 RUB.
Proposed slot: {{ contact.custom_fields.next_service_date }} at 10:00. Reply to confirm."""


async def test_messages_go_out_on_stage_changes_and_dates(
        ws: Workspace, auto: Automation, smtp_inbox: SmtpInbox, sms_receiver: SmsReceiver,
        frozen: Callable[[datetime | None], None]) -> None:
    auto.deliver_to(smtp_port=smtp_inbox.port, sms_url=sms_receiver.url)
    stages = await default_stages(ws)
    await new_custom_field(ws, "next_service_date", "date")
    await new_custom_field(ws, "last_visit", "date")
    await new_custom_field(ws, "installation_date", "date", object_type="deal")
    service_template = (await ws.post("/api/v1/templates", json={
        "kind": "email", "name": "Service reminder",
        "subject": "Service for your car on {{ contact.custom_fields.next_service_date }}",
        "body": SERVICE_EMAIL})).json()
    rules = [
        await new_rule(ws, name="Order status: installation",
                       trigger={"type": "stage_entered", "stage_id": stages["Installation"]},
                       actions=[{"type": "send_sms", "body": (
                           "Okna Plus: your order is ready. The installer comes on "
                           "{{ deal.custom_fields.installation_date }}.")}]),
        await new_rule(ws, name="Birthday greeting",
                       trigger={"type": "date_reached", "field": "birthday", "yearly": True,
                                "at": "10:00"},
                       actions=[{"type": "send_sms", "body": (
                           "Happy birthday, {{ contact.first_name }}! "
                           "-15% all week with code BDAY15.")}]),
        await new_rule(ws, name="Car service: 30 days before",
                       trigger={"type": "date_reached",
                                "field": "custom_fields.next_service_date",
                                "offset_days": -30, "at": "09:00"},
                       actions=[{"type": "send_email",
                                 "template_id": service_template["id"]}]),
        await new_rule(ws, name="Manicure: 21 days after the last visit",
                       trigger={"type": "date_reached", "field": "custom_fields.last_visit",
                                "offset_days": 21, "at": "11:00"},
                       actions=[{"type": "send_sms", "body": (
                           "{{ contact.first_name }}, time to renew your manicure? "
                           "Book at salon.example")}]),
    ]

    # The order-status SMS.
    buyer = await new_contact(ws, first_name="Ivan", last_name="Petrov",
                              phones=[{"number": "8 (495) 123-45-67"}])
    deal = (await ws.post("/api/v1/deals", json={
        "title": "Windows", "contact_ids": [buyer["id"]],
        "custom_fields": {"installation_date": "2027-03-15"}})).json()
    await ws.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": stages["Installation"]})
    await auto.drain()
    await auto.send_messages()
    [sms] = sms_receiver.to("+74951234567")
    assert sms["json"]["text"] == \
        "Okna Plus: your order is ready. The installer comes on 2027-03-15."

    # Dates: a birthday in Moscow and in Yerevan, a service date, a last visit.
    anna = await new_contact(ws, first_name="Anna", phones=[{"number": "+7 916 555-01-02"}],
                             birthday="1990-03-05")
    armen = await new_contact(ws, first_name="Armen", phones=[{"number": "+374 10 545454"}],
                              birthday="1985-03-05", timezone="Asia/Yerevan")
    not_today = await new_contact(ws, first_name="Boris", phones=[{"number": "+7 916 555-03-04"}],
                                  birthday="1990-03-06")
    driver = await new_contact(ws, first_name="Oleg", emails=[{"email": "oleg@example.ru"}],
                               custom_fields={"next_service_date": "2027-04-04"})
    client = await new_contact(ws, first_name="Lilit", phones=[{"number": "+7 916 555-05-06"}],
                               custom_fields={"last_visit": "2027-02-12"})

    frozen(MAR_5_0959_MSK)  # 10:59 in Yerevan, 09:59 in Moscow
    await auto.sweep(ws)
    await auto.send_messages()
    assert [r["json"]["text"] for r in sms_receiver.to(ARMEN)] == \
        ["Happy birthday, Armen! -15% all week with code BDAY15."]
    assert sms_receiver.to("+79165550102") == [], "not 10:00 in Moscow yet"
    [service] = smtp_inbox.to("oleg@example.ru")  # 09:00 has passed in Moscow
    assert service["Subject"] == "Service for your car on 2027-04-04"
    body = service.get_body(("plain",)).get_content()
    assert "Hello Oleg" in body and "oil filter 1 200 RUB" in body
    assert "Proposed slot: 2027-04-04 at 10:00" in body

    frozen(MAR_5_1000_MSK)
    await auto.sweep(ws)
    await auto.sweep(ws)  # the sweep runs again: nobody hears twice
    await auto.send_messages()
    assert [r["json"]["text"] for r in sms_receiver.to("+79165550102")] == \
        ["Happy birthday, Anna! -15% all week with code BDAY15."]
    assert len(sms_receiver.to(ARMEN)) == 1
    assert sms_receiver.to("+79165550304") == [], "Boris's birthday is tomorrow"
    assert len(smtp_inbox.to("oleg@example.ru")) == 1
    assert sms_receiver.to("+79165550506") == [], "11:00 has not come for the salon yet"
    frozen(datetime(2027, 3, 5, 8, 0, tzinfo=UTC))
    await auto.sweep(ws)
    await auto.send_messages()
    assert [r["json"]["text"] for r in sms_receiver.to("+79165550506")] == \
        ["Lilit, time to renew your manicure? Book at salon.example"]

    # Each rule's runs name the card and the day.
    birthday_runs = await runs(ws, rules[1]["id"])
    assert sorted(r["entity_id"] for r in birthday_runs) == sorted([anna["id"], armen["id"]])
    assert {r["trigger_key"].rsplit(":", 1)[1] for r in birthday_runs} == {"2027-03-05"}
    assert not_today["id"] not in {r["entity_id"] for r in birthday_runs}
    assert [r["entity_id"] for r in await runs(ws, rules[2]["id"])] == [driver["id"]]
    assert [r["entity_id"] for r in await runs(ws, rules[3]["id"])] == [client["id"]]
    # Delivery status is on the customer's card.
    timeline = (await ws.get(f"/api/v1/contacts/{anna['id']}/timeline")).json()["data"]
    [message] = [entry for entry in timeline if entry["kind"] == "message"]
    assert message["summary"].startswith("SMS to +79165550102: Happy birthday, Anna!")
    assert message["summary"].endswith("(sent)")
    assert message["actor"] == f"rule:{rules[1]['id']}"
    frozen(None)
