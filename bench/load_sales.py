"""The sales scenarios of `bench.load` (dataset: `bench.generate_sales`).

* `agenda`: `GET /api/v1/tasks/agenda?bucket=today&limit=50` ("my open tasks due today") with
  the access token of a random agent: the caller's own tasks (`assignee_id=me`), as a
  frontend's "my work" screen asks all day.
* `board`: `GET /api/v1/pipelines/{default}/board` (20 deals per stage, count / total /
  weighted per stage), as `--board-as`: `key` (the owner's API key: every deal of the
  workspace, the head of sales' view), `manager` (a team's deals) or `agent` (own deals).
* `move`: `POST /api/v1/deals/{id}/move {"stage_id": …}`: each request takes the next open deal
  of a shuffled list (so no two requests in flight touch the same deal) and moves it to a
  random other open stage, as the deal's owner (`--move-as owner`, a user token) or with the
  API key (`--move-as key`). Deals stay open, so no lost reason is needed and every move is a
  real move: an interval closed and one opened, a re-score, the deal updated, an event.

User tokens are minted with the run's `RELATA_SECRET_KEY` by the app's own
`issue_access_token` (the same token `POST /api/v1/auth/token` returns for the password in
the state file), so both servers resolve the same principals.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from bench.common import db_url

SALES_SCENARIOS = ("agenda", "board", "move")
SALES_TARGETS: dict[str, dict[str, float]] = {
    "agenda": {"ratio": 0.35},
    "board": {"ratio": 0.35},
    "move": {"moves_per_s": 500.0},
}


def _build(method: str, path: str, token: str, body: bytes | None = None) -> bytes:
    from bench.load import build_request

    return build_request(method, path, token, body)


@dataclass
class SalesWorkload:
    api_key: str
    pipeline_id: str
    open_stages: list[str]
    agent_tokens: list[str]
    manager_tokens: list[str]
    user_tokens: dict[str, str]  # user id -> access token
    deals: list[list[str]]  # [deal id, current stage id, owner id], shuffled
    agenda_query: str = "bucket=today&limit=50"
    board_query: str = ""
    board_as: str = "key"
    move_as: str = "owner"
    cursor: int = 0

    def agenda(self, rng: random.Random) -> tuple[bytes, int]:
        token = rng.choice(self.agent_tokens)
        return _build("GET", f"/api/v1/tasks/agenda?{self.agenda_query}", token), 0

    def board(self, rng: random.Random) -> tuple[bytes, int]:
        token = {"key": lambda: self.api_key, "manager": lambda: rng.choice(self.manager_tokens),
                 "agent": lambda: rng.choice(self.agent_tokens)}[self.board_as]()
        query = f"?{self.board_query}" if self.board_query else ""
        return _build("GET", f"/api/v1/pipelines/{self.pipeline_id}/board{query}", token), 0

    def move(self, rng: random.Random) -> tuple[bytes, int]:
        deal = self.deals[self.cursor % len(self.deals)]
        self.cursor += 1
        target = rng.choice([s for s in self.open_stages if s != deal[1]])
        deal[1] = target  # both servers move the same deals in turn: keep the list current
        token = self.api_key if self.move_as == "key" else self.user_tokens[deal[2]]
        body = orjson.dumps({"stage_id": target})
        return _build("POST", f"/api/v1/deals/{deal[0]}/move", token, body), 0


async def sales_workload(server: str, db: str, state: dict[str, Any], secret_key: str, *,
                         agenda_query: str, board_query: str, board_as: str,
                         move_as: str) -> SalesWorkload:
    from app.domain.workspaces import secrets

    if state.get("kind") != "sales":
        raise SystemExit(f"{db} is not a sales dataset: run `python -m bench.generate_sales "
                         f"--db {db}` first")
    ws = state["workspaces"][0]
    now = datetime.now(UTC)
    tokens = {u["id"]: secrets.issue_access_token(
        secret=secret_key, user_id=uuid.UUID(u["id"]), workspace_id=uuid.UUID(ws["id"]),
        now=now, minutes=24 * 60) for u in state["users"]}
    conn = await asyncpg.connect(db_url(server, db))
    try:
        rows = await conn.fetch(
            "select d.id::text, d.stage_id::text, d.owner_id::text from deals d "
            "join stages s on s.workspace_id = d.workspace_id and s.id = d.stage_id "
            "where d.pipeline_id = $1 and d.status = 'open' and d.deleted_at is null "
            "and d.owner_id is not null and s.archived_at is null order by d.id",
            uuid.UUID(state["pipeline_id"]))
        stages = [r[0] for r in await conn.fetch(
            "select id::text from stages where pipeline_id = $1 and kind = 'open' "
            "and archived_at is null and deleted_at is null order by position",
            uuid.UUID(state["pipeline_id"]))]
    finally:
        await conn.close()
    deals = [[r[0], r[1], r[2]] for r in rows if r[2] in tokens]
    random.Random(11).shuffle(deals)
    return SalesWorkload(
        api_key=ws["api_key"], pipeline_id=state["pipeline_id"], open_stages=stages,
        agent_tokens=[tokens[u["id"]] for u in state["users"] if u["role"] == "agent"],
        manager_tokens=[tokens[u["id"]] for u in state["users"] if u["role"] == "manager"],
        user_tokens=tokens, deals=deals, agenda_query=agenda_query, board_query=board_query,
        board_as=board_as, move_as=move_as)
