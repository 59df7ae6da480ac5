"""Who may see and change what: workspaces are sealed, users see by role and team, API keys
by scope, and every write names its actor."""

from __future__ import annotations

import httpx
import pytest

from tests.api.rest.conftest import (
    PASSWORD,
    act_as,
    assert_problem,
    new_company,
    new_contact,
    new_user,
    stored,
    token_for,
    with_client,
)
from tests.conftest import Workspace


async def visible_names(ws: Workspace) -> list[str]:
    response = await ws.get("/api/v1/contacts", params={"limit": "200"})
    assert response.status_code == 200, response.text
    return sorted(c["full_name"] for c in response.json()["data"])


# Workspaces are sealed

async def test_another_workspaces_contact_is_404_everywhere(ws: Workspace,
                                                             other_ws: Workspace) -> None:
    theirs = await new_contact(other_ws, first_name="Theirs", phones=["+7 495 1234567"])
    mine = await new_contact(ws, first_name="Mine")
    url = f"/api/v1/contacts/{theirs['id']}"
    assert_problem(await ws.get(url), 404)
    assert_problem(await ws.patch(url, json={"status": "hot"}), 404)
    assert_problem(await ws.delete(url), 404)
    assert_problem(await ws.post(f"{url}/restore"), 404)
    assert_problem(await ws.get(f"{url}/history"), 404)
    assert_problem(await ws.post(f"{url}/merge", json={"source_id": mine["id"]}), 404)
    assert_problem(await ws.post(f"/api/v1/contacts/{mine['id']}/merge",
                                 json={"source_id": theirs["id"]}), 404)
    after = (await other_ws.get(url)).json()
    assert stored(after) == stored(theirs)
    assert (await ws.get(f"/api/v1/contacts/{mine['id']}")).json()["version"] == 1


async def test_another_workspaces_deleted_contact_cannot_be_restored(
        ws: Workspace, other_ws: Workspace) -> None:
    theirs = await new_contact(other_ws, first_name="Theirs")
    await other_ws.delete(f"/api/v1/contacts/{theirs['id']}")
    assert_problem(await ws.post(f"/api/v1/contacts/{theirs['id']}/restore"), 404)
    assert_problem(await other_ws.get(f"/api/v1/contacts/{theirs['id']}"), 404)


async def test_another_workspaces_company_is_404_everywhere(ws: Workspace,
                                                            other_ws: Workspace) -> None:
    theirs = await new_company(other_ws, name="Theirs")
    url = f"/api/v1/companies/{theirs['id']}"
    assert_problem(await ws.get(url), 404)
    assert_problem(await ws.patch(url, json={"name": "Mine now"}), 404)
    assert_problem(await ws.delete(url), 404)
    assert_problem(await ws.post(f"{url}/restore"), 404)
    assert_problem(await ws.get(f"{url}/history"), 404)
    assert (await other_ws.get(url)).json() == theirs


async def test_another_workspaces_users_and_teams_are_404(ws: Workspace,
                                                          other_ws: Workspace) -> None:
    assert_problem(await ws.get(f"/api/v1/users/{other_ws.owner_id}"), 404)
    assert_problem(await ws.patch(f"/api/v1/users/{other_ws.owner_id}",
                                  json={"full_name": "Hijacked"}), 404)
    team = (await other_ws.post("/api/v1/teams", json={"name": "Sales"})).json()
    assert_problem(await ws.get(f"/api/v1/teams/{team['id']}"), 404)
    assert_problem(await ws.post("/api/v1/teams", json={
        "name": "Poach", "member_ids": [other_ws.owner_id]}), 422)
    users = (await ws.get("/api/v1/users")).json()["data"]
    assert [u["id"] for u in users] == [ws.owner_id]


async def test_another_workspaces_custom_fields_and_keys_are_invisible(
        ws: Workspace, other_ws: Workspace) -> None:
    field = (await other_ws.post("/api/v1/custom-fields", json={
        "object_type": "contact", "key": "secret", "label": "Secret", "type": "text"})).json()
    assert_problem(await ws.get(f"/api/v1/custom-fields/{field['id']}"), 404)
    assert (await ws.get("/api/v1/custom-fields")).json()["data"] == []
    their_keys = (await other_ws.get("/api/v1/api-keys")).json()["data"]
    assert_problem(await ws.post(f"/api/v1/api-keys/{their_keys[0]['id']}/revoke"), 404)
    assert (await other_ws.get("/api/v1/contacts")).status_code == 200


