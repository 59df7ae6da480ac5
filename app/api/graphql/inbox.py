"""GraphQL for the inbox: the same services as REST (app/api/rest/inbox.py)."""

from __future__ import annotations

import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import filter_conditions, in_savepoint, page_info, page_of, parse_id
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
)
from app.domain.inbox import service as inbox
from app.domain.inbox.models import InboxItem as InboxItemModel
from app.domain.inbox.schemas import InboxAccept, InboxDecline, InboxLink
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor


def _id(value: object) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="An incoming lead from a call, a form, an email or a message.")
class InboxItem:
    id: strawberry.ID
    channel: str = strawberry.field(description="call, form, email, sms or message")
    source_id: str
    status: str = strawberry.field(description="new, accepted, linked or declined")
    contact_id: strawberry.ID
    contact_created: bool
    deal_id: strawberry.ID | None
    data: JSON
    received_at: datetime.datetime
    decided_at: datetime.datetime | None
    decided_by: str | None
    decline_reason: str | None
    first_response_at: datetime.datetime | None
    first_response_seconds: int | None
    version: int
    created_at: datetime.datetime

    @classmethod
    def of(cls, i: InboxItemModel) -> InboxItem:
        return cls(id=strawberry.ID(str(i.id)), channel=i.channel, source_id=i.source_id,
                   status=i.status, contact_id=strawberry.ID(str(i.contact_id)),
                   contact_created=i.contact_created, deal_id=_id(i.deal_id), data=i.data,
                   received_at=i.received_at, decided_at=i.decided_at,
                   decided_by=i.decided_by, decline_reason=i.decline_reason,
                   first_response_at=i.first_response_at,
                   first_response_seconds=i.first_response_seconds, version=i.version,
                   created_at=i.created_at)


@strawberry.type
class InboxItemEdge:
    cursor: str
    node: InboxItem


@strawberry.type
class InboxItemConnection:
    edges: list[InboxItemEdge]
    page_info: PageInfo


@strawberry.input(description="Accept a lead into a deal; all optional.")
class AcceptInboxItemInput:
    pipeline_id: strawberry.ID | None = None
    stage_id: strawberry.ID | None = None
    title: str | None = None
    owner_id: strawberry.ID | None = None


InboxItemResult = Annotated[
    InboxItem | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("InboxItemResult")]


@strawberry.type
class InboxQuery:
    @strawberry.field(description="Incoming leads, newest first (those whose card you see). "
                                  "`status` and `channel` filter; `filter` as in the REST "
                                  "search JSON.")
    async def inbox(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                    status: str | None = None, channel: str | None = None,
                    filter: JSON | None = None) -> InboxItemConnection:
        parts = [{"field": k, "op": "eq", "value": v}
                 for k, v in (("status", status), ("channel", channel)) if v is not None]
        if filter is not None:
            parts.append(filter)
        tree = {"and": parts} if parts else None
        async with info.context.db_lock:
            rows, next_cursor = await inbox.list_items(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, inbox.LIST_SPEC, tree),
                page=page_of(first, after, None))
        edges = [InboxItemEdge(cursor=row_cursor(inbox.LIST_SPEC, None, i),
                               node=InboxItem.of(i)) for i in rows]
        return InboxItemConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="One inbox item; null when it does not exist or is not "
                                  "visible to you.")
    async def inbox_item(self, info: strawberry.Info, id: strawberry.ID) -> InboxItem | None:
        async with info.context.db_lock:
            try:
                return InboxItem.of(await inbox.get_item(
                    info.context.session, info.context.principal, parse_id(id, "inboxItem")))
            except DomainNotFound:
                return None


@strawberry.type
class InboxMutation:
    @strawberry.mutation(description="A new lead becomes a deal on its card (default: the "
                                     "default pipeline's first stage). ConflictError unless "
                                     "it is new.")
    async def accept_inbox_item(self, info: strawberry.Info, id: strawberry.ID,
                                input: AcceptInboxItemInput | None = None) -> InboxItemResult:
        async def run() -> InboxItem:
            given = {k: getattr(input, k) for k in ("pipeline_id", "stage_id", "title",
                                                    "owner_id")
                     if input is not None and getattr(input, k) is not None}
            return InboxItem.of(await inbox.accept_item(
                info.context.session, info.context.principal, parse_id(id, "id"),
                InboxAccept.model_validate(given)))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="The lead belongs to an existing card (a card the lead "
                                     "created is merged into it).")
    async def link_inbox_item(self, info: strawberry.Info, id: strawberry.ID,
                              contact_id: strawberry.ID) -> InboxItemResult:
        async def run() -> InboxItem:
            data = InboxLink.model_validate({"contact_id": contact_id})
            return InboxItem.of(await inbox.link_item(
                info.context.session, info.context.principal, parse_id(id, "id"),
                data.contact_id))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Not a lead, with a reason.")
    async def decline_inbox_item(self, info: strawberry.Info, id: strawberry.ID,
                                 reason: str) -> InboxItemResult:
        async def run() -> InboxItem:
            data = InboxDecline.model_validate({"reason": reason})
            return InboxItem.of(await inbox.decline_item(
                info.context.session, info.context.principal, parse_id(id, "id"),
                data.reason))
        return await in_savepoint(info, run, body=None)


QUERY_TYPES = (InboxQuery,)
MUTATION_TYPES = (InboxMutation,)
