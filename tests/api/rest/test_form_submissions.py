"""Public form submissions, as a website (or a site's backend) sends them: what lands in
Relata, and what is refused — CORS, the honeypot, rate limits, size caps, bad values.

Each test posts as its own visitor IP (the per-IP limit is shared by every form)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import to_asyncpg_url
from app.domain.forms import plain
from app.domain.shared.clock import clock
from tests.api.rest.conftest import assert_problem, error_locs, new_custom_field, new_user
from tests.api.rest.test_forms import FIELDS
from tests.api.rest.test_scoring import configure
from tests.api.rest.test_tasks import new_team
from tests.conftest import Workspace, make_workspace
from tests.workers.test_rules_worker import default_stages

SITE = "https://okna.example"


def visitor_for(app: Any) -> httpx.AsyncClient:
    ip = f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://relata.test")


@pytest.fixture
async def visitor(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with visitor_for(app) as client:
        yield client


async def new_form(ws: Workspace, **body: Any) -> dict[str, Any]:
    response = await ws.post("/api/v1/forms", json={
        "name": "Order", "fields": FIELDS, "allowed_origins": [SITE], **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def submit(client: httpx.AsyncClient, form: dict[str, Any], **kw: Any) -> httpx.Response:
    return await client.post(form["submit_url"], **kw)


async def submissions_of(ws: Workspace, form: dict[str, Any]) -> list[dict[str, Any]]:
    response = await ws.get("/api/v1/form-submissions", params={"form_id": form["id"]})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def lookup(ws: Workspace, **params: str) -> httpx.Response:
    return await ws.get("/api/v1/contacts/lookup", params=params)


async def deals_of(ws: Workspace, contact_id: str) -> list[dict[str, Any]]:
    return (await ws.get("/api/v1/deals", params={"contact_id": contact_id})).json()["data"]  # type: ignore[no-any-return]


async def events(ws: Workspace, types: str, expect: int = 1) -> list[dict[str, Any]]:
    """The log serves an event once older transactions have ended: poll as a client does."""
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = (await ws.get("/api/v1/events", params={"types": types})).json()["data"]
        if len(rows) >= expect:
            break
        await asyncio.sleep(0.05)
    return rows


async def test_a_request_from_the_site_becomes_a_card_a_deal_and_an_accepted_lead(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    masha, petr = await new_user(ws, "manager", "Masha"), await new_user(ws, "manager", "Petr")
    sales = await new_team(ws, "Sales", None, [masha, petr])
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"],
                          owner={"strategy": "round_robin", "team_id": sales["id"]})
    response = await submit(visitor, form, json={
        "name": "Ivan Petrov", "phone": "8 (495) 123-45-67", "wish": "3 windows, white",
        "utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring",
        "referrer": "https://yandex.ru/search", "page_url": f"{SITE}/order?utm_source=yandex"},
        headers={"Origin": SITE, "User-Agent": "Firefox/140"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "status": "received",
                    "message": "Thank you! We will contact you shortly.", "redirect_url": None}
    assert response.headers["access-control-allow-origin"] == SITE

    card = (await lookup(ws, phone="+74951234567")).json()
    assert card["full_name"] == "Ivan Petrov" and card["source"] == "website"
    assert card["phones"][0]["e164"] == "+74951234567"
    assert card["utm"] == {"utm_source": "yandex", "utm_medium": "cpc",
                           "utm_campaign": "spring"}
    [deal] = await deals_of(ws, card["id"])
    assert deal["stage_id"] == stages["New request"] and deal["status"] == "open"
    assert deal["title"] == "Order: Ivan Petrov" and deal["source"] == "website"
    first_in_turn = min(masha["id"], petr["id"])
    assert deal["owner_id"] == first_in_turn and card["owner_id"] == first_in_turn

    [row] = await submissions_of(ws, form)
    assert row["id"] == body["id"]
    assert (row["contact_id"], row["deal_id"], row["contact_created"]) == (
        card["id"], deal["id"], True)
    assert row["data"] == {"name": "Ivan Petrov", "phone": "8 (495) 123-45-67",
                           "wish": "3 windows, white"}
    assert row["referrer"] == "https://yandex.ru/search"
    assert row["page_url"] == f"{SITE}/order?utm_source=yandex"
    assert row["origin"] == SITE and row["user_agent"] == "Firefox/140"
    [item] = [e for e in await events(ws, "inbox.item_received")
              if e["entity_id"] == row["inbox_item_id"]]
    assert item["after"]["status"] == "accepted" and item["after"]["channel"] == "form"
    assert item["after"]["deal_id"] == deal["id"]
    assert item["after"]["data"]["fields"]["wish"] == "3 windows, white"
    [submitted] = await events(ws, "form.submitted")
    assert (submitted["entity_type"], submitted["entity_id"]) == ("deal", deal["id"])
    assert submitted["actor"] == f"form:{form['id']}"
    assert submitted["after"]["form_id"] == form["id"]
    assert submitted["after"]["fields"]["phone"] == "8 (495) 123-45-67"
    assert submitted["after"]["utm"]["utm_campaign"] == "spring"

    # The next request goes to the other manager.
    await submit(visitor, form, json={"name": "Olga", "phone": "+7 916 000-11-22"})
    olga = (await lookup(ws, phone="+79160001122")).json()
    assert (await deals_of(ws, olga["id"]))[0]["owner_id"] != first_in_turn


async def test_a_site_backend_posts_form_encoded(ws: Workspace,
                                                 visitor: httpx.AsyncClient) -> None:
    stages = await default_stages(ws)
    form = await new_form(ws, stage_id=stages["New request"])
    response = await submit(visitor, form, content=(
        "name=%D0%98%D0%B2%D0%B0%D0%BD&phone=%2B7+495+765-43-21&utm_source=newsletter"),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Referer": f"{SITE}/contacts"})
    assert response.status_code == 201, response.text
    card = (await lookup(ws, phone="+74957654321")).json()
    assert card["full_name"] == "Иван"
    [row] = await submissions_of(ws, form)
    assert row["utm"] == {"utm_source": "newsletter"}
    assert row["page_url"] == f"{SITE}/contacts"  # the Referer, when the page says nothing


async def test_a_plain_html_form_is_redirected(ws: Workspace,
                                               visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws, redirect_url=f"{SITE}/thanks")
    response = await submit(visitor, form, content="name=Ivan&phone=84951112233", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": SITE,
        "Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 303 and response.headers["location"] == f"{SITE}/thanks"
    json_answer = await submit(visitor, form, json={"name": "Ivan", "phone": "84951112233"})
    assert json_answer.json()["redirect_url"] == f"{SITE}/thanks"


async def test_a_form_without_a_pipeline_leaves_a_new_lead_in_the_inbox(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws)
    assert (await submit(visitor, form, json={"name": "Anna", "phone": "89161234567"})
            ).status_code == 201
    card = (await lookup(ws, phone="+79161234567")).json()
    assert await deals_of(ws, card["id"]) == []
    [row] = await submissions_of(ws, form)
    assert row["deal_id"] is None
    [item] = [e for e in await events(ws, "inbox.item_received")
              if e["entity_id"] == row["inbox_item_id"]]
    assert item["after"]["status"] == "new" and item["after"]["deal_id"] is None
    [submitted] = await events(ws, "form.submitted")
    assert (submitted["entity_type"], submitted["entity_id"]) == ("contact", card["id"])


async def test_the_same_phone_in_another_format_is_the_same_card(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"])
    for phone in ("8 (495) 222-33-44", "+7 495 2223344"):
        response = await submit(visitor, form, json={"name": "Ivan", "phone": phone})
        assert response.status_code == 201, response.text
    contacts = (await ws.get("/api/v1/contacts", params={"q": "Ivan"})).json()["data"]
    assert len(contacts) == 1
    assert len(await deals_of(ws, contacts[0]["id"])) == 2
    rows = await submissions_of(ws, form)
    assert sorted(r["contact_created"] for r in rows) == [False, True]


async def test_a_known_email_finds_the_card_and_fills_only_what_it_lacks(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    await new_custom_field(ws, "windows", "number")
    existing = (await ws.post("/api/v1/contacts", json={
        "first_name": "Olga", "last_name": "Smirnova", "emails": ["olga@example.ru"],
        "status": "vip"})).json()
    form = await new_form(ws, fields=[
        {"name": "name", "label": "Name", "maps_to": "contact.full_name"},
        {"name": "email", "label": "Email", "type": "email", "required": True,
         "maps_to": "contact.email"},
        {"name": "windows", "label": "Windows", "maps_to": "contact.custom.windows"}])
    response = await submit(visitor, form, json={
        "name": "Someone Else", "email": "OLGA@example.ru", "windows": "4"})
    assert response.status_code == 201, response.text
    card = (await ws.get(f"/api/v1/contacts/{existing['id']}")).json()
    assert card["full_name"] == "Olga Smirnova" and card["status"] == "vip"
    assert card["custom_fields"] == {"windows": 4}
    assert (await submissions_of(ws, form))[0]["contact_id"] == existing["id"]


async def test_a_resubmission_with_the_same_id_returns_the_first_answer(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"])
    values = {"name": "Ivan", "phone": "84953334455"}
    first = await submit(visitor, form, json=values, headers={"Idempotency-Key": "abc-1"})
    again = await submit(visitor, form, json=values, headers={"Idempotency-Key": "abc-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await submit(visitor, form, json={**values, "name": "Petr"},
                         headers={"Idempotency-Key": "abc-1"})
    assert_problem(other, 422)
    assert error_locs(other) == [["header", "Idempotency-Key"]]
    # The id may also come as a hidden field.
    hidden = {**values, "submission_id": "form-42"}
    one, two = (await submit(visitor, form, json=hidden), await submit(visitor, form, json=hidden))
    assert one.json()["id"] == two.json()["id"]
    card = (await lookup(ws, phone="+74953334455")).json()
    assert len(await deals_of(ws, card["id"])) == 2
    assert len(await submissions_of(ws, form)) == 2


async def test_a_filled_honeypot_looks_accepted_but_stores_nothing(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws)
    response = await submit(visitor, form, json={
        "name": "Bot", "phone": "84957778899", "website": "http://spam.example"},
        headers={"Origin": SITE})
    assert response.status_code == 201 and response.json()["status"] == "received"
    assert response.json()["message"] == form["success_message"]
    assert_problem(await lookup(ws, phone="+74957778899"), 404)
    assert await submissions_of(ws, form) == []
    assert await events(ws, "form.submitted", expect=0) == []
    assert (await ws.get(f"/api/v1/forms/{form['id']}")).json()["honeypot_count"] == 1


async def test_bad_values_are_refused_naming_each_field(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws, fields=[
        *FIELDS, {"name": "email", "label": "Email", "type": "email", "maps_to":
                  "contact.email"},
        {"name": "kind", "label": "Kind", "type": "select", "options": ["window", "door"]},
        {"name": "agree", "label": "I agree", "type": "checkbox", "required": True}])
    response = await submit(visitor, form, json={
        "phone": "12", "email": "not-an-email", "kind": "roof", "agree": False,
        "colour": "red", "wish": {"nested": 1}}, headers={"Origin": SITE})
    body = assert_problem(response, 422)
    assert response.headers["access-control-allow-origin"] == SITE
    assert sorted(e["loc"][1] for e in body["errors"]) == [
        "agree", "colour", "email", "kind", "name", "phone", "wish"]
    missing = await submit(visitor, form, json={"name": "Ivan", "agree": True})
    assert error_locs(missing) == [["body", "phone"]]
    optional = await new_form(ws, fields=[
        {"name": "phone", "label": "Phone", "type": "phone", "maps_to": "contact.phone"},
        {"name": "email", "label": "Email", "type": "email", "maps_to": "contact.email"}])
    neither = await submit(visitor, optional, json={"phone": "", "email": ""})
    assert error_locs(neither) == [["body", "phone"], ["body", "email"]]
    assert await submissions_of(ws, form) == []
    assert (await ws.get("/api/v1/contacts")).json()["data"] == []


async def test_a_custom_field_value_the_card_refuses_names_the_form_field(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    await new_custom_field(ws, "windows", "number")
    form = await new_form(ws, fields=[*FIELDS, {"name": "count", "label": "How many",
                                                "maps_to": "contact.custom.windows"}])
    response = await submit(visitor, form, json={"name": "Ivan", "phone": "84956667788",
                                                 "count": "many"})
    assert_problem(response, 422)
    assert error_locs(response) == [["body", "count"]]
    assert_problem(await lookup(ws, phone="+74956667788"), 404)  # nothing half-written


async def test_size_caps_answer_413(ws: Workspace, visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws, fields=[*FIELDS[:2], {"name": "wish", "label": "Wish",
                                                    "type": "textarea", "max_length": 100}])
    long = await submit(visitor, form, json={"name": "Ivan", "phone": "84951231231",
                                             "wish": "x" * 101}, headers={"Origin": SITE})
    body = assert_problem(long, 413)
    assert error_locs(long) == [["body", "wish"]]
    assert long.headers["access-control-allow-origin"] == SITE
    assert "at most 100" in body["errors"][0]["msg"]
    huge = await submit(visitor, form, content=b'{"name": "' + b"x" * 40_000 + b'"}',
                        headers={"Content-Type": "application/json"})
    assert_problem(huge, 413)
    utm = await submit(visitor, form, json={"name": "I", "phone": "84951231231",
                                            "utm_source": "u" * 501})
    assert error_locs(utm) == [["body", "utm_source"]]
    assert await submissions_of(ws, form) == []


async def test_cors_only_for_the_forms_origins(ws: Workspace,
                                              visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws)
    preflight = await visitor.options(form["submit_url"], headers={
        "Origin": SITE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,idempotency-key"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SITE
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert "Idempotency-Key" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["vary"] == "Origin"

    for evil in ("https://evil.example", "https://okna.example.evil.example", "null"):
        refused = await visitor.options(form["submit_url"], headers={
            "Origin": evil, "Access-Control-Request-Method": "POST"})
        assert_problem(refused, 403)
        assert "access-control-allow-origin" not in refused.headers
        posted = await submit(visitor, form, json={"name": "Ivan", "phone": "84950001122"},
                              headers={"Origin": evil})
        assert_problem(posted, 403)
        assert "access-control-allow-origin" not in posted.headers
    assert_problem(await lookup(ws, phone="+74950001122"), 404)

    # A server (no Origin) may always post.
    assert (await submit(visitor, form, json={"name": "Ivan", "phone": "84950001122"})
            ).status_code == 201
    # The public definition is readable by the site.
    definition = await visitor.get(f"/api/v1/forms/{form['form_key']}/definition",
                                   headers={"Origin": SITE})
    assert definition.headers["access-control-allow-origin"] == SITE


async def test_rate_limited_per_ip(ws: Workspace, visitor: httpx.AsyncClient,
                                   settings: Any) -> None:
    form = await new_form(ws)
    spam = {"name": "x", "phone": "84950000000", "website": "bot"}  # the cheapest kind
    limit = settings.form_submissions_per_ip_per_minute
    for _ in range(limit):
        assert (await submit(visitor, form, json=spam)).status_code == 201
    limited = await submit(visitor, form, json=spam, headers={"Origin": SITE})
    body = assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["ratelimit-limit"] == str(limit)
    assert limited.headers["access-control-allow-origin"] == SITE
    assert "retry" in body["detail"]
    # Another visitor is not held back.
    async with visitor_for(visitor._transport.app) as other:  # type: ignore[attr-defined]
        assert (await submit(other, form, json=spam)).status_code == 201


async def test_rate_limited_per_form(ws: Workspace, app: Any) -> None:
    form = await new_form(ws, submissions_per_minute=3)
    spam = {"name": "x", "phone": "84950000000", "website": "bot"}
    statuses = []
    for _ in range(4):
        async with visitor_for(app) as client:
            statuses.append((await submit(client, form, json=spam)).status_code)
    assert statuses == [201, 201, 201, 429]


async def test_unknown_disabled_and_malformed(ws: Workspace, visitor: httpx.AsyncClient) -> None:
    form = await new_form(ws)
    for key in ("frm_doesnotexist000000000", "not-a-key", form["id"]):
        assert_problem(await visitor.post(f"/api/v1/forms/{key}/submissions",
                                          json={"phone": "1"}), 404)
    assert_problem(await submit(visitor, form, content=b"{", headers={
        "Content-Type": "application/json"}), 400)
    assert_problem(await submit(visitor, form, content=b"[1]", headers={
        "Content-Type": "application/json"}), 400)
    assert_problem(await submit(visitor, form, content=b"phone=1", headers={
        "Content-Type": "text/plain"}), 415)
    assert_problem(await submit(visitor, form, content=b"phone=1&phone=2", headers={
        "Content-Type": "application/x-www-form-urlencoded"}), 400)
    await ws.patch(f"/api/v1/forms/{form['id']}", json={"enabled": False})
    assert_problem(await submit(visitor, form, json={"name": "I", "phone": "84951234567"}), 404)
    assert_problem(await visitor.get(f"/api/v1/forms/{form['form_key']}/embed.js"), 404)


async def test_embed_script_is_cacheable_javascript_with_the_public_definition(
        ws: Workspace, visitor: httpx.AsyncClient) -> None:
    stages = await default_stages(ws)
    form = await new_form(ws, stage_id=stages["New request"],
                          success_message="Спасибо! </script><b>")
    response = await visitor.get(form["embed_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    script = response.text
    assert f"http://relata.test{form['submit_url']}" in script
    assert "</script>" not in script and "\\u003c/script\\u003e" in script
    assert stages["New request"] not in script and "maps_to" not in script
    again = await visitor.get(form["embed_url"],
                              headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    await ws.patch(f"/api/v1/forms/{form['id']}", json={"success_message": "Thanks"})
    changed = await visitor.get(form["embed_url"],
                                headers={"If-None-Match": response.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != response.headers["etag"]

    definition = (await visitor.get(f"/api/v1/forms/{form['form_key']}/definition")).json()
    assert set(definition) == {"form_key", "name", "fields", "honeypot_field",
                               "success_message", "redirect_url", "submit_url"}
    assert definition["fields"][0] == {
        "name": "name", "label": "Your name", "type": "text", "required": True, "options": [],
        "placeholder": None, "max_length": 500, "value": None}


# The plain submission below the ORM (decision 0065)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ROWS = [  # what a submission writes, each table in a stable order
    ("contacts", "full_name"), ("contact_identities", "kind, value"), ("deals", "title"),
    ("deal_contacts", "position"), ("stage_intervals", "entered_at"),
    ("inbox_items", "received_at"), ("form_submissions", "created_at"),
]


def _masked(value: Any) -> Any:
    """Stored values with every id replaced: the two workspaces' rows compare as equal when
    everything else is."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items() if k not in ("txid", "seq")}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return _UUID.sub("<id>", value)
    return value


