"""SMS and messenger messages from a signed messaging integration: the sender's card is
found by phone (any format), email or the handle of an earlier message, or made with an inbox
lead; each message lands on the timeline once, and the inbox shows new senders."""

from __future__ import annotations

import uuid

import httpx
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from tests.api.rest.conftest import assert_problem, error_locs, new_contact
from tests.api.rest.signed import new_integration, post_signed
from tests.conftest import Workspace

URL = "/api/v1/integrations/messages/inbound"


def mid() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


async def test_a_known_customer_writes_by_whatsapp(client: httpx.AsyncClient,
                                                   ws: Workspace) -> None:
    known = await new_contact(ws, full_name="Ivan Petrov", phones=["+7 912 345 67 89"])
    bridge = await new_integration(ws, kind="messaging")
    message_id = mid()
    payload = {"channel": "whatsapp", "message_id": message_id,
               "from": {"phone": "8 (912) 345-67-89", "name": "Ivan"},
               "to": "+74950000000", "text": "Are my windows ready?"}
    first = await post_signed(client, URL, bridge, payload)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["contact_id"], body["contact_created"], body["inbox_item_id"]) == (
        known["id"], False, None)
    again = await post_signed(client, URL, bridge, payload)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["activity_id"] == body["activity_id"]
    timeline = (await ws.get(f"/api/v1/contacts/{known['id']}/timeline")).json()["data"]
    messages = [e for e in timeline if e["kind"] == "activity"]
    assert len(messages) == 1
    activity = (await ws.get(f"/api/v1/activities/{body['activity_id']}")).json()
    assert (activity["type"], activity["direction"], activity["channel"], activity["body"]) == (
        "message", "in", "whatsapp", "Are my windows ready?")


async def test_a_new_telegram_sender_is_a_lead_and_is_recognized_next_time(
        client: httpx.AsyncClient, ws: Workspace) -> None:
    bridge = await new_integration(ws, kind="messaging")
    sender = {"handle": "tg:5550001", "name": "Мария"}
    first = await post_signed(client, URL, bridge, {
        "channel": "telegram", "message_id": mid(), "from": sender, "text": "Сколько стоит?"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["contact_created"] is True and body["inbox_item_id"] is not None
    item = (await ws.get(f"/api/v1/inbox/{body['inbox_item_id']}")).json()
    assert (item["channel"], item["status"], item["contact_id"]) == (
        "message", "new", body["contact_id"])
    card = (await ws.get(f"/api/v1/contacts/{body['contact_id']}")).json()
    assert card["full_name"] == "Мария" and card["source"] == "telegram"
    second = await post_signed(client, URL, bridge, {
        "channel": "telegram", "message_id": mid(), "from": sender, "text": "Ау?"})
    assert second.status_code == 201, second.text
    assert second.json()["contact_id"] == body["contact_id"]
    assert second.json()["contact_created"] is False


async def test_an_sms_from_an_unknown_number_makes_a_card_and_a_lead(
        client: httpx.AsyncClient, ws: Workspace) -> None:
    gateway = await new_integration(ws, kind="messaging")
    sent = await post_signed(client, URL, gateway, {
        "channel": "sms", "message_id": mid(), "from": {"phone": "+374 91 123456"},
        "text": "Call me back please"})
    assert sent.status_code == 201, sent.text
    item = (await ws.get(f"/api/v1/inbox/{sent.json()['inbox_item_id']}")).json()
    assert item["channel"] == "sms"
    activity = (await ws.get(f"/api/v1/activities/{sent.json()['activity_id']}")).json()
    assert (activity["type"], activity["channel"]) == ("sms", "sms")


async def test_bad_messages_are_refused_and_write_nothing(client: httpx.AsyncClient,
                                                          ws: Workspace,
                                                          other_ws: Workspace) -> None:
    bridge = await new_integration(ws, kind="messaging")
    phone_line = await new_integration(ws, kind="telephony")
    good = {"channel": "sms", "message_id": mid(), "from": {"phone": "+79123456789"}}
    no_sender = await post_signed(client, URL, bridge, {**good, "from": {"name": "x"}})
    assert_problem(no_sender, 422)
    bad_phone = await post_signed(client, URL, bridge, {**good, "from": {"phone": "123"}})
    assert_problem(bad_phone, 422)
    assert ["body", "from", "phone"] in error_locs(bad_phone)
    wrong_kind = await post_signed(client, URL, phone_line, good)
    assert_problem(wrong_kind, 401)
    unsigned = await client.post(URL, json=good)
    assert_problem(unsigned, 401)
    other = await new_integration(other_ws, kind="messaging")
    forged = await post_signed(client, URL, other, good, integration_id=bridge["id"])
    assert_problem(forged, 401)
    inbox = (await ws.get("/api/v1/inbox", params={"channel": "sms"})).json()["data"]
    assert inbox == []


async def test_an_address_that_keeps_failing_the_signature_is_turned_away(
        settings: Settings, ws: Workspace) -> None:
    strict = create_app(settings.model_copy(update={"inbound_refusals_per_ip_per_minute": 5}))
    bridge = await new_integration(ws, kind="messaging")
    good = {"channel": "sms", "message_id": mid(), "from": {"phone": "+79123456789"}}
    prober_ip = f"198.51.100.{uuid.uuid4().int % 250}"
    async with LifespanManager(strict):
        async with _client(strict, prober_ip) as prober:
            for _ in range(5):
                assert_problem(await prober.post(URL, json=good), 401)
            blocked = await prober.post(URL, json=good)
            assert_problem(blocked, 429)
            assert int(blocked.headers["retry-after"]) > 0
            # Even a correctly signed request from that address waits out the minute …
            assert_problem(await post_signed(prober, URL, bridge, good), 429)
        # … while the bridge's own address is not affected.
        async with _client(strict, f"203.0.113.{uuid.uuid4().int % 250}") as real:
            assert (await post_signed(real, URL, bridge, good)).status_code == 201


def _client(app: object, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://relata.test")
