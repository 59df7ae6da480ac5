"""S5. Reminders and follow-ups that nobody forgets.

A window shop in Moscow. Anna, an agent in Elena's team, works with Ivan from Yekaterinburg
(two hours ahead of Moscow). Over one week, on a frozen server clock:

* Thursday: Anna opens Ivan's card and a deal in "New request" (which rots after a day idle);
  Elena, the head of the team, gives Anna "Send the commercial offer", due Friday 18:00.
* Friday: the deal has sat a day untouched — it is flagged rotting and Anna is told once; at
  18:01 the offer is overdue — Anna and Elena are told once each.
* Sunday: the offer is two days overdue; the sweep tells nobody again.
* Monday: Anna calls Ivan (logged on the deal: the rotting flag clears). He asks to be called
  tomorrow at 10:00 *his* time; Anna sets a call task with that reminder. Her agenda shows
  today / overdue / upcoming; she sends the letter due today and completes it.
* Tuesday: at 09:59 in Yekaterinburg the sweep tells nobody; at 10:00 Anna gets one reminder
  (the sweep runs twice, she hears once) — live on her event stream too. She reads it, then
  marks all read.

The minute worker job (`run_sweeps`) is what tells people; the test runs it at the moments the
story looks at, exactly as the worker would, over every workspace of the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.workers.sweeps import run_sweeps
from tests.api.graphql.helpers import ok as gql_ok
from tests.api.rest.conftest import act_as, all_pages, assert_problem, new_user
from tests.conftest import Workspace

Sessions = async_sessionmaker[AsyncSession]

THU_NOON = datetime(2027, 2, 25, 9, 0, tzinfo=UTC)  # Thursday 12:00 in Moscow
FRI_1159 = datetime(2027, 2, 26, 8, 59, tzinfo=UTC)
FRI_NOON = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
FRI_1801 = datetime(2027, 2, 26, 15, 1, tzinfo=UTC)
SUN_1801 = datetime(2027, 2, 28, 15, 1, tzinfo=UTC)
MON_NOON = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
TUE_0959_YEKT = datetime(2027, 3, 2, 4, 59, tzinfo=UTC)  # 09:59 in Yekaterinburg
TUE_1000_YEKT = datetime(2027, 3, 2, 5, 0, tzinfo=UTC)  # 10:00 in Yekaterinburg

AGENDA = """
query($bucket: AgendaBucket!) {
  agenda(bucket: $bucket) {
    edges { node { id title dueAt overdue contactTimezone dueAtContactLocal
                   contact { fullName } } }
  }
}
"""
NOTIFICATIONS = """
query($unread: Boolean) {
  notifications(unread: $unread) {
    edges { node { id type title body entityType entityId actor readAt } }
  }
}
"""
MARK_READ = """
mutation($id: ID!) {
  markNotificationRead(id: $id) {
    __typename ... on Notification { id readAt } ... on NotFoundError { message }
  }
}
"""


async def body(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def told(who: Workspace, **params: Any) -> list[dict[str, Any]]:
    """The user's notifications, newest first."""
    return await all_pages(who, "/api/v1/notifications", **params)


def about(notifications: list[dict[str, Any]], entity_id: str) -> list[str]:
    return [n["type"] for n in notifications if n["entity_id"] == entity_id]


async def sweep(sessions: Sessions) -> dict[str, int]:
    """One run of the worker's minute job, at the server clock's time."""
    return await run_sweeps({"sessions": sessions})


async def agenda(who: Workspace, bucket: str) -> list[str]:
    return [t["title"] for t in await all_pages(who, "/api/v1/tasks/agenda", bucket=bucket)]


def sse_messages(text: str) -> list[dict[str, Any]]:
    messages = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if not line.startswith(":") and ": " in line)
        if "data" in fields:
            messages.append({"id": fields.get("id"), "event": fields.get("event"),
                             "data": orjson.loads(fields["data"])})
    return messages


