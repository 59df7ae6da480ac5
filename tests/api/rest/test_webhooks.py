"""REST /api/v1/webhooks: subscriptions, validation, the secret shown once, tenancy, secret
rotation, test pings against a real receiver, and the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.shared.clock import clock
from app.integrations import signing
from tests.api.rest.conftest import act_as, assert_problem, error_locs, new_user
from tests.conftest import Workspace
from tests.workers.webhook_receiver import Answer, WebhookReceiver, webhook_receiver

__all__ = ["webhook_receiver"]


async def new_webhook(ws: Workspace, url: str, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/webhooks", json={"url": url, "events": ["*"], **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_read_list_update_delete(ws: Workspace,
                                              webhook_receiver: WebhookReceiver) -> None:
    created = await new_webhook(ws, webhook_receiver.url("/crud"),
                                events=["contact.created", "deal.stage_changed"],
                                filters={"entity_types": ["contact", "deal"]},
                                description="ERP sync")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "active" and created["failure_threshold"] == 20
    assert created["filters"] == {"entity_types": ["contact", "deal"]}
    got = await ws.get(f"/api/v1/webhooks/{created['id']}")
    assert got.status_code == 200
    assert "secret" not in got.json() and created["secret"] not in got.text
    listed = (await ws.get("/api/v1/webhooks")).json()["data"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert created["secret"] not in str(listed)
    patched = await ws.patch(f"/api/v1/webhooks/{created['id']}",
                             json={"status": "paused", "events": ["contact.updated"]},
                             headers={"If-Match": got.headers["etag"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "paused" and patched.json()["version"] == 2
    assert (await ws.patch(f"/api/v1/webhooks/{created['id']}", json={"description": "x"},
                           headers={"If-Match": '"1"'})).status_code == 412
    # The history (the event log) never carries the secret either.
    events = (await ws.get("/api/v1/events", params={"types": "webhook.created"})).json()
    assert created["secret"] not in str(events)
    assert (await ws.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    assert_problem(await ws.get(f"/api/v1/webhooks/{created['id']}"), 404)


@pytest.mark.parametrize("body,loc", [
    ({"url": "http://169.254.169.254/latest/meta-data/"}, ["body", "url"]),
    ({"url": "http://10.0.0.7/hook"}, ["body", "url"]),
    ({"url": "http://192.168.1.1/hook"}, ["body", "url"]),
    ({"url": "http://[fd00:ec2::254]/"}, ["body", "url"]),
    ({"url": "http://2130706433/"}, ["body", "url"]),
    ({"url": "ftp://example.com/"}, ["body", "url"]),
    ({"url": "https://user:pass@example.com/"}, ["body", "url"]),
    ({"url": "https://no-such-host.invalid/"}, ["body", "url"]),
    ({"events": []}, ["body", "events"]),
    ({"events": ["Contact Created"]}, ["body", "events", 0]),
    ({"events": ["*", "contact.created"]}, ["body", "events"]),
    ({"filters": {"pipeline_ids": ["00000000-0000-0000-0000-000000000001"]}},
     ["body", "filters", "pipeline_ids", 0]),
    ({"filters": {"colour": ["red"]}}, ["body", "filters", "colour"]),
    ({"failure_threshold": 0}, ["body", "failure_threshold"]),
])
async def test_invalid_subscriptions_are_422_with_the_location(
        shared_ws: Workspace, body: dict[str, Any], loc: list[Any]) -> None:
    request = {"url": "http://127.0.0.1:9/hook", "events": ["*"], **body}
    response = await shared_ws.post("/api/v1/webhooks", json=request)
    assert_problem(response, 422)
    assert loc in error_locs(response), response.text


async def test_private_url_refused_on_update_too(ws: Workspace,
                                                 webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/upd"))
    response = await ws.patch(f"/api/v1/webhooks/{sub['id']}",
                              json={"url": "http://169.254.169.254/"})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "url"]]
    assert "metadata" in response.json()["errors"][0]["msg"]
    assert (await ws.get(f"/api/v1/webhooks/{sub['id']}")).json()["url"] == sub["url"]


async def test_rules_call_webhook_urls_follow_the_same_rules(ws: Workspace) -> None:
    response = await ws.post("/api/v1/rules", json={
        "name": "leak", "trigger": {"type": "record_created", "object": "contact"},
        "actions": [{"type": "call_webhook", "url": "http://169.254.169.254/latest/"}]})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "actions", 0, "url"]]


async def test_another_workspace_sees_nothing(ws: Workspace, other_ws: Workspace,
                                              webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/mine"))
    for response in (await other_ws.get(f"/api/v1/webhooks/{sub['id']}"),
                     await other_ws.patch(f"/api/v1/webhooks/{sub['id']}",
                                          json={"status": "paused"}),
                     await other_ws.delete(f"/api/v1/webhooks/{sub['id']}"),
                     await other_ws.post(f"/api/v1/webhooks/{sub['id']}/test"),
                     await other_ws.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret"),
                     await other_ws.get(f"/api/v1/webhooks/{sub['id']}/deliveries"),
                     await other_ws.post(f"/api/v1/webhooks/{sub['id']}/replay", json={})):
        assert_problem(response, 404)
    ping = (await ws.post(f"/api/v1/webhooks/{sub['id']}/test")).json()
    assert_problem(await other_ws.get(f"/api/v1/webhooks/deliveries/{ping['delivery_id']}"),
                   404)
    assert (await other_ws.get("/api/v1/webhooks")).json()["data"] == []


async def test_members_read_admins_write(ws: Workspace,
                                         webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/roles"))
    agent = await act_as(ws, await new_user(ws, "agent"))
    assert (await agent.get(f"/api/v1/webhooks/{sub['id']}")).status_code == 200
    assert_problem(await agent.post("/api/v1/webhooks", json={
        "url": webhook_receiver.url("/x"), "events": ["*"]}), 403)
    assert_problem(await agent.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret"), 403)
    assert_problem(await agent.get(f"/api/v1/webhooks/{sub['id']}/deliveries"), 403)


async def test_test_ping_signs_and_reports_the_receivers_answer(
        ws: Workspace, webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/ping"))
    webhook_receiver.answer("/ping", Answer(status=200), Answer(status=503, delay=0.05))
    ok = await ws.post(f"/api/v1/webhooks/{sub['id']}/test")
    assert ok.status_code == 200, ok.text
    assert ok.json()["success"] is True and ok.json()["status_code"] == 200
    assert ok.json()["latency_ms"] >= 0
    [request] = webhook_receiver.at("/ping")
    assert request.json["type"] == "webhook.test"
    assert request.headers["webhook-id"] == ok.json()["delivery_id"]
    assert signing.verify([sub["secret"]], request.headers, request.body,
                          now=datetime.now(UTC)) == ok.json()["delivery_id"]
    failed = (await ws.post(f"/api/v1/webhooks/{sub['id']}/test")).json()
    assert failed["success"] is False and failed["status_code"] == 503
    assert failed["latency_ms"] >= 50 and failed["error"] == "HTTP 503"
    log = (await ws.get(f"/api/v1/webhooks/{sub['id']}/deliveries")).json()["data"]
    assert [d["status"] for d in log] == ["failed", "delivered"]  # newest first
    [attempt] = log[0]["attempt_log"]
    assert attempt["response_status"] == 503 and attempt["latency_ms"] >= 50
    assert attempt["request_headers"]["webhook-id"] == failed["delivery_id"]
    assert sub["secret"] not in str(log)
    one = (await ws.get(f"/api/v1/webhooks/deliveries/{failed['delivery_id']}")).json()
    assert one["payload"]["type"] == "webhook.test"
    assert_problem(await ws.post(
        f"/api/v1/webhooks/deliveries/{failed['delivery_id']}/redeliver"), 409)


async def test_test_ping_to_a_dead_port_says_why(ws: Workspace) -> None:
    sub = await new_webhook(ws, "http://127.0.0.1:9/nothing-listens")
    result = (await ws.post(f"/api/v1/webhooks/{sub['id']}/test")).json()
    assert result["success"] is False and result["status_code"] is None
    assert "ConnectError" in result["error"]


async def test_rotation_overlap_signs_with_both_then_only_the_new(
        ws: Workspace, webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/rotate"))
    old = sub["secret"]
    start = datetime.now(UTC).replace(microsecond=0)
    try:
        clock.freeze(start)
        rotated = await ws.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret",
                                json={"overlap_seconds": 3600})
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old and new.startswith("whsec_")
        assert datetime.fromisoformat(rotated.json()["previous_secret_expires_at"]) == \
            start + timedelta(hours=1)
        assert new not in (await ws.get(f"/api/v1/webhooks/{sub['id']}")).text
        await ws.post(f"/api/v1/webhooks/{sub['id']}/test")
        during = webhook_receiver.at("/rotate")[-1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            signing.verify([secret], during.headers, during.body, now=start)
        clock.freeze(start + timedelta(hours=1, seconds=1))
        await ws.post(f"/api/v1/webhooks/{sub['id']}/test")
        after = webhook_receiver.at("/rotate")[-1]
        later = start + timedelta(hours=1, seconds=1)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        signing.verify([new], after.headers, after.body, now=later)
        with pytest.raises(signing.SignatureError):
            signing.verify([old], after.headers, after.body, now=later)
    finally:
        clock.freeze(None)
    # The default overlap is 24 hours.
    default = (await ws.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret")).json()
    expires = datetime.fromisoformat(default["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)


async def test_replay_rejects_a_bad_cursor(ws: Workspace,
                                           webhook_receiver: WebhookReceiver) -> None:
    sub = await new_webhook(ws, webhook_receiver.url("/badcursor"))
    response = await ws.post(f"/api/v1/webhooks/{sub['id']}/replay",
                             json={"after": "not a cursor"})
    assert_problem(response, 422)
    response = await ws.post(f"/api/v1/webhooks/{sub['id']}/replay", json={"limit": 5000})
    assert error_locs(response) == [["body", "limit"]]


async def test_graphql_create_query_test_and_rotate(
        ws: Workspace, webhook_receiver: WebhookReceiver) -> None:
    created = await ws.gql("""mutation($url: String!) {
      createWebhook(input: {url: $url, events: ["contact.created"]}) {
        __typename ... on WebhookWithSecret { secret webhook { id status events } }
        ... on ValidationError { errors { loc msg } } } }""",
                           {"url": webhook_receiver.url("/gql")})
    payload = created["data"]["createWebhook"]
    assert payload["__typename"] == "WebhookWithSecret", created
    webhook_id, secret = payload["webhook"]["id"], payload["secret"]
    refused = await ws.gql("""mutation { createWebhook(input: {url: "http://10.0.0.1/",
      events: ["*"]}) { __typename ... on ValidationError { errors { loc } } } }""")
    assert refused["data"]["createWebhook"]["errors"][0]["loc"] == ["input", "url"]
    ping = await ws.gql("""mutation($id: ID!) { testWebhook(id: $id) {
      ... on WebhookTestResult { success statusCode deliveryId } } }""", {"id": webhook_id})
    assert ping["data"]["testWebhook"]["success"] is True
    request = webhook_receiver.at("/gql")[-1]
    signing.verify([secret], request.headers, request.body, now=datetime.now(UTC))
    listed = await ws.gql("""query($id: ID!) { webhooks { edges { node { id } } }
      webhook(id: $id) { url deliveries { edges { node { id eventType status } } } } }""",
                          {"id": webhook_id})
    assert listed["data"]["webhooks"]["edges"] == [{"node": {"id": webhook_id}}]
    assert listed["data"]["webhook"]["deliveries"]["edges"][0]["node"] == {
        "id": ping["data"]["testWebhook"]["deliveryId"], "eventType": "webhook.test",
        "status": "delivered"}
    assert secret not in str(listed)
    rotated = await ws.gql("""mutation($id: ID!) { rotateWebhookSecret(id: $id) {
      ... on WebhookWithSecret { secret webhook { previousSecretExpiresAt } } } }""",
                           {"id": webhook_id})
    assert rotated["data"]["rotateWebhookSecret"]["secret"] != secret
    deleted = await ws.gql("""mutation($id: ID!) { deleteWebhook(id: $id) {
      __typename } }""", {"id": webhook_id})
    assert deleted["data"]["deleteWebhook"]["__typename"] == "DeleteSuccess"
