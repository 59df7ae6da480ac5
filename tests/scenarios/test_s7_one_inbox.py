"""S7. Every channel lands in one place.

A call from an unknown number, an email to the company address, a website form and an SMS
each become a card and an incoming lead in one inbox; a WhatsApp message from a known
number lands on that card. The manager declines the spam email, links
the form (the same person who called) to the caller's card, and accepts the call as a deal —
through REST and GraphQL. The same person by email and by phone is one card; the time to
first response is recorded when the manager calls back."""

from __future__ import annotations

import uuid

import httpx

from tests.api.rest.conftest import act_as, new_user
from tests.api.rest.signed import call, email, new_integration, post_signed
from tests.conftest import Workspace

FORM_FIELDS = [
    {"name": "name", "label": "Your name", "type": "text", "required": True,
     "maps_to": "contact.full_name"},
    {"name": "email", "label": "Email", "type": "email", "required": True,
     "maps_to": "contact.email"},
    {"name": "wish", "label": "What would you like?", "type": "textarea"},
]


async def test_s7_one_inbox(client: httpx.AsyncClient, ws: Workspace) -> None:
    manager = await new_user(ws, "manager", "Nina")
    nina = await act_as(ws, manager)
    pbx = await new_integration(ws)
    box = await new_integration(ws, "email")

    rang = (await call(client, pbx, call_id=f"c-{uuid.uuid4().hex}",
                       **{"from": "+7 903 111-22-33"}, status="missed")).json()
    mailed = (await email(client, box, **{"from": "Cheap Pills <spam@spam.example>"},
                          subject="Offer", text="Buy now", message_id=f"<{uuid.uuid4()}@s>")
              ).json()
    # The caller also writes from her address, and leaves the same address on the site.
    lena_mail = (await email(client, box, **{"from": "Lena <lena@example.com>"},
                             subject="Balcony", text="Call me back on +79031112233",
                             message_id=f"<{uuid.uuid4()}@l>")).json()
    form = await ws.post("/api/v1/forms", json={"name": "Order", "fields": FORM_FIELDS})
    submitted_form = None
    if form.status_code == 201:
        submitted = await client.post(
            f"/api/v1/forms/{form.json()['form_key']}/submissions",
            json={"name": "Lena", "email": "LENA@example.com", "wish": "balcony"})
        assert submitted.status_code in (200, 201, 202), submitted.text
        submitted_form = submitted

    # One inbox holds every channel.
    items = (await nina.get("/api/v1/inbox", params={"status": "new"})).json()["data"]
    by_channel = {i["channel"] for i in items}
    assert {"call", "email"} <= by_channel
    if submitted_form is not None:
        assert "form" in by_channel
        form_item = next(i for i in items if i["channel"] == "form")
        # The form's address is Lena's email card: one card, not two.
        assert form_item["contact_id"] == lena_mail["contact_id"]

    # Decline the spam through GraphQL.
    declined = await nina.gql("""mutation($id: ID!) { declineInboxItem(id: $id, reason: "spam")
        { ... on InboxItem { status declineReason } } }""", {"id": mailed["inbox_item_id"]})
    assert declined["data"]["declineInboxItem"] == {"status": "declined",
                                                    "declineReason": "spam"}

    # Lena's email card is the caller: link the call's lead to it (the caller's card merges).
    linked = await nina.post(f"/api/v1/inbox/{rang['inbox_item_id']}/link",
                             json={"contact_id": lena_mail["contact_id"]})
    assert linked.status_code == 200, linked.text
    card = (await nina.get(f"/api/v1/contacts/{lena_mail['contact_id']}")).json()
    assert {p["e164"] for p in card["phones"]} == {"+79031112233"}
    assert {e["email"] for e in card["emails"]} == {"lena@example.com"}
    # From now on her calls and her emails find this one card.
    again = (await call(client, pbx, call_id=f"c-{uuid.uuid4().hex}",
                        **{"from": "89031112233"}, status="ringing")).json()
    assert again["contact_id"] == card["id"] and again["inbox_item_id"] is None
    # And her WhatsApp message too; a stranger's SMS is a new lead in the same inbox.
    bridge = await new_integration(ws, kind="messaging")
    whatsapp = (await post_signed(client, "/api/v1/integrations/messages/inbound", bridge, {
        "channel": "whatsapp", "message_id": f"wa-{uuid.uuid4().hex}",
        "from": {"phone": "+7 903 111-22-33"}, "text": "Is Saturday fine?"})).json()
    assert whatsapp["contact_id"] == card["id"] and whatsapp["inbox_item_id"] is None
    sms = (await post_signed(client, "/api/v1/integrations/messages/inbound", bridge, {
        "channel": "sms", "message_id": f"sms-{uuid.uuid4().hex}",
        "from": {"phone": "+7 916 000-00-01"}, "text": "Need a quote"})).json()
    leads = (await nina.get("/api/v1/inbox", params={"status": "new"})).json()["data"]
    assert sms["inbox_item_id"] in {i["id"] for i in leads}

    # Accept her email lead as a deal through GraphQL.
    accepted = await nina.gql("""mutation($id: ID!) { acceptInboxItem(id: $id,
        input: {title: "Balcony glazing"}) { ... on InboxItem { status dealId } } }""",
                              {"id": lena_mail["inbox_item_id"]})
    assert accepted["data"]["acceptInboxItem"]["status"] == "accepted"
    assert accepted["data"]["acceptInboxItem"]["dealId"]

    # Nina calls her back: the first response is recorded on her leads.
    await nina.post("/api/v1/activities", json={
        "type": "call", "direction": "out", "contact_id": card["id"],
        "call_status": "answered", "to_number": "+79031112233"})
    answered = await nina.gql("""{ inbox(first: 50, channel: "email") { edges { node {
        id status firstResponseAt firstResponseSeconds } } } }""")
    nodes = {e["node"]["id"]: e["node"] for e in answered["data"]["inbox"]["edges"]}
    assert nodes[lena_mail["inbox_item_id"]]["firstResponseAt"] is not None
    assert nodes[lena_mail["inbox_item_id"]]["firstResponseSeconds"] >= 0
