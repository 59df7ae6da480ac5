"""A required custom field binds the people and scripts who edit cards, not the leads that
arrive by themselves: a web form, a ringing phone and a rule still get their card and deal,
and a person completes the card later."""

from __future__ import annotations

import uuid

import httpx

from tests.api.rest.conftest import error_locs, new_custom_field
from tests.api.rest.signed import call, new_integration
from tests.api.rest.test_form_submissions import SITE, new_form, submit, visitor_for
from tests.conftest import Workspace
from tests.workers.test_rules_worker import default_stages


async def test_leads_arrive_although_a_required_field_is_empty(
        ws: Workspace, client: httpx.AsyncClient, app: object) -> None:
    await new_custom_field(ws, "contract_number", "text", required=True)
    await new_custom_field(ws, "window_count", "number", object_type="deal", required=True)
    stages = await default_stages(ws)
    form = await new_form(ws, pipeline_id=stages["pipeline_id"])
    async with visitor_for(app) as visitor:
        sent = await submit(visitor, form, json={"name": "Ivan Petrov",
                                                 "phone": "8 (495) 123-45-67"},
                            headers={"Origin": SITE})
    assert sent.status_code == 201, sent.text
    card = (await ws.get("/api/v1/contacts/lookup", params={"phone": "+74951234567"})).json()
    assert card["full_name"] == "Ivan Petrov" and card["custom_fields"] == {}
    deals = (await ws.get("/api/v1/deals", params={"contact_id": card["id"]})).json()["data"]
    assert len(deals) == 1

    pbx = await new_integration(ws)
    rang = await call(client, pbx, call_id=f"c-{uuid.uuid4().hex[:8]}",
                      **{"from": "+7 912 345 67 89"}, status="ringing")
    assert rang.status_code == 200, rang.text
    assert rang.json()["contact_created"] is True

    # People and scripts are still held to it, and can complete the lead's card.
    typed = await ws.post("/api/v1/contacts", json={"full_name": "Typed by hand"})
    assert typed.status_code == 422, typed.text
    assert ["body", "custom_fields", "contract_number"] in error_locs(typed)
    filled = await ws.patch(f"/api/v1/contacts/{card['id']}", json={
        "custom_fields": {"contract_number": "D-17"}},
        headers={"If-Match": f'"{card["version"]}"'})
    assert filled.status_code == 200, filled.text
    assert filled.json()["custom_fields"] == {"contract_number": "D-17"}
