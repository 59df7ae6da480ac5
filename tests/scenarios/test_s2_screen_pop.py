"""S2. An incoming call creates or finds the card (screen pop).

A PBX posts signed call events. A call from an unknown number answers with a card holding
only the number and an incoming lead; the manager accepts the lead into the first stage of
the default pipeline and fills in the card. The next call from that number, in another
format, pops the same card with the deal; the call is logged on the timeline with direction,
duration and recording link. A missed call creates a call-back task for the owner, and the
owner sees it through GraphQL."""

from __future__ import annotations

import uuid

import httpx

from tests.api.rest.conftest import act_as, new_user
from tests.api.rest.signed import call, new_integration
from tests.conftest import Workspace


async def test_s2_screen_pop(client: httpx.AsyncClient, ws: Workspace) -> None:
    manager = await new_user(ws, "manager", "Olga")
    pbx = await new_integration(ws, config={"extensions": {"101": manager["id"]}})

    # 1. An unknown number rings extension 101.
    first_id = f"1701-{uuid.uuid4().hex[:8]}"
    ringing = await call(client, pbx, call_id=first_id, **{"from": "8 (912) 000-11-22"},
                         status="ringing", extension="101")
    assert ringing.status_code == 200, ringing.text
    pop = ringing.json()
    assert pop["contact_created"] is True
    assert pop["screen_pop"]["contact"]["phones"][0]["e164"] == "+79120001122"
    assert pop["screen_pop"]["contact"]["local_time"]  # zone derived from the number
    card_id = pop["contact_id"]

    # The call ends; the manager accepts the lead and fills in the card.
    ended = await call(client, pbx, call_id=first_id, **{"from": "8 (912) 000-11-22"},
                       status="completed", duration_seconds=184, extension="101",
                       recording_url="https://pbx.example/rec/1701.wav")
    assert ended.json()["activity_id"] == pop["activity_id"]
    olga = await act_as(ws, manager)
    accepted = await olga.post(f"/api/v1/inbox/{pop['inbox_item_id']}/accept",
                               json={"title": "Windows for a cottage"})
    assert accepted.status_code == 200, accepted.text
    await olga.patch(f"/api/v1/contacts/{card_id}", json={"full_name": "Pavel Orlov"})

    # 2. He calls again from "+7 912 0001122": the same card, his deal, the last call.
    second = await call(client, pbx, call_id=f"1702-{uuid.uuid4().hex[:8]}",
                        **{"from": "+7 912 0001122"}, status="ringing", extension="101")
    body = second.json()
    assert body["contact_id"] == card_id and body["contact_created"] is False
    assert body["inbox_item_id"] is None
    screen = body["screen_pop"]
    assert screen["contact"]["full_name"] == "Pavel Orlov"
    assert screen["contact"]["owner"]["full_name"] == "Olga"
    assert [d["title"] for d in screen["open_deals"]] == ["Windows for a cottage"]
    last_call = screen["last_interactions"][0]
    assert (last_call["type"], last_call["duration_seconds"]) == ("call", 184)

    # 3. The timeline shows the call with direction, duration and recording.
    timeline = (await olga.get(f"/api/v1/contacts/{card_id}/timeline")).json()["data"]
    assert f"activity:{pop['activity_id']}" in [e["id"] for e in timeline]
    logged = (await olga.get(f"/api/v1/activities/{pop['activity_id']}")).json()
    assert (logged["direction"], logged["duration_seconds"], logged["recording_url"]) == (
        "in", 184, "https://pbx.example/rec/1701.wav")

    # 4. A missed call: a call-back task for the owner, visible to her through GraphQL.
    missed = await call(client, pbx, call_id=f"1703-{uuid.uuid4().hex[:8]}",
                        **{"from": "89120001122"}, status="missed")
    task_id = missed.json()["callback_task_id"]
    task = (await olga.get(f"/api/v1/tasks/{task_id}")).json()
    assert task["assignee_id"] == manager["id"] and task["title"] == "Call back Pavel Orlov"
    data = await olga.gql("""query($id: ID!) { inboxItem(id: $id) { status dealId channel } }""",
                          {"id": pop["inbox_item_id"]})
    assert data["data"]["inboxItem"] == {"status": "accepted",
                                         "dealId": accepted.json()["deal_id"],
                                         "channel": "call"}