async def _written(workspace_id: str, form_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(to_asyncpg_url(os.environ["RELATA_DATABASE_URL"]).replace(
        "postgresql+asyncpg", "postgresql"))
    try:
        ws = uuid.UUID(workspace_id)
        out: dict[str, Any] = {}
        for table, order in _ROWS:
            rows = await conn.fetch(f"SELECT to_jsonb(t) AS row FROM {table} t "
                                    f"WHERE workspace_id = $1 ORDER BY {order}", ws)
            out[table] = [_masked(json.loads(r["row"])) for r in rows]
        events = await conn.fetch(
            "SELECT to_jsonb(e) AS row FROM events e WHERE workspace_id = $1 AND actor = $2 "
            "ORDER BY seq", ws, f"form:{form_id}")
        out["events"] = [_masked(json.loads(r["row"])) for r in events]
        return out
    finally:
        await conn.close()


async def _twin(client: httpx.AsyncClient, app: Any) -> tuple[Workspace, dict[str, Any]]:
    ws = await make_workspace(client)
    await configure(ws, [{"id": "web", "name": "From the site", "points": 30,
                          "conditions": [{"field": "contact.source", "op": "eq",
                                          "value": "website"}]}])
    owner = await new_user(ws, "manager", "Masha")
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"],
                          owner={"strategy": "user", "user_id": owner["id"]},
                          fields=[*FIELDS, {"name": "first", "label": "First name",
                                            "maps_to": "contact.first_name"},
                                  {"name": "email", "label": "Email", "type": "email",
                                   "maps_to": "contact.email"}])
    return ws, form


