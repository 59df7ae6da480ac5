"""The pipeline a new workspace starts with: the window shop of S3, usable as is."""

from __future__ import annotations

from typing import Any

DEFAULT_PIPELINE_NAME = "Sales"

# name, kind, probability (%), rotting days
DEFAULT_STAGES: list[dict[str, Any]] = [
    {"name": "New request", "kind": "open", "probability": 10, "rotting_days": 1},
    {"name": "Clarified", "kind": "open", "probability": 20, "rotting_days": 3},
    {"name": "Measurement", "kind": "open", "probability": 40, "rotting_days": 5},
    {"name": "Pricing", "kind": "open", "probability": 50, "rotting_days": 5},
    {"name": "Proposal", "kind": "open", "probability": 60, "rotting_days": 7},
    {"name": "Payment", "kind": "open", "probability": 80, "rotting_days": 5},
    {"name": "Installation", "kind": "open", "probability": 90, "rotting_days": 14},
    {"name": "Won", "kind": "won", "probability": 100, "rotting_days": None},
    {"name": "Lost", "kind": "lost", "probability": 0, "rotting_days": None},
    {"name": "Archive", "kind": "lost", "probability": 0, "rotting_days": None},
]
