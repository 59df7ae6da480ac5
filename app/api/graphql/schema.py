"""The GraphQL schema: the same services as REST, Relay-style connections, union errors.

Each area (customers, sales, work, timeline) defines its own Query and Mutation classes;
they are merged here into the one schema."""

from __future__ import annotations

from typing import Any

import strawberry
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.unset import UNSET, UnsetType

from app.api.graphql import (
    customers,
    forms,
    inbox,
    live,
    messaging,
    rules,
    sales,
    scoring,
    timeline,
    webhooks,
    work,
)
from app.api.graphql.context import get_context
from app.api.graphql.types.common import graphql_loc
from app.domain.shared.errors import DomainError

MAX_DEPTH = 8
MAX_ALIASES = 30
MAX_TOKENS = 2000

AREAS = (customers, sales, scoring, work, timeline, rules, messaging, forms, webhooks,
         inbox)
Query = merge_types("Query", tuple(t for area in AREAS for t in area.QUERY_TYPES))
Mutation = merge_types("Mutation", tuple(t for area in AREAS for t in area.MUTATION_TYPES))
Subscription = merge_types("Subscription", tuple(live.SUBSCRIPTION_TYPES))


class DomainErrorsAsGraphQLErrors(strawberry.extensions.SchemaExtension):
    """Query-side domain errors (a bad filter, a bad cursor) become GraphQL errors with the
    problem's status and field errors in `extensions`."""

    def on_execute(self):  # type: ignore[no-untyped-def]
        yield
        result = self.execution_context.result
        if not result or not result.errors:
            return
        for error in result.errors:
            original = error.original_error
            if isinstance(original, DomainError):
                error.extensions = {
                    "status": original.status, "type": original.type_slug,
                    "errors": [{"loc": graphql_loc(e.get("loc", []), body=None),
                                "msg": e.get("msg", ""), "type": e.get("type", "")}
                               for e in original.errors]}


def _is_unexpected(error: GraphQLError) -> bool:
    """A resolver failed for a reason that is not the client's (a bug, the database)."""
    original = error.original_error
    return error.path is not None and original is not None \
        and not isinstance(original, DomainError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """As REST's 500: the client learns that something failed, never SQL, parameters or
    tracebacks. Strawberry has logged the real error by the time it is masked."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected,
                         error_message="something went wrong on our side")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"status": 500, "type": "internal"}
        return masked


class RelataSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        """Log what failed on our side; a client's bad query is its answer, not our error."""
        super().process_errors([e for e in errors if _is_unexpected(e)], execution_context)


schema = RelataSchema(
    query=Query, mutation=Mutation, subscription=Subscription,
    extensions=[QueryDepthLimiter(max_depth=MAX_DEPTH),
                MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
                MaxTokensLimiter(max_token_count=MAX_TOKENS), DomainErrorsAsGraphQLErrors,
                MaskUnexpectedErrors()],
)


class RelataGraphQLRouter(GraphQLRouter[Any, Any]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL in dev and test; production does not serve it."""
        if request.app.state.resources.settings.env == "production":
            raise HTTPException(status_code=404, detail="GraphiQL is not served in production")
        return await super().render_graphql_ide(request)

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket once, from the `connection_init` payload
        ({"Authorization": "Bearer <token>"}) or the handshake's header; refuse it otherwise."""
        try:
            context.principal = await live.authenticate_connection(context)
        except DomainError as exc:
            raise ConnectionRejectionError({"status": exc.status, "detail": str(exc)}) from exc
        return UNSET


def graphql_router() -> GraphQLRouter[Any, Any]:
    return RelataGraphQLRouter(schema, context_getter=get_context)
