"""GraphQL for tasks, "my work" and notifications: the same rules as REST."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.api.graphql.helpers import ERRORS, create_contact, mutate, ok
from tests.api.rest.conftest import act_as, new_user
from tests.api.rest.test_tasks import FROZEN, MSK, frozen, new_team
from tests.conftest import Workspace

__all__ = ["frozen"]  # fixtures used here

TASK_FIELDS = """
  id title type description dueAt reminderAt assigneeId contactId dealId status outcome note
  data attempt completedAt completedBy overdue contactTimezone contactLocalTime
  dueAtContactLocal version
"""
TASK_RESULT = f"{ERRORS} ... on Task {{ {TASK_FIELDS} }}"
CREATE_TASK = f"mutation($input: TaskInput!) {{ createTask(input: $input) {{ {TASK_RESULT} }} }}"
UPDATE_TASK = f"""
mutation($id: ID!, $input: TaskInput!, $version: Int) {{
  updateTask(id: $id, input: $input, version: $version) {{ {TASK_RESULT} }}
}}
"""
COMPLETE_TASK = f"""
mutation($id: ID!, $input: CompleteTaskInput) {{
  completeTask(id: $id, input: $input) {{ {TASK_RESULT} }}
}}
"""
REOPEN_TASK = f"""
mutation($id: ID!, $input: ReopenTaskInput) {{
  reopenTask(id: $id, input: $input) {{ {TASK_RESULT} }}
}}
"""
DELETE_TASK = f"""
mutation($id: ID!) {{ deleteTask(id: $id) {{ {ERRORS} ... on DeleteSuccess {{ id }} }} }}
"""
GET_TASK = f"""
query($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} contact {{ fullName timezone }} }} }}
"""
LIST_TASKS = """
query($first: Int, $after: String, $filter: JSON, $q: String, $sort: String) {
  tasks(first: $first, after: $after, filter: $filter, q: $q, sort: $sort) {
    edges { cursor node { id title dueAt contactLocalTime contact { fullName } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
AGENDA = """
query($bucket: AgendaBucket!, $assigneeId: String, $teamId: ID, $tz: String, $first: Int,
      $after: String) {
  agenda(bucket: $bucket, assigneeId: $assigneeId, teamId: $teamId, tz: $tz, first: $first,
         after: $after) {
    edges { cursor node { id dueAt overdue } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
NOTIFICATIONS = """
query($unread: Boolean, $first: Int, $after: String) {
  notifications(unread: $unread, first: $first, after: $after) {
    edges { node { id type title entityType entityId actor readAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MARK_READ = """
mutation($id: ID!) {
  markNotificationRead(id: $id) {
    __typename ... on NotFoundError { message } ... on Notification { id readAt }
  }
}
"""
MARK_ALL_READ = """
mutation { markAllNotificationsRead { __typename ... on ReadAllSuccess { count }
                                      ... on ForbiddenError { message } } }
"""


async def create_task(ws: Workspace, **fields: Any) -> dict[str, Any]:
    result = await mutate(ws, CREATE_TASK, "createTask", input={"title": "Call back", **fields})
    assert result["__typename"] == "Task", result
    return result


async def agenda_ids(ws: Workspace, **variables: Any) -> list[str]:
    """Every page of the agenda, following endCursor."""
    found: list[str] = []
    after = None
    while True:
        data = ok(await ws.gql(AGENDA, {**variables, "after": after}))["agenda"]
        found += [e["node"]["id"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            return found
        after = data["pageInfo"]["endCursor"]


async def test_create_with_workspace_types_and_the_contacts_clock(
        ws: Workspace, frozen: Callable[[datetime | None], None]) -> None:
    contact = await create_contact(ws, fullName="Ivan Petrov",
                                   phones=[{"number": "+7 495 123-45-67"}])
    frozen(FROZEN)
    task = await create_task(ws, type="call", contactId=contact["id"],
                             dueAt="2027-03-02T15:30:00+03:00")
    assert task["dueAt"] == "2027-03-02T12:30:00+00:00"
    assert task["contactTimezone"] == "Europe/Moscow"
    assert task["contactLocalTime"] == "2027-03-02T12:00:00+03:00"
    assert task["dueAtContactLocal"] == "2027-03-02T15:30:00+03:00"
    assert (task["status"], task["attempt"], task["overdue"]) == ("open", 0, False)
    read = ok(await ws.gql(GET_TASK, {"id": task["id"]}))["task"]
    assert read["contact"] == {"fullName": "Ivan Petrov", "timezone": "Europe/Moscow"}
    rest = (await ws.get(f"/api/v1/tasks/{task['id']}")).json()
    assert rest["due_at"] == "2027-03-02T12:30:00Z" and rest["version"] == task["version"]

    unknown = await mutate(ws, CREATE_TASK, "createTask",
                           input={"title": "Measure", "type": "measurement2"})
    assert unknown["__typename"] == "ValidationError"
    assert [e["loc"] for e in unknown["errors"]] == [["input", "type"]]
    naive = await mutate(ws, CREATE_TASK, "createTask",
                         input={"title": "x", "dueAt": "2027-03-02T15:30:00"})
    assert naive["__typename"] == "ValidationError"
    assert [e["loc"] for e in naive["errors"]] == [["input", "dueAt"]]
    settings = await ws.patch("/api/v1/workspaces/current", json={"settings": {
        "task_types": ["call", "todo", "measurement2"]}})
    assert settings.status_code == 200, settings.text
    assert (await create_task(ws, type="measurement2"))["type"] == "measurement2"
    assert (await mutate(ws, CREATE_TASK, "createTask",
                         input={"title": "x", "type": "meeting"}))["__typename"] == \
        "ValidationError", "removed from the list"


async def test_complete_reopen_attempts_and_conflicts(ws: Workspace) -> None:
    task = await create_task(ws, type="measurement", data={"address": "Lenina 5"})
    done = await mutate(ws, COMPLETE_TASK, "completeTask", id=task["id"], input={
        "outcome": "done", "note": "Measured", "data": {"width_cm": 142.5}})
    assert done["__typename"] == "Task", done
    assert (done["status"], done["outcome"], done["note"], done["attempt"]) == \
        ("done", "done", "Measured", 1)
    assert done["data"] == {"address": "Lenina 5", "width_cm": 142.5}
    again = await mutate(ws, COMPLETE_TASK, "completeTask", id=task["id"])
    assert again["__typename"] == "ConflictError"
    reopened = await mutate(ws, REOPEN_TASK, "reopenTask", id=task["id"],
                            input={"dueAt": "2027-03-05T10:00:00+03:00"})
    assert (reopened["status"], reopened["attempt"], reopened["completedAt"]) == \
        ("open", 1, None)
    assert reopened["dueAt"] == "2027-03-05T07:00:00+00:00"
    bad = await mutate(ws, COMPLETE_TASK, "completeTask", id=task["id"],
                       input={"outcome": "exploded"})
    assert bad["__typename"] == "ValidationError"
    assert [e["loc"] for e in bad["errors"]] == [["input", "outcome"]]
    second = await mutate(ws, COMPLETE_TASK, "completeTask", id=task["id"],
                          input={"outcome": "no_answer"})
    assert second["attempt"] == 2 and second["outcome"] == "no_answer"

    stale = await mutate(ws, UPDATE_TASK, "updateTask", id=task["id"],
                         input={"title": "x"}, version=1)
    assert stale["__typename"] == "PreconditionFailedError"
    canceled = await mutate(ws, UPDATE_TASK, "updateTask", id=task["id"],
                            input={"status": "canceled"})
    assert canceled["__typename"] == "ConflictError", "a done task is not canceled"
    deleted = await mutate(ws, DELETE_TASK, "deleteTask", id=task["id"])
    assert deleted == {"__typename": "DeleteSuccess", "id": task["id"]}
    assert ok(await ws.gql(GET_TASK, {"id": task["id"]}))["task"] is None
    missing = await mutate(ws, COMPLETE_TASK, "completeTask", id=str(uuid.uuid4()))
    assert missing["__typename"] == "NotFoundError"


async def test_tasks_list_filters_and_due_order(ws: Workspace) -> None:
    contact = await create_contact(ws, fullName="Olga Kim", timezone="Asia/Vladivostok")
    late = await create_task(ws, title="Late", dueAt="2027-03-03T10:00:00Z",
                             contactId=contact["id"])
    early = await create_task(ws, title="Early", dueAt="2027-03-01T10:00:00Z")
    await create_task(ws, title="Meeting", type="meeting")
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        data = ok(await ws.gql(LIST_TASKS, {"first": 1, "after": after, "sort": "due_at",
                                            "filter": {"field": "type", "op": "eq",
                                                       "value": "todo"}}))["tasks"]
        seen += [e["node"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert [n["id"] for n in seen] == [early["id"], late["id"]]
    assert seen[1]["contact"] == {"fullName": "Olga Kim"}
    assert seen[1]["contactLocalTime"].endswith("+10:00")
    found = ok(await ws.gql(LIST_TASKS, {"q": "meet"}))["tasks"]["edges"]
    assert [e["node"]["title"] for e in found] == ["Meeting"]
    bad = await ws.gql(LIST_TASKS, {"sort": "title"})
    assert bad["errors"][0]["extensions"]["status"] == 422


async def test_agenda_buckets_and_team_agenda(
        ws: Workspace, frozen: Callable[[datetime | None], None]) -> None:
    manager = await new_user(ws, "manager")
    anna = await new_user(ws, "agent")
    boris = await new_user(ws, "agent")
    team = await new_team(ws, "Windows", manager, [anna, boris])
    as_manager, as_anna = await act_as(ws, manager), await act_as(ws, anna)
    frozen(FROZEN)  # 12:00 in Moscow

    async def task(user: dict[str, Any], due: str) -> str:
        return (await create_task(ws, assigneeId=user["id"], dueAt=due))["id"]

    overdue = await task(anna, f"2027-03-01T18:00:00{MSK}")
    today_past = await task(anna, f"2027-03-02T09:00:00{MSK}")
    today = await task(anna, f"2027-03-02T19:00:00{MSK}")
    upcoming = await task(anna, f"2027-03-04T10:00:00{MSK}")
    borises = await task(boris, f"2027-03-02T17:00:00{MSK}")

    assert await agenda_ids(as_anna, bucket="TODAY", first=1) == [today_past, today]
    assert await agenda_ids(as_anna, bucket="OVERDUE") == [overdue, today_past]
    assert await agenda_ids(as_anna, bucket="UPCOMING", assigneeId="me") == [upcoming]
    assert await agenda_ids(as_anna, bucket="TODAY", tz="Asia/Vladivostok") == [
        overdue, today_past]
    assert await agenda_ids(as_manager, bucket="TODAY", teamId=team["id"]) == [
        today_past, borises, today]
    assert await agenda_ids(as_anna, bucket="TODAY", teamId=team["id"]) == [today_past, today]
    assert await agenda_ids(as_anna, bucket="TODAY", assigneeId=boris["id"]) == []
    bad = await as_anna.gql(AGENDA, {"bucket": "TODAY", "tz": "Mars/Base"})
    assert bad["errors"][0]["extensions"]["status"] == 422
    assert bad["errors"][0]["extensions"]["errors"][0]["loc"] == ["tz"]


async def test_agents_see_only_their_tasks(ws: Workspace) -> None:
    anna = await new_user(ws, "agent")
    boris = await new_user(ws, "agent")
    as_anna, as_boris = await act_as(ws, anna), await act_as(ws, boris)
    borises = await create_task(as_boris, title="Boris's")
    annas = await create_task(as_anna, title="Anna's")
    assert annas["assigneeId"] == anna["id"]
    assert ok(await as_anna.gql(GET_TASK, {"id": borises["id"]}))["task"] is None
    listed = ok(await as_anna.gql(LIST_TASKS, {}))["tasks"]["edges"]
    assert [e["node"]["id"] for e in listed] == [annas["id"]]
    for document, field in [(COMPLETE_TASK, "completeTask"), (DELETE_TASK, "deleteTask")]:
        result = await mutate(as_anna, document, field, id=borises["id"])
        assert result["__typename"] == "NotFoundError", result
    assert (await ws.get(f"/api/v1/tasks/{borises['id']}")).json()["status"] == "open"


async def test_notifications_read_and_read_all(ws: Workspace) -> None:
    anna = await new_user(ws, "agent")
    boris = await new_user(ws, "agent")
    as_anna, as_boris = await act_as(ws, anna), await act_as(ws, boris)
    first = await create_task(ws, title="First", assigneeId=anna["id"])
    await create_task(ws, title="Second", assigneeId=anna["id"])
    edges = ok(await as_anna.gql(NOTIFICATIONS, {}))["notifications"]["edges"]
    nodes = [e["node"] for e in edges]
    assert [n["type"] for n in nodes] == ["task_assigned", "task_assigned"]
    assert nodes[1]["entityType"] == "task" and nodes[1]["entityId"] == first["id"]
    assert "First" in nodes[1]["title"]

    theirs = await mutate(as_boris, MARK_READ, "markNotificationRead", id=nodes[1]["id"])
    assert theirs["__typename"] == "NotFoundError"
    read = await mutate(as_anna, MARK_READ, "markNotificationRead", id=nodes[1]["id"])
    assert read["__typename"] == "Notification" and read["readAt"]
    unread = ok(await as_anna.gql(NOTIFICATIONS, {"unread": True}))["notifications"]["edges"]
    assert [e["node"]["id"] for e in unread] == [nodes[0]["id"]]
    assert await mutate(as_anna, MARK_ALL_READ, "markAllNotificationsRead") == {
        "__typename": "ReadAllSuccess", "count": 1}
    assert ok(await as_anna.gql(NOTIFICATIONS, {"unread": True}))["notifications"]["edges"] == []
    assert (await mutate(ws, MARK_ALL_READ, "markAllNotificationsRead"))["__typename"] == \
        "ForbiddenError", "an API key has no notifications"
