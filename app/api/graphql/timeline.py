"""GraphQL for activities and the timeline: the same services as REST."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    check_q,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.api.graphql.types.timeline import (
    Activity,
    ActivityConnection,
    ActivityEdge,
    ActivityInput,
    TimelineConnection,
    TimelineEntry,
    TimelineEntryEdge,
    TimelineEntryKind,
    TimelineRecordType,
)
from app.domain.activities import service as activities
from app.domain.activities.schemas import ActivityCreate, ActivityUpdate
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor
from app.domain.timeline import service as timeline_service


@strawberry.type
class TimelineQuery:
    @strawberry.field(description="One activity by id; null when it does not exist or is not "
                                  "visible to you.")
    async def activity(self, info: strawberry.Info, id: strawberry.ID) -> Activity | None:
        async with info.context.db_lock:
            try:
                found = await activities.get_activity(info.context.session,
                                                      info.context.principal,
                                                      parse_id(id, "activity"))
            except DomainNotFound:
                return None
            return Activity.of(activities.to_read(found))

    @strawberry.field(description="Activities, newest `occurredAt` first by default. `filter` "
                                  "takes the same JSON as POST /api/v1/activities/search; `q` "
                                  "searches subject and body. `first` is 1–200.")
    async def activities(self, info: strawberry.Info, first: int = 50,
                         after: str | None = None, filter: JSON | None = None,
                         q: str | None = None, sort: str | None = None) -> ActivityConnection:
        async with info.context.db_lock:
            rows, next_cursor = await activities.list_activities(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, activities.LIST_SPEC, filter), q=check_q(q),
                page=page_of(first, after, sort))
            edges = [ActivityEdge(cursor=row_cursor(activities.LIST_SPEC, sort, a),
                                  node=Activity.of(activities.to_read(a))) for a in rows]
        return ActivityConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="Everything that happened to a contact, company or deal, "
                                  "newest first: activities, tasks, stage changes of its "
                                  "deals, and changes of its fields (`types` narrows the "
                                  "kinds). Null when the record does not exist or is not "
                                  "visible to you. `first` is 1–200.")
    async def timeline(self, info: strawberry.Info, record_type: TimelineRecordType,
                       id: strawberry.ID, first: int = 50, after: str | None = None,
                       types: list[TimelineEntryKind] | None = None
                       ) -> TimelineConnection | None:
        async with info.context.db_lock:
            try:
                record_id = parse_id(id, record_type.value)
                entries, next_cursor = await timeline_service.timeline(
                    info.context.session, info.context.principal, record_type.value,
                    record_id, limit=first, cursor=after,
                    kinds={t.value for t in types} if types else None)
            except DomainNotFound:
                return None
        edges = [TimelineEntryEdge(cursor=cursor, node=TimelineEntry.of(entry))
                 for entry, cursor in entries]
        return TimelineConnection(edges=edges, page_info=page_info(edges, next_cursor))


ActivityResult = Annotated[
    Activity | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("ActivityResult")]


@strawberry.type
class TimelineMutation:
    @strawberry.mutation(description="Log a call, email, SMS, message, meeting or note.")
    async def log_activity(self, info: strawberry.Info, input: ActivityInput) -> ActivityResult:
        async def run() -> Activity:
            data = ActivityCreate.model_validate(input_to_dict(input))
            return Activity.of(activities.to_read(await activities.create_activity(
                info.context.session, info.context.principal, data)))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch an activity; `version` refuses a lost "
                                      "update.")
    async def update_activity(self, info: strawberry.Info, id: strawberry.ID,
                              input: ActivityInput, version: int | None = None
                              ) -> ActivityResult:
        async def run() -> Activity:
            data = ActivityUpdate.model_validate(input_to_dict(input))
            return Activity.of(activities.to_read(await activities.update_activity(
                info.context.session, info.context.principal, parse_id(id, "activity"), data,
                expected_version=version)))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def delete_activity(self, info: strawberry.Info, id: strawberry.ID,
                              version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await activities.delete_activity(info.context.session, info.context.principal,
                                             parse_id(id, "activity"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)


QUERY_TYPES: list[type] = [TimelineQuery]
MUTATION_TYPES: list[type] = [TimelineMutation]
