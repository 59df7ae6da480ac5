"""record_variables: what a template sees of a contact, company, deal, task and owner."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.shared.errors import NotFoundError
from app.domain.shared.principal import system_principal
from app.domain.templates.variables import record_variables
from tests.api.rest.conftest import new_company, new_contact, new_user
from tests.api.rest.test_pipelines import new_deal
from tests.api.rest.test_tasks import new_task, sessions
from tests.conftest import Workspace

__all__ = ["sessions"]


async def test_a_deal_brings_its_buyer_company_stage_and_owner(
        ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    owner = await new_user(ws, "manager", name="Olga Petrova")
    company = await new_company(ws, name="Dacha LLC", custom_fields={})
    buyer = await new_contact(ws, first_name="Ivan", last_name="Ivanov",
                              emails=[{"email": "ivan@example.com"}],
                              phones=[{"number": "+7 916 123-45-67"}],
                              company_id=company["id"])
    deal = await new_deal(ws, title="Windows", contact_ids=[buyer["id"]], owner_id=owner["id"],
                          currency="RUB", line_items=[
                              {"name": "Window 120x140", "quantity": "2", "unit_price": "15000"}])
    task = await new_task(ws, deal_id=deal["id"], data={"width_cm": 120})
    workspace_id = uuid.UUID(ws.id)
    async with unit_of_work(sessions, workspace_id) as session:
        principal = system_principal(workspace_id)
        by_deal = await record_variables(session, principal, deal_id=uuid.UUID(deal["id"]))
        by_task = await record_variables(session, principal, task_id=uuid.UUID(task["id"]))
    assert by_deal["contact"]["full_name"] == "Ivan Ivanov"
    assert by_deal["contact"]["email"] == "ivan@example.com"
    assert by_deal["contact"]["phone"] == "+79161234567"
    assert by_deal["contact"]["custom_fields"] == {}
    assert by_deal["company"]["name"] == "Dacha LLC"
    assert by_deal["deal"]["amount"] == "30000.00" and by_deal["deal"]["currency"] == "RUB"
    assert by_deal["deal"]["line_items"][0]["total"] == "30000.00"
    assert by_deal["deal"]["stage"]["name"] == "New request"
    assert by_deal["deal"]["pipeline"]["name"] == "Sales"
    assert by_deal["owner"] == {"id": owner["id"], "full_name": "Olga Petrova",
                                "email": owner["email"]}
    assert by_deal["workspace"] == {"name": "Okna Plus", "timezone": "Europe/Moscow"}
    assert by_deal["task"] is None
    assert by_task["task"]["data"] == {"width_cm": 120}
    assert by_task["deal"]["title"] == "Windows"
    assert by_task["contact"]["first_name"] == "Ivan"


async def test_another_workspaces_record_is_not_found(
        ws: Workspace, other_ws: Workspace, sessions: async_sessionmaker[AsyncSession]) -> None:
    theirs = await new_contact(other_ws, first_name="Secret")
    workspace_id = uuid.UUID(ws.id)
    async with unit_of_work(sessions, workspace_id) as session:
        with pytest.raises(NotFoundError):
            await record_variables(session, system_principal(workspace_id),
                                   contact_id=uuid.UUID(theirs["id"]))
        nothing = await record_variables(session, system_principal(workspace_id))
    assert nothing["contact"] is None and nothing["workspace"]["name"] == "Okna Plus"