# Users, tokens and roles

async def test_password_grant_issues_tokens_that_act_as_the_user(ws: Workspace) -> None:
    agent = await new_user(ws, "agent", "Anna Agent")
    tokens = await token_for(ws.client, agent["email"])
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    assert tokens["refresh_token"].startswith("rlr_")
    as_agent = Workspace(ws.id, ws.owner_id, tokens["access_token"], ws.client)
    card = await new_contact(as_agent, first_name="Lead")
    assert card["owner_id"] == agent["id"]
    assert card["created_by"] == card["updated_by"] == f"user:{agent['id']}"


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "password", "username": "nobody@example.com", "password": PASSWORD},
     "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "rlr_nonsense"}, "invalid_grant"),
    ({"grant_type": "password", "password": PASSWORD}, "invalid_request"),
    ({"grant_type": "refresh_token"}, "invalid_request"),
    ({"username": "someone@example.com", "password": PASSWORD}, "invalid_request"),
    ({"grant_type": "password", "username": "a" * 321 + "@example.com", "password": PASSWORD},
     "invalid_request"),
    ({"grant_type": "password", "username": "someone@example.com", "password": PASSWORD,
      "workspace_id": "not-a-uuid"}, "invalid_request"),
    ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
])
async def test_bad_token_requests_are_oauth2_errors(client: httpx.AsyncClient,
                                                    form: dict[str, str], error: str) -> None:
    """RFC 6749 5.2: a 400 with OAuth2's `error` code, inside the problem."""
    response = await client.post("/api/v1/auth/token", data=form)
    body = assert_problem(response, 400)
    assert body["error"] == error and body["error_description"] == body["detail"]
    assert body["type"] == "https://relata.dev/problems/" + error.replace("_", "-")
    assert "access_token" not in body and PASSWORD not in response.text


