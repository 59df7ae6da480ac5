"""GraphQL for tasks and notifications."""

from __future__ import annotations

QUERY_TYPES: list[type] = []
MUTATION_TYPES: list[type] = []
