"""Exports: the list filters and visibility, streamed as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io

import orjson

from tests.api.rest.conftest import PROBLEM, act_as, new_company, new_contact, new_user
from tests.conftest import Workspace


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_contacts_export_as_csv_with_the_list_filters(ws: Workspace) -> None:
    await new_contact(ws, full_name="Иван Петров", phones=["8 (912) 345-67-89"],
                      emails=["ivan@example.com"], status="hot", tags=["vip", "opt"])
    await new_contact(ws, full_name="Արամ Սարգսյան", status="hot")
    await new_contact(ws, full_name="Nguyễn Văn An", status="cold")

    response = await ws.get("/api/v1/exports/contacts", params={"format": "csv",
                                                                "status": "hot"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = read_csv(response.text)
    assert [r["full_name"] for r in rows] == ["Иван Петров", "Արամ Սարգսյան"]
    assert rows[0]["phones"] == "'+79123456789"  # a leading + would start a formula
    assert rows[0]["emails"] == "ivan@example.com"
    assert rows[0]["tags"] == "vip, opt"
    assert "search_text" not in rows[0] and "workspace_id" not in rows[0]
    assert response.text.count("\r\n") == 3  # header + two rows, RFC 4180 line ends


async def test_csv_cells_that_spreadsheets_would_run_are_neutralized(ws: Workspace) -> None:
    for name in ("=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)", "\tTab",
                 "\rReturn", "Line one\nline \"two\", three"):
        await new_contact(ws, full_name="x", source=name)

    rows = read_csv((await ws.get("/api/v1/exports/contacts")).text)
    assert [r["source"] for r in rows] == [
        "'=HYPERLINK(\"http://evil\")", "'+1+2", "'-2+3", "'@SUM(A1)", "'\tTab", "'\rReturn",
        "Line one\nline \"two\", three"]  # quoted newlines and quotes survive RFC 4180


async def test_jsonl_keeps_types_and_every_field(ws: Workspace) -> None:
    company = await new_company(ws, name="Okna")
    contact = await new_contact(ws, full_name="Anna", company_id=company["id"],
                                phones=["+37410123456"], birthday="1990-05-01")
    response = await ws.get("/api/v1/exports/contacts", params={"format": "jsonl",
                                                                "company.name": "Okna"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert len(lines) == 1
    assert lines[0]["id"] == contact["id"]
    assert lines[0]["phones"][0]["e164"] == "+37410123456"
    assert lines[0]["birthday"] == "1990-05-01"


async def test_every_object_exports(ws: Workspace) -> None:
    contact = await new_contact(ws, full_name="Deal person")
    pipelines = (await ws.get("/api/v1/pipelines")).json()["data"]
    deal = await ws.post("/api/v1/deals", json={"title": "Windows", "contact_ids": [
        contact["id"]], "pipeline_id": pipelines[0]["id"], "amount": "1500.50",
        "currency": "RUB"})
    assert deal.status_code == 201, deal.text
    task = await ws.post("/api/v1/tasks", json={"title": "Call back", "contact_id":
                                                contact["id"]})
    assert task.status_code == 201, task.text
    note = await ws.post("/api/v1/activities", json={"type": "note", "body": "=cmd|' /C calc'!A0",
                                                     "contact_id": contact["id"]})
    assert note.status_code == 201, note.text

    deals = [orjson.loads(x) for x in (await ws.get(
        "/api/v1/exports/deals", params={"format": "jsonl"})).content.splitlines()]
    assert [d["title"] for d in deals] == ["Windows"]
    assert deals[0]["contact_ids"] == [contact["id"]] and deals[0]["amount"] == "1500.50"
    tasks = read_csv((await ws.get("/api/v1/exports/tasks",
                                   params={"contact_id": contact["id"]})).text)
    assert [t["title"] for t in tasks] == ["Call back"]
    activities = read_csv((await ws.get("/api/v1/exports/activities")).text)
    assert activities[0]["body"] == "'=cmd|' /C calc'!A0"
    companies = read_csv((await ws.get("/api/v1/exports/companies")).text)
    assert companies == []


async def test_an_agent_exports_only_what_they_may_see(ws: Workspace) -> None:
    agent = await new_user(ws, "agent")
    as_agent = await act_as(ws, agent)
    await new_contact(as_agent, full_name="Mine")
    await new_contact(ws, full_name="The owner's")
    rows = read_csv((await as_agent.get("/api/v1/exports/contacts")).text)
    assert [r["full_name"] for r in rows] == ["Mine"]


async def test_another_workspace_sees_nothing(ws: Workspace, other_ws: Workspace) -> None:
    await new_contact(ws, full_name="Secret")
    rows = read_csv((await other_ws.get("/api/v1/exports/contacts")).text)
    assert rows == []


async def test_bad_export_requests_are_problems(ws: Workspace) -> None:
    for url, params, status in [
        ("/api/v1/exports/contacts", {"format": "xlsx"}, 422),
        ("/api/v1/exports/widgets", {}, 422),
        ("/api/v1/exports/contacts", {"nonsense": "1"}, 422),
        ("/api/v1/exports/contacts", {"created_at__gte": "yesterday"}, 422),
    ]:
        response = await ws.get(url, params=params)
        assert response.status_code == status, (url, params, response.text)
        assert response.headers["content-type"] == PROBLEM
    response = await ws.client.get("/api/v1/exports/contacts")
    assert response.status_code == 401


async def test_exports_take_every_kind_of_list_filter(ws: Workspace) -> None:
    """Lists, arrays, times and searches are bound exactly as the list endpoint binds them."""
    first = await new_contact(ws, full_name="Vip Hot", status="hot", tags=["vip", "b2b"])
    await new_contact(ws, full_name="Warm Wholesale", status="warm", tags=["wholesale"])
    await new_contact(ws, full_name="Cold Vip", status="cold", tags=["vip"])
    cases = [
        ({"status__in": "hot,warm"}, ["Vip Hot", "Warm Wholesale"]),
        ({"tags__hasany": "vip,wholesale", "status__in": "hot,cold"}, ["Vip Hot", "Cold Vip"]),
        ({"tags__has": "vip", "created_at__gte": first["created_at"]}, ["Vip Hot", "Cold Vip"]),
        ({"q": "wholesale"}, ["Warm Wholesale"]),
    ]
    for params, names in cases:
        for fmt in ("csv", "jsonl"):
            response = await ws.get("/api/v1/exports/contacts", params={**params, "format": fmt})
            assert response.status_code == 200, response.text
            got = ([r["full_name"] for r in read_csv(response.text)] if fmt == "csv" else
                   [orjson.loads(line)["full_name"] for line in response.content.splitlines()])
            assert got == names, (params, fmt)