async def test_a_token_request_must_be_a_form_sent_once(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    login = {"grant_type": "password", "username": agent["email"], "password": PASSWORD}
    as_json = await ws.client.post("/api/v1/auth/token", json=login)
    assert assert_problem(as_json, 400)["error"] == "invalid_request"
    repeated = await ws.client.post(
        "/api/v1/auth/token", content=f"grant_type=password&username={agent['email']}"
        f"&password={PASSWORD}&password=other",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "more than once" in assert_problem(repeated, 400)["detail"]
    # RFC 6749 3.2: parameters it does not define are ignored
    extra = await ws.client.post("/api/v1/auth/token", data={**login, "scope": "anything"})
    assert extra.status_code == 200 and extra.json()["token_type"] == "bearer"


async def test_wrong_password_is_refused(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    response = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": agent["email"], "password": "wrong password!"})
    body = assert_problem(response, 400)
    assert "access_token" not in body
    # OAuth2's error response (RFC 6749, 5.2) inside the problem, for OAuth2 client libraries
    assert body["error"] == "invalid_grant" and body["error_description"] == body["detail"]


async def test_refresh_token_rotates_and_the_old_one_is_refused(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    first = await token_for(ws.client, agent["email"])
    refreshed = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    as_agent = Workspace(ws.id, ws.owner_id, second["access_token"], ws.client)
    assert (await as_agent.get("/api/v1/contacts")).status_code == 200
    reused = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert assert_problem(reused, 400)["error"] == "invalid_grant"
    again = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert again.status_code == 200


async def test_an_access_token_is_not_a_refresh_token_and_vice_versa(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    tokens = await token_for(ws.client, agent["email"])
    as_refresh = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["access_token"]})
    assert as_refresh.status_code in (400, 422)
    assert_problem(as_refresh, as_refresh.status_code)
    bearer_refresh = await ws.client.get("/api/v1/contacts", headers={
        "Authorization": f"Bearer {tokens['refresh_token']}"})
    assert_problem(bearer_refresh, 401)


async def test_deactivated_user_is_locked_out(ws: Workspace,
                                              fresh_client: httpx.AsyncClient) -> None:
    agent = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent, fresh_client)
    tokens = await token_for(fresh_client, agent["email"])
    assert (await as_agent.get("/api/v1/contacts")).status_code == 200
    off = await ws.patch(f"/api/v1/users/{agent['id']}", json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert_problem(await as_agent.get("/api/v1/contacts"), 401)
    assert_problem(await fresh_client.post("/api/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}), 400)
    assert_problem(await fresh_client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": agent["email"], "password": PASSWORD}), 400)


async def test_agents_see_only_their_own_cards(ws: Workspace) -> None:
    anna, boris = await new_user(ws, "agent", "Anna"), await new_user(ws, "agent", "Boris")
    as_anna, as_boris = await act_as(ws, anna), await act_as(ws, boris)
    annas = await new_contact(as_anna, first_name="Annas", phones=["+7 495 1111111"])
    boriss = await new_contact(as_boris, first_name="Boriss", phones=["+7 495 2222222"])
    await new_contact(ws, first_name="Unassigned")

    assert await visible_names(as_anna) == ["Annas"]
    assert await visible_names(as_boris) == ["Boriss"]
    url = f"/api/v1/contacts/{boriss['id']}"
    assert_problem(await as_anna.get(url), 404)
    assert_problem(await as_anna.patch(url, json={"status": "hot"}), 404)
    assert_problem(await as_anna.delete(url), 404)
    assert_problem(await as_anna.get(f"{url}/history"), 404)
    assert_problem(await as_anna.post(f"/api/v1/contacts/{annas['id']}/merge",
                                      json={"source_id": boriss["id"]}), 404)
    assert_problem(await as_anna.get("/api/v1/contacts/lookup",
                                     params={"phone": "+7 495 2222222"}), 404)
    assert (await as_anna.get("/api/v1/contacts", params={"q": "boriss"})).json()["data"] == []
    search = await as_anna.post("/api/v1/contacts/search", json={
        "filter": {"field": "owner_id", "op": "eq", "value": boris["id"]}})
    assert search.json()["data"] == []
    assert (await as_boris.get(url)).json()["version"] == 1
    assert await visible_names(ws) == ["Annas", "Boriss", "Unassigned"]


async def test_an_agents_batch_upsert_cannot_touch_a_card_they_cannot_see(
        ws: Workspace) -> None:
    anna, boris = await new_user(ws, "agent", "Anna"), await new_user(ws, "agent", "Boris")
    boriss = await new_contact(await act_as(ws, boris), first_name="Boriss",
                               emails=["client@example.com"])
    response = await (await act_as(ws, anna)).post("/api/v1/contacts/batch", json={
        "upsert_on": "email", "items": [{"emails": ["client@example.com"], "status": "hot"}]})
    result = response.json()["results"][0]
    assert result["status"] == "error" and result["error"]["status"] == 409
    assert result["id"] is None
    card = (await ws.get(f"/api/v1/contacts/{boriss['id']}")).json()
    assert (card["status"], card["version"]) == ("new", 1)


async def test_agents_companies_follow_the_same_rule(ws: Workspace) -> None:
    anna, boris = await new_user(ws, "agent", "Anna"), await new_user(ws, "agent", "Boris")
    as_anna, as_boris = await act_as(ws, anna), await act_as(ws, boris)
    borises = await new_company(as_boris, name="Boris Ltd")
    assert borises["owner_id"] == boris["id"]
    assert_problem(await as_anna.get(f"/api/v1/companies/{borises['id']}"), 404)
    assert (await as_anna.get("/api/v1/companies")).json()["data"] == []
    linked = await as_anna.post("/api/v1/contacts", json={"company_id": borises["id"]})
    assert_problem(linked, 422)


async def test_a_manager_sees_the_team_and_unassigned_cards_but_not_other_teams(
        ws: Workspace) -> None:
    head = await new_user(ws, "manager", "Head")
    anna, boris = await new_user(ws, "agent", "Anna"), await new_user(ws, "agent", "Boris")
    outsider = await new_user(ws, "agent", "Outsider")
    team = await ws.post("/api/v1/teams", json={"name": "Moscow sales", "head_id": head["id"],
                                                 "member_ids": [anna["id"], boris["id"]]})
    assert team.status_code == 201, team.text
    assert sorted(team.json()["member_ids"]) == sorted([anna["id"], boris["id"]])
    for user, name in ((anna, "Annas"), (boris, "Boriss"), (outsider, "Outsiders")):
        await new_contact(await act_as(ws, user), first_name=name)
    await new_contact(ws, first_name="Unassigned")
    as_head = await act_as(ws, head)
    await new_contact(as_head, first_name="Heads")
    assert await visible_names(as_head) == ["Annas", "Boriss", "Heads", "Unassigned"]
    outsiders = (await ws.get("/api/v1/contacts", params={"q": "outsiders"})).json()["data"][0]
    assert_problem(await as_head.get(f"/api/v1/contacts/{outsiders['id']}"), 404)


async def test_an_admin_sees_everything(ws: Workspace) -> None:
    admin = await new_user(ws, "admin", "Admin")
    anna = await new_user(ws, "agent", "Anna")
    await new_contact(await act_as(ws, anna), first_name="Annas")
    await new_contact(ws, first_name="Unassigned")
    assert await visible_names(await act_as(ws, admin)) == ["Annas", "Unassigned"]


async def test_agents_see_team_setting_opens_teammates_cards(
        ws: Workspace, fresh_client: httpx.AsyncClient) -> None:
    anna, boris = await new_user(ws, "agent", "Anna"), await new_user(ws, "agent", "Boris")
    outsider = await new_user(ws, "agent", "Outsider")
    await ws.post("/api/v1/teams", json={"name": "Team", "member_ids": [anna["id"], boris["id"]]})
    as_anna = await act_as(ws, anna, fresh_client)
    await new_contact(as_anna, first_name="Annas")
    await new_contact(await act_as(ws, boris, fresh_client), first_name="Boriss")
    await new_contact(await act_as(ws, outsider, fresh_client), first_name="Outsiders")
    assert await visible_names(as_anna) == ["Annas"]

    setting = await ws.patch("/api/v1/workspaces/current",
                             json={"settings": {"agents_see_team": True}})
    assert setting.status_code == 200 and setting.json()["settings"]["agents_see_team"] is True
    assert setting.json()["settings"]["contact_statuses"][0] == "new"  # other settings kept
    assert await visible_names(as_anna) == ["Annas", "Boriss"]

    await ws.patch("/api/v1/workspaces/current", json={"settings": {"agents_see_team": False}})
    assert await visible_names(as_anna) == ["Annas"]


async def test_agents_cannot_administer_the_workspace(ws: Workspace) -> None:
    as_agent = await act_as(ws, await new_user(ws, "agent"))
    forbidden = [
        await as_agent.post("/api/v1/users", json={"email": "x@example.com"}),
        await as_agent.post("/api/v1/api-keys", json={"name": "mine"}),
        await as_agent.get("/api/v1/api-keys"),
        await as_agent.patch("/api/v1/workspaces/current", json={"name": "Mine"}),
        await as_agent.post("/api/v1/teams", json={"name": "Mine"}),
        await as_agent.post("/api/v1/custom-fields", json={
            "object_type": "contact", "key": "x", "label": "X", "type": "text"}),
        await as_agent.patch(f"/api/v1/users/{ws.owner_id}", json={"full_name": "Owned"}),
    ]
    for response in forbidden:
        assert_problem(response, 403)


async def test_a_user_may_rename_themselves_but_not_promote_themselves(ws: Workspace) -> None:
    agent = await new_user(ws, "agent", "Anna")
    as_agent = await act_as(ws, agent)
    renamed = await as_agent.patch(f"/api/v1/users/{agent['id']}", json={"full_name": "Anna K."})
    assert renamed.status_code == 200 and renamed.json()["full_name"] == "Anna K."
    assert_problem(await as_agent.patch(f"/api/v1/users/{agent['id']}",
                                        json={"role": "admin"}), 403)


async def test_an_admin_cannot_make_an_owner(ws: Workspace) -> None:
    as_admin = await act_as(ws, await new_user(ws, "admin"))
    response = await as_admin.post("/api/v1/users", json={"email": "boss@example.com",
                                                          "role": "owner"})
    assert_problem(response, 422)


async def test_an_admin_cannot_take_over_demote_or_become_an_owner(ws: Workspace) -> None:
    admin = await new_user(ws, "admin", "Admin")
    as_admin = await act_as(ws, admin)
    owner = f"/api/v1/users/{ws.owner_id}"
    for body in ({"password": "a new password!"}, {"role": "agent"}, {"is_active": False},
                 {"full_name": "Renamed"}):
        assert_problem(await as_admin.patch(owner, json=body), 403)
    assert_problem(await as_admin.patch(f"/api/v1/users/{admin['id']}",
                                        json={"role": "owner"}), 403)
    other = await new_user(ws, "agent", "Agent")
    assert_problem(await as_admin.patch(f"/api/v1/users/{other['id']}",
                                        json={"role": "owner"}), 403)
    promoted = await as_admin.patch(f"/api/v1/users/{other['id']}", json={"role": "manager"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    owner_row = (await ws.get(owner)).json()
    assert (owner_row["role"], owner_row["is_active"]) == ("owner", True)
    as_owner_by_key = await ws.patch(f"/api/v1/users/{admin['id']}", json={"role": "owner"})
    assert as_owner_by_key.status_code == 200  # the owner's own API key may


async def test_one_login_in_two_workspaces_must_name_the_workspace(
        ws: Workspace, other_ws: Workspace) -> None:
    email = f"shared-{ws.id[-8:]}@example.com"
    for workspace in (ws, other_ws):
        created = await workspace.post("/api/v1/users", json={
            "email": email, "role": "admin", "password": PASSWORD})
        assert created.status_code == 201, created.text
    ambiguous = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": email, "password": PASSWORD})
    assert_problem(ambiguous, 400)
    chosen = await ws.client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": email, "password": PASSWORD,
        "workspace_id": other_ws.id})
    assert chosen.status_code == 200, chosen.text
    theirs = await new_contact(other_ws, first_name="Theirs")
    as_user = Workspace(other_ws.id, other_ws.owner_id, chosen.json()["access_token"], ws.client)
    assert (await as_user.get(f"/api/v1/contacts/{theirs['id']}")).status_code == 200


async def test_duplicate_user_email_is_409(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    response = await ws.post("/api/v1/users", json={"email": agent["email"].upper()})
    assert_problem(response, 409)


# API keys

async def test_a_read_only_key_reads_but_cannot_write(ws: Workspace) -> None:
    card = await new_contact(ws, first_name="Ivan")
    created = await ws.post("/api/v1/api-keys", json={"name": "dashboard", "scope": "read"})
    assert created.status_code == 201, created.text
    assert created.json()["key"].startswith("rlk_") and created.json()["scope"] == "read"
    reader = Workspace(ws.id, ws.owner_id, created.json()["key"], ws.client)
    assert (await reader.get(f"/api/v1/contacts/{card['id']}")).status_code == 200
    assert (await reader.post("/api/v1/contacts/search", json={})).status_code == 200
    url = f"/api/v1/contacts/{card['id']}"
    for response in [
        await reader.post("/api/v1/contacts", json={"first_name": "X"}),
        await reader.patch(url, json={"status": "hot"}),
        await reader.delete(url),
        await reader.post(f"{url}/restore"),
        await reader.post("/api/v1/contacts/batch", json={"items": [{"first_name": "X"}]}),
        await reader.post("/api/v1/companies", json={"name": "X"}),
        await reader.post("/api/v1/api-keys", json={"name": "escalate"}),
    ]:
        assert_problem(response, 403)
    assert (await ws.get(url)).json()["version"] == 1
    assert len((await ws.get("/api/v1/contacts")).json()["data"]) == 1


async def test_api_key_secret_is_shown_once(ws: Workspace) -> None:
    created = (await ws.post("/api/v1/api-keys", json={"name": "site"})).json()
    listed = (await ws.get("/api/v1/api-keys")).json()["data"]
    entry = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in entry and created["key"].startswith(entry["prefix"])
    assert all(created["key"] not in str(v) for v in entry.values())


async def test_a_revoked_key_is_refused(ws: Workspace, fresh_client: httpx.AsyncClient) -> None:
    created = (await ws.post("/api/v1/api-keys", json={"name": "old site"})).json()
    old = with_client(Workspace(ws.id, ws.owner_id, created["key"], ws.client), fresh_client)
    assert (await old.get("/api/v1/contacts")).status_code == 200
    revoked = await ws.post(f"/api/v1/api-keys/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_problem(await old.get("/api/v1/contacts"), 401)
    assert_problem(await old.post("/api/v1/contacts", json={"first_name": "X"}), 401)
    assert (await with_client(ws, fresh_client).get("/api/v1/contacts")).status_code == 200


async def test_a_tampered_key_is_refused(ws: Workspace) -> None:
    tampered = ws.api_key[:-4] + ("AAAA" if not ws.api_key.endswith("AAAA") else "BBBB")
    response = await ws.client.get("/api/v1/contacts",
                                   headers={"Authorization": f"Bearer {tampered}"})
    assert_problem(response, 401)


# Actors

async def test_every_write_records_its_actor(ws: Workspace) -> None:
    keys = (await ws.get("/api/v1/api-keys")).json()["data"]
    key_actor = f"api_key:{keys[0]['id']}"
    agent = await new_user(ws, "admin", "Editor")
    as_user = await act_as(ws, agent)
    card = await new_contact(ws, first_name="Ivan")
    assert card["created_by"] == card["updated_by"] == key_actor
    edited = (await as_user.patch(f"/api/v1/contacts/{card['id']}",
                                  json={"status": "hot"})).json()
    assert edited["created_by"] == key_actor
    assert edited["updated_by"] == f"user:{agent['id']}"
    company = await new_company(as_user, name="Acme")
    assert company["created_by"] == f"user:{agent['id']}"
    await ws.delete(f"/api/v1/companies/{company['id']}")
    restored = (await as_user.post(f"/api/v1/companies/{company['id']}/restore")).json()
    assert restored["updated_by"] == f"user:{agent['id']}"
    history = (await ws.get(f"/api/v1/companies/{company['id']}/history")).json()["data"]
    assert [(e["type"], e["actor"]) for e in history] == [
        ("company.created", f"user:{agent['id']}"), ("company.deleted", key_actor),
        ("company.restored", f"user:{agent['id']}")]


async def test_user_tokens_are_bound_to_their_workspace(ws: Workspace,
                                                        other_ws: Workspace) -> None:
    agent = await new_user(ws, "admin")
    as_user = await act_as(ws, agent)
    theirs = await new_contact(other_ws, first_name="Theirs")
    assert_problem(await as_user.get(f"/api/v1/contacts/{theirs['id']}"), 404)
    assert await visible_names(as_user) == []


async def test_agents_event_feed_holds_only_cards_they_can_see(ws: Workspace) -> None:
    anna = await new_user(ws, "agent", "Anna")
    as_anna = await act_as(ws, anna)
    annas = await new_contact(as_anna, first_name="Annas", phones=["+7 495 3333333"])
    hidden = await new_contact(ws, first_name="Hidden", phones=["+7 495 4444444"])
    feed = await as_anna.get("/api/v1/events", params={"limit": "200"})
    assert feed.status_code == 200, feed.text
    ids = {e["entity_id"] for e in feed.json()["data"]}
    assert annas["id"] in ids
    assert hidden["id"] not in ids
    assert all(e["entity_type"] in ("contact", "company") for e in feed.json()["data"])
    owner_feed = await ws.get("/api/v1/events", params={"limit": "200"})
    assert hidden["id"] in {e["entity_id"] for e in owner_feed.json()["data"]}


async def test_password_guessing_is_rate_limited_per_login(ws: Workspace) -> None:
    email = (await new_user(ws, "agent", "Guessed"))["email"]
    statuses = []
    for attempt in range(12):
        response = await ws.client.post("/api/v1/auth/token", data={
            "grant_type": "password", "username": email, "password": f"wrong-{attempt}"})
        statuses.append(response.status_code)
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429, 429]
    assert int(response.headers["retry-after"]) >= 0
