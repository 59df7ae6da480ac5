"""GraphQL subscriptions: the event log live, over WebSocket (graphql-transport-ws).

    subscription { events(after: "…", types: ["deal.stage_changed"]) { cursor type entityId } }

The same loop as GET /api/v1/events/stream (app/api/live.py): commit order, the caller's
visibility, resumable from any event's `cursor`. The token goes in the `connection_init`
payload as {"Authorization": "Bearer <token>"} (browsers cannot set WebSocket headers), or
in the handshake's Authorization header."""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator

import strawberry
from fastapi.security import HTTPAuthorizationCredentials
from strawberry.scalars import JSON

from app.api.deps import authenticate, resources
from app.api.graphql.context import GraphQLContext, bearer_of
from app.api.live import follow_events, starting_cursor
from app.domain.outbox.models import Event as EventModel
from app.domain.outbox.service import decode_event_cursor
from app.domain.shared.principal import Principal

POLL_SECONDS = 1.0


@strawberry.type(description="One entry of the workspace's event log.")
class Event:
    cursor: str = strawberry.field(description="Resume after this event with `after`")
    id: strawberry.ID
    type: str
    entity_type: str
    entity_id: strawberry.ID
    actor: str
    occurred_at: datetime.datetime
    changed: list[str]
    before: JSON | None
    after: JSON | None

    @classmethod
    def of(cls, cursor: str, e: EventModel) -> Event:
        return cls(cursor=cursor, id=strawberry.ID(str(e.id)), type=e.type,
                   entity_type=e.entity_type, entity_id=strawberry.ID(str(e.entity_id)),
                   actor=e.actor, occurred_at=e.occurred_at, changed=list(e.changed),
                   before=e.before, after=e.after)


def credentials_of(context: GraphQLContext) -> HTTPAuthorizationCredentials | None:
    """The bearer token of a subscription: `connection_init` payload first, then the
    handshake's header."""
    params = context.connection_params or {}
    value = params.get("Authorization") or params.get("authorization")
    if isinstance(value, str) and value.strip():
        scheme, _, token = value.strip().partition(" ")
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    return bearer_of(context.request)


async def authenticate_connection(context: GraphQLContext) -> Principal:
    return await authenticate(context.request, credentials_of(context))


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(description=(
        "The event log live, in commit order and with your visibility (as GET "
        "/api/v1/events/stream). Without `after` it starts at the newest event."))
    async def events(self, info: strawberry.Info, after: str | None = None,
                     types: list[str] | None = None) -> AsyncGenerator[Event, None]:
        principal = info.context.principal or await authenticate_connection(info.context)
        if after:
            decode_event_cursor(after)
        sessions = resources(info.context.request).sessions
        cursor = after or await starting_cursor(sessions, principal)
        follower = follow_events(sessions, principal, lambda: authenticate_connection(info.context),
                                 after=cursor, types=types or None, poll=POLL_SECONDS)
        try:
            async for item in follower:
                if item is not None:
                    yield Event.of(*item)
        finally:
            await follower.aclose()


QUERY_TYPES: list[type] = []
MUTATION_TYPES: list[type] = []
SUBSCRIPTION_TYPES: list[type] = [LiveSubscription]
