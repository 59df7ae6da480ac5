"""The inbox core that channels call: match_or_create_contact and receive_lead."""

from __future__ import annotations

import uuid
from typing import Any

from app.db import unit_of_work
from app.domain.inbox import service as inbox
from app.domain.shared.principal import Principal
from tests.conftest import Workspace


def integration(ws: Workspace) -> Principal:
    return Principal(workspace_id=uuid.UUID(ws.id), kind="integration", id=uuid.uuid4())


async def test_same_person_by_phone_and_email_is_one_card(app: Any, ws: Workspace) -> None:
    sessions = app.state.resources.sessions
    who = integration(ws)
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        card, created = await inbox.match_or_create_contact(
            session, who, phone="8 (495) 123-45-67", name="Anna", source="website")
        assert created
        assert card.phones[0]["e164"] == "+74951234567" and card.full_name == "Anna"
        assert card.emails == []
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        again, created = await inbox.match_or_create_contact(
            session, who, phone="+7 495 1234567", email="Anna@Example.com")
        assert (again.id, created) == (card.id, False)
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        # The email learned from that lead now finds the same card on its own.
        by_mail, created = await inbox.match_or_create_contact(
            session, who, email="anna@example.com")
        assert (by_mail.id, created) == (card.id, False)
    card_read = await ws.get(f"/api/v1/contacts/{card.id}")
    assert [e["email"] for e in card_read.json()["emails"]] == ["anna@example.com"]


async def test_phone_wins_over_email_of_another_card(app: Any, ws: Workspace) -> None:
    a = (await ws.post("/api/v1/contacts", json={"full_name": "A", "phones": ["+74950000001"]}))
    b = (await ws.post("/api/v1/contacts", json={"full_name": "B", "emails": ["b@example.com"]}))
    async with unit_of_work(app.state.resources.sessions, uuid.UUID(ws.id)) as session:
        card, created = await inbox.match_or_create_contact(
            session, integration(ws), phone="84950000001", email="b@example.com")
    assert (str(card.id), created) == (a.json()["id"], False)
    assert (await ws.get(f"/api/v1/contacts/{b.json()['id']}")).json()["emails"][0][
        "email"] == "b@example.com"


async def test_receive_lead_is_idempotent_per_source(app: Any, ws: Workspace) -> None:
    sessions = app.state.resources.sessions
    who = integration(ws)
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        card, _ = await inbox.match_or_create_contact(session, who, phone="+74957770001")
        item, created = await inbox.receive_lead(session, who, channel="call",
                                                 source_id="call-1", contact_id=card.id,
                                                 data={"from": "+74957770001"})
        assert created and item.status == "new"
    async with unit_of_work(sessions, uuid.UUID(ws.id)) as session:
        again, created = await inbox.receive_lead(session, who, channel="call",
                                                  source_id="call-1", contact_id=card.id,
                                                  data={})
        assert (again.id, created) == (item.id, False)