async def test_a_plain_submission_writes_what_the_orm_path_writes(
        client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twin workspaces, the same form and the same request: one written below the ORM, the
    other through it (the plain path switched off). Every row and event is the same but for
    the ids."""
    spy, written_below = _spy_on_the_plain_path()
    twins = [await _twin(client, app) for _ in range(2)]
    body = {"name": "  Ivan   Petrov ", "first": "Ivan", "phone": "8 (495) 123-45-67",
            "email": "Ivan@Example.COM", "wish": "3 windows", "utm_source": "yandex",
            "page_url": f"{SITE}/order"}
    headers = {"Origin": SITE, "User-Agent": "Firefox/140", "Referer": f"{SITE}/order"}
    try:
        clock.freeze(datetime(2026, 12, 1, 9, tzinfo=UTC))
        async with visitor_for(app) as visitor:
            monkeypatch.setattr(plain, "submit_on", spy)
            below = await submit(visitor, twins[0][1], json=body, headers=headers)
            monkeypatch.setattr(plain, "submit_on", _never_plain)
            through = await submit(visitor, twins[1][1], json=body, headers=headers)
    finally:
        clock.freeze(None)
    assert below.status_code == through.status_code == 201, (below.text, through.text)
    assert written_below == [True]
    assert _masked(below.json()) == _masked(through.json())
    ours, theirs = [await _written(ws.id, form["id"]) for ws, form in twins]
    assert [e["type"] for e in ours["events"]] == [
        "contact.created", "deal.created", "inbox.item_received", "form.submitted"]
    [card] = ours["contacts"]
    assert (card["full_name"], card["first_name"], card["owner_id"]) == (
        "Ivan Petrov", "Ivan", "<id>")
    assert card["utm"] == {"utm_source": "yandex"} and card["timezone"] == "Europe/Moscow"
    assert [i["value"] for i in ours["contact_identities"]] == [
        "ivan@example.com", "+74951234567"]
    assert ours["deals"][0]["score_points"] == 30
    for table in ours:
        assert ours[table] == theirs[table], table


async def _never_plain(*args: Any) -> None:
    return None


def _spy_on_the_plain_path() -> tuple[Any, list[bool]]:
    """`plain.submit_on` as it is, recording whether each call wrote the submission."""
    real, wrote = plain.submit_on, []

    async def spy(*args: Any) -> Any:
        outcome = await real(*args)
        wrote.append(outcome is not None)
        return outcome

    return spy, wrote


async def test_a_returning_visitor_and_a_resubmission_take_the_orm_path(
        ws: Workspace, app: Any, visitor: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A card that exists is enriched, not created, and a resubmission is answered with the
    first answer: the plain path leaves both to the ORM, having written nothing."""
    spy, outcomes = _spy_on_the_plain_path()
    monkeypatch.setattr(plain, "submit_on", spy)
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"])
    first = await submit(visitor, form, json={"name": "Olga", "phone": "+7 916 555-00-11",
                                              "submission_id": "s-1"}, headers={"Origin": SITE})
    again = await submit(visitor, form, json={"name": "Olga", "phone": "+7 916 555-00-11",
                                              "submission_id": "s-1"}, headers={"Origin": SITE})
    returning = await submit(visitor, form, json={"name": "Olga K", "phone": "89165550011"},
                             headers={"Origin": SITE})
    assert [r.status_code for r in (first, again, returning)] == [201, 201, 201]
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert outcomes == [True, False, False]
    rows = await submissions_of(ws, form)
    assert len(rows) == 2 and len({r["contact_id"] for r in rows}) == 1
    card = (await lookup(ws, phone="+79165550011")).json()
    assert card["full_name"] == "Olga"  # a found card keeps its name
    assert len(await deals_of(ws, card["id"])) == 2


async def test_a_lost_race_for_the_phone_is_matched_by_the_orm_path(
        ws: Workspace, app: Any, visitor: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another request creates the card between the plain path's read and its write: the
    write fails on the phone's unique identity, rolls back whole, and the ORM path matches
    the card the other request made."""
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"])
    rival = await ws.post("/api/v1/contacts", json={"full_name": "Rival",
                                                    "phones": ["+7 916 777-00-11"]})
    assert rival.status_code == 201, rival.text
    real_fetchval = asyncpg.Connection.fetchval

    async def nobody_holds_it(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if "contact_identities" in query and "form_submissions" in query:
            return False  # as if the rival's card came just after this read
        return await real_fetchval(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "fetchval", nobody_holds_it)
    response = await submit(visitor, form, json={"name": "Olga", "phone": "89167770011"},
                            headers={"Origin": SITE})
    assert response.status_code == 201, response.text
    [row] = await submissions_of(ws, form)
    assert (row["contact_id"], row["contact_created"]) == (rival.json()["id"], False)
    cards = (await ws.get("/api/v1/contacts", params={"limit": 10})).json()["data"]
    assert [c["full_name"] for c in cards] == ["Rival"]
