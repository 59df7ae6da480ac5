"""GraphQL for activities and the timeline."""

from __future__ import annotations

QUERY_TYPES: list[type] = []
MUTATION_TYPES: list[type] = []
