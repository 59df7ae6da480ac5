"""Outbound webhooks through the real relay and arq worker (tests/workers/harness.py) to a
real HTTP receiver: signing, retries, Retry-After, 410, pausing, redirects, timeouts,
filters, a sender that dies mid-send, DNS rebinding, redelivery and replay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.domain.webhooks.models import WebhookDelivery
from app.integrations import http_guard, signing
from app.workers.webhooks import deliver_webhooks
from tests.api.rest.conftest import act_as, events_since, new_contact, new_user
from tests.api.rest.test_pipelines import default_pipeline, new_deal, new_pipeline, stage_id
from tests.conftest import Workspace
from tests.workers.harness import Automation
from tests.workers.webhook_receiver import Answer, WebhookReceiver, webhook_receiver

__all__ = ["webhook_receiver"]

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def path() -> str:
    return f"/hook/{uuid.uuid4().hex[:8]}"


async def subscribe(ws: Workspace, url: str, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/webhooks", json={"url": url, "events": ["*"], **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def deliver(auto: Automation, ws: Workspace) -> int:
    """The relay and handle_event, then the sender's pass over this workspace."""
    await auto.drain()
    return await deliver_webhooks(auto.ctx, [uuid.UUID(ws.id)])


async def deliveries(ws: Workspace, sub: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = await ws.get(f"/api/v1/webhooks/{sub['id']}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def webhook(ws: Workspace, sub: dict[str, Any]) -> dict[str, Any]:
    return (await ws.get(f"/api/v1/webhooks/{sub['id']}")).json()  # type: ignore[no-any-return]


async def test_a_new_contact_is_one_signed_delivery(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver, frozen: Any) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    frozen(START)
    contact = await new_contact(ws, full_name="Ivan Petrov")
    await deliver(auto, ws)
    await deliver(auto, ws)  # nothing twice
    [request] = webhook_receiver.at(where)
    assert signing.verify([sub["secret"]], request.headers, request.body, now=START) == \
        request.headers["webhook-id"]
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["type"] == "contact.created" and body["timestamp"] == "2027-03-01T09:00:00Z"
    data = body["data"]
    assert data["entity_type"] == "contact" and data["entity_id"] == contact["id"]
    assert data["after"]["full_name"] == "Ivan Petrov" and data["before"] is None
    assert data["actor"].startswith("api_key:") and data["cursor"]
    events = await events_since(ws, None, expect=1, types="contact.created")
    assert data["id"] == events["data"][0]["id"]
    [logged] = await deliveries(ws, sub)
    assert logged["id"] == request.headers["webhook-id"] and logged["status"] == "delivered"
    assert logged["attempts"] == 1 and logged["attempt_log"][0]["response_status"] == 200
    assert (await webhook(ws, sub))["last_success_at"] is not None


async def test_failures_retry_with_the_same_webhook_id_on_schedule(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver, frozen: Any) -> None:
    where = path()
    await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(where, Answer(500), Answer(500))
    frozen(START)
    await new_contact(ws, full_name="Retry")
    await deliver(auto, ws)  # 500
    frozen(START + timedelta(seconds=4))
    await deliver(auto, ws)  # not due yet
    assert len(webhook_receiver.at(where)) == 1
    frozen(START + timedelta(seconds=6))
    await deliver(auto, ws)  # 500 again; next in 5 minutes
    frozen(START + timedelta(seconds=6, minutes=4))
    await deliver(auto, ws)
    assert len(webhook_receiver.at(where)) == 2
    frozen(START + timedelta(seconds=7, minutes=5))
    await deliver(auto, ws)  # 200
    frozen(START + timedelta(days=4))
    await deliver(auto, ws)  # nothing left
    requests = webhook_receiver.at(where)
    assert len(requests) == 3 and len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1, "the same body every time"


async def test_retry_after_is_honoured_in_seconds_and_as_a_date(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver, frozen: Any) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(
        where, Answer(429, {"Retry-After": "120"}),
        Answer(503, {"Retry-After": format_datetime(START + timedelta(hours=1), usegmt=True)}),
        Answer(503, {"Retry-After": "999999999"}))
    frozen(START)
    await new_contact(ws, full_name="Later")
    await deliver(auto, ws)
    [d] = await deliveries(ws, sub)
    assert datetime.fromisoformat(d["next_attempt_at"]) == START + timedelta(seconds=120)
    frozen(START + timedelta(seconds=121))
    await deliver(auto, ws)
    [d] = await deliveries(ws, sub)
    assert datetime.fromisoformat(d["next_attempt_at"]) == START + timedelta(hours=1)
    frozen(START + timedelta(hours=1))
    await deliver(auto, ws)
    [d] = await deliveries(ws, sub)  # capped at 6 hours
    assert datetime.fromisoformat(d["next_attempt_at"]) == START + timedelta(hours=7)
    assert [a["response_status"] for a in d["attempt_log"]] == [429, 503, 503]


async def test_410_gone_disables_the_subscription(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(where, Answer(410))
    await new_contact(ws, full_name="Gone")
    await deliver(auto, ws)
    state = await webhook(ws, sub)
    assert state["status"] == "disabled" and "410" in state["status_reason"]
    [d] = await deliveries(ws, sub)
    assert d["status"] == "failed" and d["last_status_code"] == 410
    await new_contact(ws, full_name="Not sent")
    await deliver(auto, ws)
    assert len(webhook_receiver.at(where)) == 1
    events = await events_since(ws, None, expect=1, types="webhook.disabled")
    assert [e["entity_id"] for e in events["data"]] == [sub["id"]]


async def test_a_failure_streak_pauses_and_tells_the_owner_and_nothing_is_lost(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver, frozen: Any) -> None:
    where = path()
    admin = await act_as(ws, await new_user(ws, "admin", "Hook Owner"))
    sub = await subscribe(admin, webhook_receiver.url(where), events=["contact.created"],
                          failure_threshold=3)
    webhook_receiver.answer(where, *[Answer(500)] * 6)
    frozen(START)
    for i in range(3):
        await new_contact(ws, full_name=f"Streak {i}")
    await deliver(auto, ws)
    state = await webhook(ws, sub)
    assert state["failure_streak"] == 3 and state["status"] == "active", \
        "a burst of failures is not yet a streak worth pausing (it must last an hour)"
    frozen(START + timedelta(minutes=61))
    await deliver(auto, ws)  # the three retries fail too: 6 in a row over an hour
    state = await webhook(ws, sub)
    assert state["status"] == "paused" and state["failure_streak"] == 6
    notes = (await admin.get("/api/v1/notifications")).json()["data"]
    assert [(n["type"], n["entity_id"]) for n in notes] == [("webhook", sub["id"])]
    assert "paused" in notes[0]["title"]
    # Paused: new events wait, nothing is sent, nothing is dropped.
    frozen(START + timedelta(hours=30))
    await new_contact(ws, full_name="While paused")
    await deliver(auto, ws)
    assert len(webhook_receiver.at(where)) == 6
    resumed = await ws.patch(f"/api/v1/webhooks/{sub['id']}", json={"status": "active"})
    assert resumed.json()["failure_streak"] == 0
    frozen(START + timedelta(days=3))
    await deliver(auto, ws)
    got = {r.json["data"]["after"]["full_name"] for r in webhook_receiver.at(where)[6:]}
    assert got == {"Streak 0", "Streak 1", "Streak 2", "While paused"}
    assert {d["status"] for d in await deliveries(ws, sub)} == {"delivered"}


async def test_redirects_are_not_followed(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    where, elsewhere = path(), path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(where, Answer(302, {"Location": webhook_receiver.url(elsewhere)}))
    await new_contact(ws, full_name="Moved")
    await deliver(auto, ws)
    assert webhook_receiver.at(elsewhere) == []
    [d] = await deliveries(ws, sub)
    assert d["status"] == "pending" and d["last_status_code"] == 302
    assert "redirects are not followed" in d["last_error"]


async def test_a_slow_receiver_times_out(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(where, Answer(200, delay=3))
    auto.ctx["settings"] = auto.ctx["settings"].model_copy(
        update={"webhook_timeout_seconds": 0.5})
    await new_contact(ws, full_name="Slow")
    started = asyncio.get_running_loop().time()
    await deliver(auto, ws)
    assert asyncio.get_running_loop().time() - started < 2.5
    [d] = await deliveries(ws, sub)
    assert d["status"] == "pending" and "timed out" in d["last_error"]
    assert d["attempt_log"][0]["latency_ms"] >= 400


async def test_filters_select_by_entity_pipeline_stage_and_fields_changed(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    repairs = await new_pipeline(ws)
    quote = stage_id(repairs, "Quote")
    paths = {name: path() for name in ("pipeline", "stage", "name", "contacts")}
    await subscribe(ws, webhook_receiver.url(paths["pipeline"]),
                    events=["deal.created", "deal.updated", "deal.stage_changed"],
                    filters={"pipeline_ids": [repairs["id"]]})
    await subscribe(ws, webhook_receiver.url(paths["stage"]), events=["deal.stage_changed"],
                    filters={"stage_ids": [quote]})
    await subscribe(ws, webhook_receiver.url(paths["name"]), events=["contact.updated"],
                    filters={"fields_changed": ["full_name"]})
    await subscribe(ws, webhook_receiver.url(paths["contacts"]), events=["*"],
                    filters={"entity_types": ["contact"]})
    contact = await new_contact(ws, full_name="Olga")
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"source": "referral"})
    await ws.patch(f"/api/v1/contacts/{contact['id']}", json={"full_name": "Olga S."})
    deal = await new_deal(ws, pipeline_id=repairs["id"], title="Roof")
    await ws.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "1000.00"})
    moved = await ws.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": quote})
    assert moved.status_code == 200, moved.text
    sales = await default_pipeline(ws)
    other = await new_deal(ws, pipeline_id=sales["id"], title="Windows")
    await ws.post(f"/api/v1/deals/{other['id']}/move",
                  json={"stage_id": stage_id(sales, sales["stages"][1]["name"])})
    await deliver(auto, ws)

    def seen(name: str) -> list[tuple[str, str]]:
        return [(r.json["type"], r.json["data"]["entity_id"])
                for r in webhook_receiver.at(paths[name])]
    assert sorted(seen("pipeline")) == sorted([("deal.created", deal["id"]),
                                               ("deal.updated", deal["id"]),
                                               ("deal.stage_changed", deal["id"])])
    assert seen("stage") == [("deal.stage_changed", deal["id"])]
    [renamed] = webhook_receiver.at(paths["name"])
    assert renamed.json["data"]["after"]["full_name"] == "Olga S."
    assert "full_name" in renamed.json["data"]["changed"]
    assert {t for t, _ in seen("contacts")} == {"contact.created", "contact.updated"}
    assert {e for _, e in seen("contacts")} == {contact["id"]}


async def test_a_sender_killed_mid_send_sends_again_with_the_same_webhook_id(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver, frozen: Any) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    webhook_receiver.answer(where, Answer(200, delay=2))
    frozen(START)
    await new_contact(ws, full_name="Crash")
    await auto.drain()
    sender = asyncio.create_task(deliver_webhooks(auto.ctx, [uuid.UUID(ws.id)]))
    for _ in range(100):  # the request is on the wire
        if webhook_receiver.at(where):
            break
        await asyncio.sleep(0.02)
    sender.cancel()  # the worker dies: nothing is settled
    with pytest.raises(asyncio.CancelledError):
        await sender
    [d] = await deliveries(ws, sub)
    assert d["status"] == "sending" and d["attempts"] == 1
    frozen(START + timedelta(minutes=1))
    await deliver(auto, ws)  # the lease still holds
    assert len(webhook_receiver.at(where)) == 1
    frozen(START + timedelta(minutes=2, seconds=1))
    await deliver(auto, ws)
    first, second = webhook_receiver.at(where)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == d["id"]
    [d] = await deliveries(ws, sub)
    assert d["status"] == "delivered" and d["attempts"] == 2


async def test_a_name_that_rebinds_to_a_private_address_at_send_time_is_refused(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    port = int(webhook_receiver.base.rsplit(":", 1)[1])
    answers = ["93.184.216.34"]  # public when saved...

    async def dns(host: str, _port: int) -> list[str]:
        assert host == "hooks.rebind.test"
        return [answers[0]]
    http_guard.configure(allow=[], resolver=dns)
    try:
        sub = await subscribe(ws, f"http://hooks.rebind.test:{port}/rebind",
                              events=["contact.created"])
        answers[0] = "127.0.0.1"  # ...loopback when sent
        await new_contact(ws, full_name="Rebind")
        await deliver(auto, ws)
    finally:
        http_guard._policy = None  # back to the settings' policy
    assert webhook_receiver.at("/rebind") == []
    [d] = await deliveries(ws, sub)
    assert d["status"] == "pending" and d["last_error"].startswith("refused:")
    assert "127.0.0.1" in d["last_error"]


async def test_redeliver_and_replay_since_a_cursor(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    for i in range(3):
        await new_contact(ws, full_name=f"Replay {i}")
    await deliver(auto, ws)
    first_round = webhook_receiver.at(where)
    ids = {r.json["data"]["after"]["full_name"]: r.headers["webhook-id"] for r in first_round}
    assert len(ids) == 3
    # Redeliver one: the same webhook-id and body, now.
    redelivered = await ws.post(f"/api/v1/webhooks/deliveries/{ids['Replay 0']}/redeliver")
    assert redelivered.status_code == 200 and redelivered.json()["status"] == "pending"
    await deliver(auto, ws)
    again = webhook_receiver.at(where)[3]
    assert again.headers["webhook-id"] == ids["Replay 0"]
    # Replay everything after the first contact's event, one event a page.
    # (Deliveries go out concurrently: the receiver's order is not the events' order.)
    [first] = [r for r in first_round if r.json["data"]["after"]["full_name"] == "Replay 0"]
    cursor = first.json["data"]["cursor"]
    # The log serves an event once every older transaction on the server has finished.
    assert len((await events_since(ws, cursor, expect=2, types="contact.created"))["data"]) == 2
    replay = await ws.post(f"/api/v1/webhooks/{sub['id']}/replay",
                           json={"after": cursor, "limit": 1})
    page = replay.json()
    assert page["scheduled"] == 1 and page["has_more"] is True
    rest = (await ws.post(f"/api/v1/webhooks/{sub['id']}/replay",
                          json={"after": page["next_cursor"], "limit": 100})).json()
    assert rest["scheduled"] == 1 and rest["has_more"] is False
    repeat = (await ws.post(f"/api/v1/webhooks/{sub['id']}/replay",
                            json={"after": cursor})).json()
    assert repeat["scheduled"] == 0 and repeat["already_pending"] == 2, "idempotent"
    await deliver(auto, ws)
    replayed = webhook_receiver.at(where)[4:]
    assert sorted(r.headers["webhook-id"] for r in replayed) == sorted(
        [ids["Replay 1"], ids["Replay 2"]])
    # An event from before the subscription existed is replayed too (a new delivery).
    early = path()
    late = await subscribe(ws, webhook_receiver.url(early), events=["contact.created"])
    assert (await ws.post(f"/api/v1/webhooks/{late['id']}/replay", json={})).json()[
        "scheduled"] == 3
    await deliver(auto, ws)
    assert len(webhook_receiver.at(early)) == 3


async def test_one_row_per_subscription_and_event(
        ws: Workspace, auto: Automation, webhook_receiver: WebhookReceiver) -> None:
    """The unique (workspace, subscription, event) delivery: handling an event again (a
    redispatched job) creates nothing more."""
    from app.workers.events import handle_event

    where = path()
    sub = await subscribe(ws, webhook_receiver.url(where), events=["contact.created"])
    await new_contact(ws, full_name="Once")
    await deliver(auto, ws)
    async with unit_of_work(auto.sessions, uuid.UUID(ws.id)) as session:
        [row] = (await session.execute(select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == uuid.UUID(sub["id"])))).scalars().all()
        event_id = row.event_id
        from app.domain.outbox.models import Event
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
        event.handled_at = None  # as if the job ran again before its mark stuck
    await handle_event(auto.ctx, ws.id, str(event_id))
    await deliver(auto, ws)
    assert len(await deliveries(ws, sub)) == 1 and len(webhook_receiver.at(where)) == 1
