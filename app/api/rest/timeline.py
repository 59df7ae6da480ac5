"""REST: /api/v1/timeline — parse, call the service, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["timeline"])  # /api/v1/{contacts,companies,deals}/{id}/timeline
