"""GraphQL for pipelines, stages, deals, scoring."""

from __future__ import annotations

QUERY_TYPES: list[type] = []
MUTATION_TYPES: list[type] = []
