"""The baseline of bench/forms.py: a bare FastAPI endpoint that takes a form submission as
JSON and stores it with one INSERT (asyncpg pool, no ORM, no checks, no events).

    RELATA_DATABASE_URL=postgresql://… uvicorn bench.reference_forms:app

This is what "accept a POST and write one row" costs on this machine with the same
framework, server and database, so the ratio isolates Relata's own work: the form lookup,
CORS, two Redis rate-limit counters, validation, the card match or create, the deal, the
inbox item, the events, all in one transaction."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

TABLE = "bench_form_reference"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["RELATA_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/submit", status_code=201)
async def submit(request: Request) -> Response:
    body = await request.body()
    data = orjson.loads(body)
    row_id = await request.app.state.pool.fetchval(
        f"INSERT INTO {TABLE} (data) VALUES ($1::jsonb) RETURNING id", orjson.dumps(data).decode())
    return Response(orjson.dumps({"id": row_id, "status": "received"}), status_code=201,
                    media_type="application/json")
