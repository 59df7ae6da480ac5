"""GraphQL for pipelines, stages, deals and the board: the same services as REST
/api/v1/pipelines and /api/v1/deals, with union results for expected errors."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
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
from app.api.graphql.loaders import register_loader
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.api.graphql.types.sales import (
    Board,
    Deal,
    DealConnection,
    DealEdge,
    DealInput,
    Pipeline,
    PipelineInput,
    PipelineUpdateInput,
    StageInput,
    StageUpdateInput,
)
from app.domain.deals import board as deal_board
from app.domain.deals import queries, service
from app.domain.deals.schemas import DealCreate, DealMove, DealUpdate
from app.domain.pipelines import service as pipelines
from app.domain.pipelines.models import Pipeline as PipelineModel
from app.domain.pipelines.models import Stage as StageModel
from app.domain.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageReorder,
    StageUpdate,
)
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.errors import ValidationError as DomainValidationError
from app.domain.shared.listing import row_cursor
from app.domain.shared.principal import Principal

# DataLoaders: a list of deals with their contacts, company, stage, pipeline and stage
# history costs one query per relation, whatever the number of deals.


async def _stages(session: AsyncSession, principal: Principal,
                  ids: list[uuid.UUID]) -> dict[uuid.UUID, StageRead]:
    """Stages by id, archived ones too (every member sees them)."""
    rows = await session.execute(select(StageModel).where(StageModel.id.in_(ids)))
    return {s.id: pipelines.stage_read(s) for s in rows.scalars()}


async def _pipelines(session: AsyncSession, principal: Principal,
                     ids: list[uuid.UUID]) -> dict[uuid.UUID, PipelineRead]:
    """Pipelines by id with their stages (a deal's pipeline, deleted or not)."""
    found = {p.id: p for p in (await session.execute(
        select(PipelineModel).where(PipelineModel.id.in_(ids)))).scalars()}
    stages = await pipelines.stages_of(session, list(found))
    return {i: pipelines.to_read(p, stages[i]) for i, p in found.items()}


async def _stage_history(session: AsyncSession, principal: Principal,
                         ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    return await queries.intervals_by_deal(session, ids)


register_loader("stage", _stages)
register_loader("pipeline", _pipelines)
register_loader("deal", queries.deals_by_ids)
register_loader("deal_stage_history", _stage_history)


def _uuid(value: strawberry.ID | None, loc: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise DomainValidationError.at([loc], f"{value!r} is not an id") from exc


@strawberry.type
class SalesQuery:
    @strawberry.field(description="Every live pipeline with its stages, by position.")
    async def pipelines(self, info: strawberry.Info) -> list[Pipeline]:
        async with info.context.db_lock:
            session = info.context.session
            found = await pipelines.live_pipelines(session)
            stages = await pipelines.stages_of(session, [p.id for p in found])
            return [Pipeline.of(pipelines.to_read(p, stages[p.id])) for p in found]

    @strawberry.field(description="One pipeline by id; null when it does not exist.")
    async def pipeline(self, info: strawberry.Info, id: strawberry.ID) -> Pipeline | None:
        async with info.context.db_lock:
            try:
                found = await pipelines.get_pipeline(info.context.session,
                                                     info.context.principal,
                                                     parse_id(id, "pipeline"))
            except DomainNotFound:
                return None
            return Pipeline.of(await pipelines.read_pipeline(info.context.session, found))

    @strawberry.field(description="One deal by id; null when it does not exist or is not "
                                  "visible to you.")
    async def deal(self, info: strawberry.Info, id: strawberry.ID) -> Deal | None:
        async with info.context.db_lock:
            try:
                found = await service.get_deal(info.context.session, info.context.principal,
                                               parse_id(id, "deal"))
            except DomainNotFound:
                return None
            return Deal.of(await queries.read_one(info.context.session, found))

    @strawberry.field(description="Deals, newest first by default. `filter` takes the same JSON "
                                  "as POST /api/v1/deals/search; `q` searches titles and the "
                                  "deals' contacts. `first` is 1–200.")
    async def deals(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                    filter: JSON | None = None, q: str | None = None,
                    sort: str | None = None) -> DealConnection:
        async with info.context.db_lock:
            rows, next_cursor = await queries.list_deals(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, queries.LIST_SPEC, filter), q=check_q(q),
                page=page_of(first, after, sort))
            reads = await queries.reads(info.context.session, rows)
            edges = [DealEdge(cursor=row_cursor(queries.LIST_SPEC, sort, row), node=Deal.of(r))
                     for row, r in zip(rows, reads, strict=True)]
        return DealConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="The pipeline board: per stage, count, total and weighted "
                                  "amount of the deals you can see, and the newest `first`.")
    async def board(self, info: strawberry.Info, pipeline_id: strawberry.ID, first: int = 20,
                    owner_id: strawberry.ID | None = None) -> Board | None:
        if not 1 <= first <= deal_board.BOARD_MAX_LIMIT:
            raise DomainValidationError.at(["first"], "first must be between 1 and "
                                                      f"{deal_board.BOARD_MAX_LIMIT}")
        owner = _uuid(owner_id, "ownerId")
        async with info.context.db_lock:
            try:
                found = await deal_board.board(info.context.session, info.context.principal,
                                               parse_id(pipeline_id, "pipeline"), limit=first,
                                               owner_id=owner)
            except DomainNotFound:
                return None
            return Board.of(found)


_ERRORS = (ValidationError | ConflictError | NotFoundError | PreconditionFailedError
           | ForbiddenError)
DealResult = Annotated[Deal | _ERRORS, strawberry.union("DealResult")]  # type: ignore[valid-type]
PipelineResult = Annotated[Pipeline | _ERRORS,  # type: ignore[valid-type]
                           strawberry.union("PipelineResult")]


async def _deal(info: strawberry.Info, deal: Any) -> Deal:
    return Deal.of(await queries.read_one(info.context.session, deal))


async def _pipeline(info: strawberry.Info, pipeline: Any) -> Pipeline:
    return Pipeline.of(await pipelines.read_pipeline(info.context.session, pipeline))


@strawberry.type
class SalesMutation:
    @strawberry.mutation
    async def create_deal(self, info: strawberry.Info, input: DealInput) -> DealResult:
        async def run() -> Deal:
            data = DealCreate.model_validate(input_to_dict(input))
            return await _deal(info, await service.create_deal(info.context.session,
                                                               info.context.principal, data))
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Merge-patch a deal; a new stageId moves it. `version` "
                                     "refuses a lost update.")
    async def update_deal(self, info: strawberry.Info, id: strawberry.ID, input: DealInput,
                          version: int | None = None) -> DealResult:
        async def run() -> Deal:
            data = DealUpdate.model_validate(input_to_dict(input))
            return Deal.of(await service.update_deal(
                info.context.session, info.context.principal, parse_id(id, "deal"), data,
                expected_version=version))
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Move a deal to a stage (with its pipelineId to change "
                                     "pipeline); a lost stage needs lostReason.")
    async def move_deal(self, info: strawberry.Info, id: strawberry.ID, stage_id: strawberry.ID,
                        pipeline_id: strawberry.ID | None = None,
                        lost_reason: str | None = None, version: int | None = None
                        ) -> DealResult:
        async def run() -> Deal:
            given = {"stage_id": stage_id, "pipeline_id": pipeline_id,
                     "lost_reason": lost_reason}
            data = DealMove.model_validate({k: v for k, v in given.items() if v is not None})
            return Deal.of(await service.move_deal(
                info.context.session, info.context.principal, parse_id(id, "deal"), data,
                expected_version=version))
        return await in_savepoint(info, run, body=None)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def delete_deal(self, info: strawberry.Info, id: strawberry.ID,
                          version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await service.delete_deal(info.context.session, info.context.principal,
                                      parse_id(id, "deal"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Owners and admins only.")
    async def create_pipeline(self, info: strawberry.Info,
                              input: PipelineInput) -> PipelineResult:
        async def run() -> Pipeline:
            data = PipelineCreate.model_validate(input_to_dict(input))
            pipeline, stages = await pipelines.create_pipeline(info.context.session,
                                                               info.context.principal, data)
            return Pipeline.of(pipelines.to_read(pipeline, stages))
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def update_pipeline(self, info: strawberry.Info, id: strawberry.ID,
                              input: PipelineUpdateInput, version: int | None = None
                              ) -> PipelineResult:
        async def run() -> Pipeline:
            data = PipelineUpdate.model_validate(input_to_dict(input))
            return await _pipeline(info, await pipelines.update_pipeline(
                info.context.session, info.context.principal, parse_id(id, "pipeline"), data,
                expected_version=version))
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Add a stage; returns the pipeline.")
    async def add_stage(self, info: strawberry.Info, pipeline_id: strawberry.ID,
                        input: StageInput) -> PipelineResult:
        async def run() -> Pipeline:
            data = StageCreate.model_validate(input_to_dict(input))
            pipeline, _ = await pipelines.add_stage(info.context.session, info.context.principal,
                                                    parse_id(pipeline_id, "pipeline"), data)
            return await _pipeline(info, pipeline)
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Merge-patch a stage; `version` is the stage's.")
    async def update_stage(self, info: strawberry.Info, pipeline_id: strawberry.ID,
                           stage_id: strawberry.ID, input: StageUpdateInput,
                           version: int | None = None) -> PipelineResult:
        async def run() -> Pipeline:
            data = StageUpdate.model_validate(input_to_dict(input))
            pipeline, _ = await pipelines.update_stage(
                info.context.session, info.context.principal, parse_id(pipeline_id, "pipeline"),
                parse_id(stage_id, "stage"), data, expected_version=version)
            return await _pipeline(info, pipeline)
        return await in_savepoint(info, run)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Every active stage id, in the new order; `version` is "
                                     "the pipeline's.")
    async def reorder_stages(self, info: strawberry.Info, pipeline_id: strawberry.ID,
                             stage_ids: list[strawberry.ID], version: int | None = None
                             ) -> PipelineResult:
        async def run() -> Pipeline:
            data = StageReorder.model_validate({"stage_ids": stage_ids})
            return await _pipeline(info, await pipelines.reorder_stages(
                info.context.session, info.context.principal, parse_id(pipeline_id, "pipeline"),
                data, expected_version=version))
        return await in_savepoint(info, run, body=None)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Archive (or with archived: false, bring back) a stage: "
                                     "an archived stage keeps its deals and takes no new ones.")
    async def archive_stage(self, info: strawberry.Info, pipeline_id: strawberry.ID,
                            stage_id: strawberry.ID, archived: bool = True,
                            version: int | None = None) -> PipelineResult:
        async def run() -> Pipeline:
            pipeline, _ = await pipelines.set_stage_archived(
                info.context.session, info.context.principal, parse_id(pipeline_id, "pipeline"),
                parse_id(stage_id, "stage"), archived=archived, expected_version=version)
            return await _pipeline(info, pipeline)
        return await in_savepoint(info, run, body=None)  # type: ignore[no-any-return]


QUERY_TYPES: list[type] = [SalesQuery]
MUTATION_TYPES: list[type] = [SalesMutation]
