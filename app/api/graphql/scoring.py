"""GraphQL for deal scoring: the rules, thresholds and manual adjustments."""

from __future__ import annotations

QUERY_TYPES: list[type] = []
MUTATION_TYPES: list[type] = []
