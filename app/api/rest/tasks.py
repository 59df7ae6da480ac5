"""REST: /api/v1/tasks — parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import (
    ListResponse,
    SearchRequest,
    expected_version,
    query_conditions,
    reject_repeated_params,
    search_conditions,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.outbox.service import entity_history
from app.domain.shared.batch import BatchOps, BatchRequest, BatchResponse, run_batch
from app.domain.shared.errors import ValidationError
from app.domain.shared.listing import check_limit
from app.domain.tasks import agenda as agenda_service
from app.domain.tasks import service
from app.domain.tasks.schemas import TaskComplete, TaskCreate, TaskRead, TaskReopen, TaskUpdate

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

BATCH_OPS = BatchOps(schema=TaskCreate, create=service.create_task,
                     find_existing=service.no_upsert_target, update_existing=service.no_upsert,
                     upsert_keys=())


@router.get("", response_model=ListResponse[TaskRead])
async def list_tasks(request: Request, ctx: Ctx, page: PageDep,
                     q: Annotated[str | None, Query(max_length=200,
                                                    description="Search titles")] = None,
                     include_deleted: bool = False) -> ListResponse[TaskRead]:
    """List tasks (newest first; `sort=due_at` puts tasks without a due time last).
    Filters: `<field>=v` or `<field>__<op>=v`, e.g. `status=open`, `type__in=call,meeting`,
    `due_at__lt=2026-12-01T00:00:00Z`, `assignee_id=…`, `deal_id=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_tasks(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        q=q, page=page, include_deleted=include_deleted)
    return ListResponse(data=await service.to_reads(ctx.session, rows), next_cursor=cursor)


@router.post("/search", response_model=ListResponse[TaskRead])
async def search_tasks(body: SearchRequest, ctx: Ctx) -> ListResponse[TaskRead]:
    """The list filters as JSON, with `and` / `or` / `not` groups."""
    conditions, page = await search_conditions(ctx.session, service.LIST_SPEC, body)
    rows, cursor = await service.list_tasks(ctx.session, ctx.principal, conditions=conditions,
                                            q=body.q, page=page, sort_loc=["body", "sort"])
    return ListResponse(data=await service.to_reads(ctx.session, rows), next_cursor=cursor)


def _orjson_default(value: object) -> object:
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID subclass
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@router.get("/agenda", response_model=ListResponse[TaskRead])
async def agenda(
    ctx: Ctx,
    bucket: Annotated[Literal["today", "overdue", "upcoming"], Query(
        description="today: due today in `tz` (including past due); overdue: due before "
                    "now; upcoming: due after today")] = "today",
    assignee_id: Annotated[str | None, Query(
        max_length=36, description="A user id or `me` (the default, unless team_id is given)")
    ] = None,
    team_id: Annotated[uuid.UUID | None, Query(description="All members of the team")] = None,
    tz: Annotated[str | None, Query(max_length=64, description="IANA time zone that "
                                    "decides what 'today' is; default the workspace's")] = None,
    limit: Annotated[int, Query(description="Page size, 1–200")] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """My work: open tasks by due time — mine by default, an assignee's, or a team's
    (only what you may see)."""
    rows, next_cursor = await agenda_service.agenda(
        ctx.session, ctx.principal, bucket=bucket, assignee_id=assignee_id, team_id=team_id,
        tz=tz, limit=check_limit(limit, ["query", "limit"]), cursor=cursor)
    # Plain rows straight to JSON: this is the hottest read of the day.
    body = orjson.dumps({"data": rows, "next_cursor": next_cursor},
                        option=orjson.OPT_UTC_Z, default=_orjson_default)
    return Response(body, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskRead)
async def create_task(body: TaskCreate, ctx: Ctx, response: Response) -> TaskRead:
    task = await service.create_task(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.post("/batch", response_model=BatchResponse)
async def batch_tasks(body: BatchRequest, ctx: Ctx) -> BatchResponse:
    """Up to 1,000 creates, a result per item. Tasks have no key to upsert on:
    `upsert_on` is refused."""
    if body.upsert_on is not None:
        raise ValidationError.at(["body", "upsert_on"], "tasks are not upserted: leave it out")
    results = await run_batch(ctx.session, ctx.principal, BATCH_OPS, body.items, None)
    return BatchResponse.model_validate({"results": results})


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(task_id: uuid.UUID, ctx: Ctx, response: Response) -> TaskRead:
    task = await service.get_task(ctx.session, ctx.principal, task_id)
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.patch("/{task_id}", response_model=TaskRead)
async def update_task(task_id: uuid.UUID, body: TaskUpdate, request: Request, ctx: Ctx,
                      response: Response) -> TaskRead:
    """JSON merge-patch. Send `If-Match: "<version>"` to refuse a lost update (412).
    `{"status": "canceled"}` cancels an open task."""
    task = await service.update_task(ctx.session, ctx.principal, task_id, body,
                                     expected_version=expected_version(request))
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.post("/{task_id}/complete", response_model=TaskRead)
async def complete_task(task_id: uuid.UUID, request: Request, ctx: Ctx, response: Response,
                        body: TaskComplete | None = None) -> TaskRead:
    """Done, with an `outcome` from the workspace's task_outcomes (default `done`), a `note`
    and structured `data`; the attempt count goes up. 409 unless the task is open."""
    task = await service.complete_task(ctx.session, ctx.principal, task_id,
                                       body or TaskComplete(),
                                       expected_version=expected_version(request))
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.post("/{task_id}/reopen", response_model=TaskRead)
async def reopen_task(task_id: uuid.UUID, request: Request, ctx: Ctx, response: Response,
                      body: TaskReopen | None = None) -> TaskRead:
    """Open a done or canceled task again, optionally with a new `due_at` / `reminder_at`.
    The attempt count stays. 409 if it is open."""
    task = await service.reopen_task(ctx.session, ctx.principal, task_id, body,
                                     expected_version=expected_version(request))
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: restorable for 30 days; the history stays."""
    await service.delete_task(ctx.session, ctx.principal, task_id,
                              expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{task_id}/restore", response_model=TaskRead)
async def restore_task(task_id: uuid.UUID, ctx: Ctx, response: Response) -> TaskRead:
    task = await service.restore_task(ctx.session, ctx.principal, task_id)
    set_etag(response, task.version)
    return await service.to_read(ctx.session, task)


@router.get("/{task_id}/history", response_model=ListResponse[EventRead])
async def task_history(task_id: uuid.UUID, ctx: Ctx,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change with actor, time, and before/after values (survives deletion)."""
    await service.get_task(ctx.session, ctx.principal, task_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [task_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