async def test_s5_reminders_overdue_tasks_and_rotting_deals(
        ws: Workspace, sessions: Sessions, frozen: Callable[[datetime | None], None]) -> None:
    # --- The team: Elena heads it, Anna is in it. (Tokens first: they expire in real time.)
    elena = await new_user(ws, "manager", "Elena Sokolova")
    anna = await new_user(ws, "agent", "Anna Smirnova")
    team = await body(await ws.post("/api/v1/teams", json={
        "name": "Windows", "head_id": elena["id"], "member_ids": [anna["id"]]}), 201)
    assert team["head_id"] == elena["id"]
    as_elena, as_anna = await act_as(ws, elena), await act_as(ws, anna)
    sales = next(p for p in (await body(await ws.get("/api/v1/pipelines")))["data"]
                 if p["is_default"])
    new_request = sales["stages"][0]
    assert (new_request["name"], new_request["rotting_days"]) == ("New request", 1)

    # --- Thursday 12:00 (Moscow). Ivan's card, his deal, and the head's task for Anna.
    frozen(THU_NOON)
    ivan = await body(await as_anna.post("/api/v1/contacts", json={
        "full_name": "Ivan Petrov", "phones": ["8 (343) 310-20-30"]}), 201)
    assert ivan["timezone"] == "Asia/Yekaterinburg"
    deal = await body(await as_anna.post("/api/v1/deals", json={
        "title": "Balcony glazing", "contact_ids": [ivan["id"]], "amount": "85000",
        "currency": "RUB"}), 201)
    assert (deal["stage_id"], deal["owner_id"], deal["rotting"]) == (new_request["id"],
                                                                      anna["id"], False)
    offer = await body(await as_elena.post("/api/v1/tasks", json={
        "title": "Send the commercial offer", "type": "email", "assignee_id": anna["id"],
        "contact_id": ivan["id"], "due_at": "2027-02-26T18:00:00+03:00"}), 201)
    assert offer["due_at"] == "2027-02-26T15:00:00Z"
    assert about(await told(as_anna), offer["id"]) == ["task_assigned"]
    await sweep(sessions)
    assert [n["type"] for n in await told(as_anna)] == ["task_assigned"], "nothing is due yet"

    # --- Friday 11:59: the deal has been idle 23 h 59 min — not rotting yet.
    frozen(FRI_1159)
    await sweep(sessions)
    assert (await body(await as_anna.get(f"/api/v1/deals/{deal['id']}")))["rotting"] is False

    # --- Friday 12:00: a whole day untouched in "New request": flagged once, Anna is told.
    frozen(FRI_NOON)
    await sweep(sessions)
    await sweep(sessions)  # the worker runs every minute: nobody hears twice
    rotting = await body(await as_anna.get(f"/api/v1/deals/{deal['id']}"))
    assert (rotting["rotting"], rotting["rotting_since"]) == (True, "2027-02-26T09:00:00Z")
    assert rotting["version"] == deal["version"], "the flag is not an edit of the deal"
    flagged = await all_pages(as_anna, "/api/v1/deals", rotting_since__isnull="false")
    assert [d["id"] for d in flagged] == [deal["id"]]
    history = (await body(await ws.get(f"/api/v1/deals/{deal['id']}/history")))["data"]
    rotting_events = [e for e in history if e["type"] == "deal.rotting"]
    assert len(rotting_events) == 1
    assert rotting_events[0]["actor"] == "system"
    assert rotting_events[0]["after"]["idle_since"] == THU_NOON.isoformat()
    assert rotting_events[0]["after"]["rotting_days"] == 1
    anna_told = await told(as_anna)
    assert about(anna_told, deal["id"]) == ["deal_rotting"]
    notice = anna_told[0]
    assert (notice["entity_type"], notice["actor"]) == ("deal", "system")
    assert notice["title"].startswith("Deal “Balcony glazing” has been idle in New request")
    assert about(await told(as_elena), deal["id"]) == [], "the owner is told, not the head"

    # --- Friday 18:01: the commercial offer is overdue — Anna AND her head are told.
    frozen(FRI_1801)
    await sweep(sessions)
    await sweep(sessions)
    anna_told = await told(as_anna)
    assert about(anna_told, offer["id"]) == ["task_overdue", "task_assigned"]
    assert (anna_told[0]["title"], anna_told[0]["body"]) == (
        "Overdue: Send the commercial offer", "Was due 2027-02-26 18:00 Europe/Moscow")
    elena_told = await told(as_elena)
    assert [(n["type"], n["entity_id"], n["title"], n["body"]) for n in elena_told] == [
        ("task_overdue", offer["id"], "Overdue task of Anna Smirnova: Send the commercial offer",
         "Was due 2027-02-26 18:00 Europe/Moscow")]

    # --- Sunday 18:01: two days overdue. Still overdue, and nobody is told again.
    frozen(SUN_1801)
    await sweep(sessions)
    late = await body(await as_anna.get(f"/api/v1/tasks/{offer['id']}"))
    assert (late["overdue"], late["overdue_notified_at"]) == (True, "2027-02-26T15:01:00Z")
    assert late["version"] == offer["version"], "the notice is not an edit of the task"
    assert about(await told(as_anna), offer["id"]) == ["task_overdue", "task_assigned"]
    assert about(await told(as_elena), offer["id"]) == ["task_overdue"]
    # Elena sees the overdue offer on her team's agenda.
    team_overdue = await all_pages(as_elena, "/api/v1/tasks/agenda", bucket="overdue",
                                   team_id=team["id"])
    assert [t["id"] for t in team_overdue] == [offer["id"]]

    # --- Monday 12:00 (14:00 for Ivan). Anna calls him, logging the call on the deal:
    # the deal is no longer idle.
    frozen(MON_NOON)
    call = await body(await as_anna.post("/api/v1/activities", json={
        "type": "call", "direction": "out", "call_status": "answered", "duration_seconds": 95,
        "contact_id": ivan["id"], "deal_id": deal["id"],
        "body": "Busy now; asks to be called tomorrow at 10:00 his time"}), 201)
    assert call["occurred_at"] == "2027-03-01T09:00:00Z"
    revived = await body(await as_anna.get(f"/api/v1/deals/{deal['id']}"))
    assert (revived["rotting"], revived["rotting_since"], revived["last_activity_at"]) == (
        False, None, "2027-03-01T09:00:00Z")
    assert await all_pages(as_anna, "/api/v1/deals", rotting_since__isnull="false") == []

    # "Call me tomorrow at 10": the frontend shows Ivan's zone and sets the reminder in it.
    callback = await body(await as_anna.post("/api/v1/tasks", json={
        "title": "Call Ivan back", "type": "call", "contact_id": ivan["id"],
        "deal_id": deal["id"], "reminder_at": "2027-03-02T10:00:00+05:00",
        "due_at": "2027-03-02T10:30:00+05:00"}), 201)
    assert (callback["reminder_at"], callback["due_at"]) == ("2027-03-02T05:00:00Z",
                                                             "2027-03-02T05:30:00Z")
    assert callback["contact_timezone"] == "Asia/Yekaterinburg"
    assert callback["contact_local_time"] == "2027-03-01T14:00:00+05:00"
    assert callback["due_at_contact_local"] == "2027-03-02T10:30:00+05:00"
    assert callback["assignee_id"] == anna["id"] and callback["reminded_at"] is None
    # "Time to send the letter": due today at 17:00.
    letter = await body(await as_anna.post("/api/v1/tasks", json={
        "title": "Email Ivan the measurement slots", "type": "email",
        "contact_id": ivan["id"], "due_at": "2027-03-01T17:00:00+03:00"}), 201)

    # Anna's agenda: today / overdue / upcoming.
    assert await agenda(as_anna, "today") == ["Email Ivan the measurement slots"]
    assert await agenda(as_anna, "overdue") == ["Send the commercial offer"]
    assert await agenda(as_anna, "upcoming") == ["Call Ivan back"]
    upcoming = gql_ok(await as_anna.gql(AGENDA, {"bucket": "UPCOMING"}))["agenda"]["edges"]
    assert [e["node"] for e in upcoming] == [{
        "id": callback["id"], "title": "Call Ivan back", "dueAt": "2027-03-02T05:30:00+00:00",
        "overdue": False, "contactTimezone": "Asia/Yekaterinburg",
        "dueAtContactLocal": "2027-03-02T10:30:00+05:00", "contact": {"fullName": "Ivan Petrov"}}]
    overdue = gql_ok(await as_anna.gql(AGENDA, {"bucket": "OVERDUE"}))["agenda"]["edges"]
    assert [(e["node"]["id"], e["node"]["overdue"]) for e in overdue] == [(offer["id"], True)]

    # She sends the letter and completes the task: it leaves her agenda.
    await body(await as_anna.post("/api/v1/activities", json={
        "type": "email", "direction": "out", "contact_id": ivan["id"], "deal_id": deal["id"],
        "subject": "Measurement slots"}), 201)
    await body(await as_anna.post(f"/api/v1/tasks/{letter['id']}/complete",
                                  json={"outcome": "done"}))
    assert await agenda(as_anna, "today") == []
    assert await agenda(as_anna, "upcoming") == ["Call Ivan back"]

    # --- Tuesday 09:59 in Yekaterinburg: not yet.
    unread_before = (await body(await as_anna.get("/api/v1/notifications/unread-count")))
    feed = await body(await as_anna.get("/api/v1/events", params={"limit": 200}))
    cursor = feed["next_cursor"]
    while feed["data"]:
        feed = await body(await as_anna.get("/api/v1/events",
                                            params={"limit": 200, "after": cursor}))
        cursor = feed["next_cursor"] or cursor
    frozen(TUE_0959_YEKT)
    await sweep(sessions)
    assert about(await told(as_anna), callback["id"]) == []
    assert await body(await as_anna.get("/api/v1/notifications/unread-count")) == unread_before
    assert (await body(await as_anna.get(f"/api/v1/tasks/{callback['id']}")))[
        "reminded_at"] is None

    # --- Tuesday 10:00 in Yekaterinburg: the reminder, once however often the sweep runs.
    frozen(TUE_1000_YEKT)
    await sweep(sessions)
    await sweep(sessions)
    anna_told = await told(as_anna)
    assert about(anna_told, callback["id"]) == ["task_reminder"]
    reminder = anna_told[0]
    assert (reminder["type"], reminder["title"], reminder["body"]) == (
        "task_reminder", "Reminder: Call Ivan back", "Due 2027-03-02 08:30 Europe/Moscow")
    assert (reminder["entity_type"], reminder["entity_id"], reminder["read_at"]) == (
        "task", callback["id"], None)
    reminded = await body(await as_anna.get(f"/api/v1/tasks/{callback['id']}"))
    assert reminded["reminded_at"] == "2027-03-02T05:00:00Z"
    assert reminded["version"] == callback["version"]
    assert about(await told(as_elena), callback["id"]) == [], "reminders are the assignee's"
    # Anna's frontend learns of it live: her event stream carries the new notification.
    stream = await as_anna.get("/api/v1/events/stream", params={
        "after": cursor, "types": "notification.created", "max_seconds": 2})
    assert stream.status_code == 200 and stream.headers["content-type"].startswith(
        "text/event-stream")
    live = sse_messages(stream.text)
    assert [(m["event"], m["data"]["after"]["type"], m["data"]["after"]["entity_id"])
            for m in live] == [("notification.created", "task_reminder", callback["id"])]

    # --- Reading: one notification, then all of them.
    assert [n["type"] for n in anna_told] == [
        "task_reminder", "task_overdue", "deal_rotting", "task_assigned"]
    assert await body(await as_anna.get("/api/v1/notifications/unread-count")) == {"count": 4}
    read = await body(await as_anna.post(f"/api/v1/notifications/{reminder['id']}/read"))
    assert read["read_at"] == "2027-03-02T05:00:00Z"
    assert await body(await as_anna.get("/api/v1/notifications/unread-count")) == {"count": 3}
    assert [n["type"] for n in await told(as_anna, unread="true")] == [
        "task_overdue", "deal_rotting", "task_assigned"]
    # Elena cannot read Anna's notifications; she reads and clears her own over GraphQL.
    assert_problem(await as_elena.get(f"/api/v1/notifications/{reminder['id']}"), 404)
    elena_nodes = [e["node"] for e in gql_ok(await as_elena.gql(
        NOTIFICATIONS, {"unread": True}))["notifications"]["edges"]]
    assert [(n["type"], n["entityId"], n["actor"]) for n in elena_nodes] == [
        ("task_overdue", offer["id"], "system")]
    marked = gql_ok(await as_elena.gql(MARK_READ, {"id": elena_nodes[0]["id"]}))
    assert marked["markNotificationRead"]["__typename"] == "Notification"
    assert marked["markNotificationRead"]["readAt"] == "2027-03-02T05:00:00+00:00"
    assert await body(await as_elena.get("/api/v1/notifications/unread-count")) == {"count": 0}

    assert await body(await as_anna.post("/api/v1/notifications/read-all")) == {"count": 3}
    assert await body(await as_anna.get("/api/v1/notifications/unread-count")) == {"count": 0}
    assert await told(as_anna, unread="true") == []
    assert {n["read_at"] for n in await told(as_anna)} == {"2027-03-02T05:00:00Z"}


async def test_s5_the_rotting_notice_reads_as_a_sentence(
        ws: Workspace, sessions: Sessions, frozen: Callable[[datetime | None], None]) -> None:
    anna = await new_user(ws, "agent", "Anna Smirnova")
    as_anna = await act_as(ws, anna)
    frozen(THU_NOON)
    deal = await body(await as_anna.post("/api/v1/deals", json={"title": "Balcony glazing"}),
                      201)
    frozen(FRI_NOON)
    await sweep(sessions)
    notice = [n for n in await told(as_anna) if n["entity_id"] == deal["id"]]
    assert [n["title"] for n in notice] == [
        "Deal “Balcony glazing” has been idle in New request for 1 day"]
