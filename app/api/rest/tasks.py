"""REST: /api/v1/tasks — parse, call the service, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
