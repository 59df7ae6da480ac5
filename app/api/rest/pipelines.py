"""REST: /api/v1/pipelines — pipelines, their stages, and the board."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.deals import board as deal_board
from app.domain.deals.schemas import BoardRead
from app.domain.outbox.service import entity_history
from app.domain.pipelines import service
from app.domain.pipelines.models import Pipeline
from app.domain.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageReorder,
    StageUpdate,
)

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])


async def _read(ctx: Ctx, response: Response, pipeline: Pipeline) -> PipelineRead:
    set_etag(response, pipeline.version)
    return await service.read_pipeline(ctx.session, pipeline)


@router.get("", response_model=ListResponse[PipelineRead])
async def list_pipelines(request: Request, ctx: Ctx, page: PageDep,
                         include_deleted: bool = False) -> ListResponse[PipelineRead]:
    """Every pipeline of the workspace with its stages, by `position`. Filters: `name`,
    `is_default`, `position`, `created_at`, `updated_at` (with `__<op>` suffixes)."""
    reject_repeated_params(request)
    rows, cursor = await service.list_pipelines(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page, include_deleted=include_deleted)
    stages = await service.stages_of(ctx.session, [p.id for p in rows])
    return ListResponse(data=[service.to_read(p, stages[p.id]) for p in rows],
                        next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PipelineRead)
async def create_pipeline(body: PipelineCreate, ctx: Ctx, response: Response) -> PipelineRead:
    """Owners and admins only. `stages` in order; at least one must be open."""
    pipeline, stages = await service.create_pipeline(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/pipelines/{pipeline.id}"
    set_etag(response, pipeline.version)
    return service.to_read(pipeline, stages)


@router.get("/{pipeline_id}", response_model=PipelineRead)
async def get_pipeline(pipeline_id: uuid.UUID, ctx: Ctx, response: Response) -> PipelineRead:
    return await _read(ctx, response,
                       await service.get_pipeline(ctx.session, ctx.principal, pipeline_id))


@router.patch("/{pipeline_id}", response_model=PipelineRead)
async def update_pipeline(pipeline_id: uuid.UUID, body: PipelineUpdate, request: Request,
                          ctx: Ctx, response: Response) -> PipelineRead:
    """Rename, reposition, or make it the default (`"is_default": true`)."""
    pipeline = await service.update_pipeline(ctx.session, ctx.principal, pipeline_id, body,
                                             expected_version=expected_version(request))
    return await _read(ctx, response, pipeline)


@router.delete("/{pipeline_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={409: {"description": "The default pipeline, or one with live deals"}})
async def delete_pipeline(pipeline_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete, restorable for 30 days. Not the default pipeline, nor one with deals."""
    await service.delete_pipeline(ctx.session, ctx.principal, pipeline_id,
                                  expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{pipeline_id}/restore", response_model=PipelineRead)
async def restore_pipeline(pipeline_id: uuid.UUID, ctx: Ctx, response: Response) -> PipelineRead:
    pipeline = await service.restore_pipeline(ctx.session, ctx.principal, pipeline_id)
    return await _read(ctx, response, pipeline)


@router.get("/{pipeline_id}/history", response_model=ListResponse[EventRead])
async def pipeline_history(pipeline_id: uuid.UUID, ctx: Ctx,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           cursor: str | None = None) -> ListResponse[EventRead]:
    """The pipeline's events and its stages' (`stage.*`), oldest first."""
    await service.get_pipeline(ctx.session, ctx.principal, pipeline_id, include_deleted=True)
    ids = await service.history_ids(ctx.session, pipeline_id)
    events, next_cursor = await entity_history(ctx.session, ids, after=cursor, limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)


@router.post("/{pipeline_id}/stages", status_code=status.HTTP_201_CREATED,
             response_model=PipelineRead)
async def add_stage(pipeline_id: uuid.UUID, body: StageCreate, ctx: Ctx,
                    response: Response) -> PipelineRead:
    """Add a stage (at `position` among the active stages, default last). Returns the
    pipeline with all its stages."""
    pipeline, stage = await service.add_stage(ctx.session, ctx.principal, pipeline_id, body)
    response.headers["Location"] = f"/api/v1/pipelines/{pipeline.id}/stages/{stage.id}"
    return await _read(ctx, response, pipeline)


@router.get("/{pipeline_id}/stages/{stage_id}", response_model=StageRead)
async def get_stage(pipeline_id: uuid.UUID, stage_id: uuid.UUID, ctx: Ctx,
                    response: Response) -> StageRead:
    """One stage (archived ones too); its ETag is the stage's version."""
    stage = await service.get_stage(ctx.session, ctx.principal, pipeline_id, stage_id)
    set_etag(response, stage.version)
    return service.stage_read(stage)


@router.patch("/{pipeline_id}/stages/{stage_id}", response_model=PipelineRead)
async def update_stage(pipeline_id: uuid.UUID, stage_id: uuid.UUID, body: StageUpdate,
                       request: Request, ctx: Ctx, response: Response) -> PipelineRead:
    """Rename, or change probability, kind or rotting days. `If-Match` takes the stage's
    `version`. The kind cannot change while the stage holds deals (409)."""
    pipeline, _ = await service.update_stage(ctx.session, ctx.principal, pipeline_id, stage_id,
                                             body, expected_version=expected_version(request))
    return await _read(ctx, response, pipeline)


@router.post("/{pipeline_id}/stages/reorder", response_model=PipelineRead)
async def reorder_stages(pipeline_id: uuid.UUID, body: StageReorder, request: Request,
                         ctx: Ctx, response: Response) -> PipelineRead:
    """`stage_ids`: every active stage, in the new order (422 otherwise). `If-Match` takes the
    pipeline's version."""
    pipeline = await service.reorder_stages(ctx.session, ctx.principal, pipeline_id, body,
                                            expected_version=expected_version(request))
    return await _read(ctx, response, pipeline)


@router.post("/{pipeline_id}/stages/{stage_id}/archive", response_model=PipelineRead)
async def archive_stage(pipeline_id: uuid.UUID, stage_id: uuid.UUID, request: Request,
                        ctx: Ctx, response: Response) -> PipelineRead:
    """The stage takes no new deals or moves; its deals and their history stay."""
    pipeline, _ = await service.set_stage_archived(
        ctx.session, ctx.principal, pipeline_id, stage_id, archived=True,
        expected_version=expected_version(request))
    return await _read(ctx, response, pipeline)


@router.post("/{pipeline_id}/stages/{stage_id}/unarchive", response_model=PipelineRead)
async def unarchive_stage(pipeline_id: uuid.UUID, stage_id: uuid.UUID, request: Request,
                          ctx: Ctx, response: Response) -> PipelineRead:
    """The stage is active again, as the last active stage."""
    pipeline, _ = await service.set_stage_archived(
        ctx.session, ctx.principal, pipeline_id, stage_id, archived=False,
        expected_version=expected_version(request))
    return await _read(ctx, response, pipeline)


@router.get("/{pipeline_id}/board", response_model=BoardRead)
async def pipeline_board(
    pipeline_id: uuid.UUID, ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=deal_board.BOARD_MAX_LIMIT,
                                description="Deals per stage")] = 20,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only this owner's deals")] = None,
) -> BoardRead:
    """Per stage: count, total and weighted amount of the live deals you can see (in the
    workspace currency; other currencies apart), and the newest `limit` deals."""
    return await deal_board.board(ctx.session, ctx.principal, pipeline_id, limit=limit,
                                  owner_id=owner_id)
