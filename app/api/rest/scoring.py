"""REST: /api/v1/deal-scoring — the workspace's scoring rules and class thresholds."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/deal-scoring", tags=["deal scoring"])
