"""Pipelines and their stages: create, read, rename, reorder, archive.

Everybody in the workspace reads pipelines; only owners and admins (and read-write API keys)
change them. A stage is never deleted: archiving hides it from new deals and moves while its
deals, their stage history and the reports keep pointing at it.

Events (see docs/decisions/0011-stage-events-and-archiving.md): `pipeline.created`,
`pipeline.updated` (its own fields, and the order of its stages as `stage_ids`),
`pipeline.deleted`, `pipeline.restored`; `stage.created`, `stage.updated`, `stage.archived`,
`stage.unarchived` for one stage. Every stage change also bumps the pipeline's version, since
a pipeline read includes its stages (its ETag must change)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.deals import scoring
from app.domain.deals.models import Deal
from app.domain.outbox.service import record_event
from app.domain.pipelines.defaults import DEFAULT_PIPELINE_NAME, DEFAULT_STAGES
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.pipelines.schemas import (
    MAX_STAGES,
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageReorder,
    StageUpdate,
)
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, NotFoundError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal

ENTITY = "pipeline"
RESCORE_CHUNK = 500
STAGE_ENTITY = "stage"

LIST_SPEC = ListSpec(
    id_column=Pipeline.id,
    default_sort="position",
    fields={
        "id": FilterField(Pipeline.id, "uuid"),
        "name": FilterField(Pipeline.name, "str", sortable=True),
        "is_default": FilterField(Pipeline.is_default, "bool"),
        "position": FilterField(Pipeline.position, "int", sortable=True),
        "created_at": FilterField(Pipeline.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Pipeline.updated_at, "datetime", sortable=True),
    },
)


# Reading

def stage_read(stage: Stage) -> StageRead:
    return StageRead(id=stage.id, pipeline_id=stage.pipeline_id, name=stage.name,
                     position=stage.position, kind=stage.kind, probability=stage.probability,
                     rotting_days=stage.rotting_days, archived=stage.archived_at is not None,
                     archived_at=stage.archived_at, version=stage.version,
                     created_at=stage.created_at, updated_at=stage.updated_at)


def to_read(pipeline: Pipeline, stages: list[Stage]) -> PipelineRead:
    return PipelineRead(id=pipeline.id, name=pipeline.name, position=pipeline.position,
                        is_default=pipeline.is_default, stages=[stage_read(s) for s in stages],
                        version=pipeline.version, created_at=pipeline.created_at,
                        updated_at=pipeline.updated_at, deleted_at=pipeline.deleted_at,
                        created_by=pipeline.created_by, updated_by=pipeline.updated_by)


def _stage_order(stage: Stage) -> tuple[bool, int, uuid.UUID]:
    return stage.archived_at is not None, stage.position, stage.id


async def stages_of(session: AsyncSession, pipeline_ids: Iterable[uuid.UUID]
                    ) -> dict[uuid.UUID, list[Stage]]:
    """Each pipeline's stages: active ones by position, then archived ones."""
    ids = list(pipeline_ids)
    result: dict[uuid.UUID, list[Stage]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(select(Stage).where(Stage.pipeline_id.in_(ids),
                                                     Stage.deleted_at.is_(None)))
    for stage in sorted(rows.scalars(), key=_stage_order):
        result[stage.pipeline_id].append(stage)
    return result


async def read_pipeline(session: AsyncSession, pipeline: Pipeline) -> PipelineRead:
    return to_read(pipeline, (await stages_of(session, [pipeline.id]))[pipeline.id])


async def get_pipeline(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                       *, include_deleted: bool = False, for_update: bool = False) -> Pipeline:
    return await records.get_visible(session, Pipeline, principal, pipeline_id,
                                     include_deleted=include_deleted, for_update=for_update)


async def list_pipelines(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                         page: Page, include_deleted: bool = False
                         ) -> tuple[list[Pipeline], str | None]:
    query = select(Pipeline).where(*conditions)
    if not include_deleted:
        query = query.where(Pipeline.deleted_at.is_(None))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def live_pipelines(session: AsyncSession) -> list[Pipeline]:
    """Every live pipeline, by position (a workspace has a handful)."""
    rows = await session.execute(select(Pipeline).where(Pipeline.deleted_at.is_(None))
                                 .order_by(Pipeline.position, Pipeline.id))
    return list(rows.scalars())


async def default_pipeline(session: AsyncSession) -> Pipeline:
    found = (await session.execute(select(Pipeline).where(
        Pipeline.is_default.is_(True), Pipeline.deleted_at.is_(None)))).scalar_one_or_none()
    if found is None:
        raise ValidationError.at(["body", "pipeline_id"],
                                 "the workspace has no default pipeline; give pipeline_id")
    return found


async def get_stage(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                    stage_id: uuid.UUID) -> Stage:
    pipeline = await get_pipeline(session, principal, pipeline_id)
    return _find_stage((await stages_of(session, [pipeline.id]))[pipeline.id], stage_id,
                       pipeline)


async def history_ids(session: AsyncSession, pipeline_id: uuid.UUID) -> list[uuid.UUID]:
    """A pipeline's history is its own events and its stages'."""
    stage_ids = await session.execute(select(Stage.id).where(Stage.pipeline_id == pipeline_id))
    return [pipeline_id, *stage_ids.scalars()]


# Writing pipelines

def _default_probability(kind: str) -> int:
    return 100 if kind == "won" else 0


def _pipeline_snapshot(pipeline: Pipeline, stages: list[Stage]) -> dict[str, Any]:
    return {**records.snapshot(pipeline),
            "stage_ids": [str(s.id) for s in stages if s.archived_at is None]}


def _require_open_stage(stages: Iterable[Stage], loc: list[str | int]) -> None:
    if not any(s.kind == "open" and s.archived_at is None for s in stages):
        raise ValidationError.at(loc, "a pipeline needs at least one active open stage")


async def _clear_default(session: AsyncSession, principal: Principal,
                         keep: uuid.UUID | None) -> None:
    """The workspace has one default pipeline: the current one stops being it."""
    rows = await session.execute(select(Pipeline).where(
        Pipeline.is_default.is_(True), Pipeline.deleted_at.is_(None)).with_for_update())
    for previous in rows.scalars():
        if previous.id == keep:
            continue
        before = records.snapshot(previous)
        previous.is_default = False
        records.touch(previous, principal)
        await record_event(session, principal, type="pipeline.updated", entity_type=ENTITY,
                           entity_id=previous.id, before=before,
                           after=records.snapshot(previous))
    await session.flush()


async def _flush_default(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # another request made a default at the same moment
        raise ConflictError("another pipeline became the default at the same time; "
                            "retry") from exc


async def _next_pipeline_position(session: AsyncSession) -> int:
    top = (await session.execute(select(func.max(Pipeline.position)).where(
        Pipeline.deleted_at.is_(None)))).scalar()
    return 0 if top is None else top + 1


async def create_pipeline(session: AsyncSession, principal: Principal,
                          data: PipelineCreate) -> tuple[Pipeline, list[Stage]]:
    principal.require_admin()
    stages_in = data.stages
    if not any(s.kind == "open" for s in stages_in):
        raise ValidationError.at(["body", "stages"], "a pipeline needs at least one open stage")
    if data.is_default:
        await _clear_default(session, principal, keep=None)
    position = data.position if data.position is not None \
        else await _next_pipeline_position(session)
    pipeline = Pipeline(workspace_id=principal.workspace_id, name=data.name, position=position,
                        is_default=data.is_default, created_by=principal.actor,
                        updated_by=principal.actor)
    session.add(pipeline)
    stages = [Stage(workspace_id=principal.workspace_id, pipeline_id=pipeline.id, name=s.name,
                    position=i, kind=s.kind,
                    probability=s.probability if s.probability is not None
                    else _default_probability(s.kind),
                    rotting_days=s.rotting_days, created_by=principal.actor,
                    updated_by=principal.actor)
              for i, s in enumerate(stages_in)]
    session.add_all(stages)
    await _flush_default(session)
    await record_event(session, principal, type="pipeline.created", entity_type=ENTITY,
                       entity_id=pipeline.id,
                       after={**_pipeline_snapshot(pipeline, stages),
                              "stages": [records.snapshot(s) for s in stages]})
    return pipeline, stages


async def create_default_pipeline(session: AsyncSession, principal: Principal
                                  ) -> tuple[Pipeline, list[Stage]]:
    """The window-shop pipeline every new workspace starts with (defaults.py)."""
    data = PipelineCreate(name=DEFAULT_PIPELINE_NAME, is_default=True, position=0,
                          stages=[StageCreate(**s) for s in DEFAULT_STAGES])
    return await create_pipeline(session, principal, data)


async def update_pipeline(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                          data: PipelineUpdate, *, expected_version: int | None = None
                          ) -> Pipeline:
    principal.require_admin()
    pipeline = await get_pipeline(session, principal, pipeline_id, for_update=True)
    records.check_version(pipeline, expected_version)
    given = data.model_dump(exclude_unset=True)
    for key, value in given.items():
        if value is None:
            raise ValidationError.at(["body", key], "cannot be null")
    before = records.snapshot(pipeline)
    if given.get("is_default") and not pipeline.is_default:
        await _clear_default(session, principal, keep=pipeline.id)
        pipeline.is_default = True
    if "name" in given:
        pipeline.name = given["name"]
    if "position" in given:
        pipeline.position = given["position"]
    if records.snapshot(pipeline) == before:
        return pipeline
    records.touch(pipeline, principal)
    await _flush_default(session)
    await record_event(session, principal, type="pipeline.updated", entity_type=ENTITY,
                       entity_id=pipeline.id, before=before, after=records.snapshot(pipeline))
    return pipeline


async def _has_live_deals(session: AsyncSession, *conditions: Any) -> bool:
    found = await session.execute(select(exists().where(Deal.deleted_at.is_(None),
                                                        *conditions)))
    return bool(found.scalar())


async def delete_pipeline(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                          *, expected_version: int | None = None) -> None:
    principal.require_admin()
    pipeline = await get_pipeline(session, principal, pipeline_id, for_update=True)
    records.check_version(pipeline, expected_version)
    if pipeline.is_default:
        raise ConflictError("the default pipeline cannot be deleted; make another pipeline "
                            "the default first")
    # Deals of every owner count, visible to the caller or not: they would lose their pipeline.
    if await _has_live_deals(session, Deal.pipeline_id == pipeline.id):
        raise ConflictError("the pipeline still has deals; move or delete them first")
    await records.soft_delete(session, pipeline, principal, ENTITY)


async def restore_pipeline(session: AsyncSession, principal: Principal,
                           pipeline_id: uuid.UUID) -> Pipeline:
    principal.require_admin()
    pipeline = await get_pipeline(session, principal, pipeline_id, include_deleted=True,
                                  for_update=True)
    await records.restore(session, pipeline, principal, ENTITY)
    return pipeline


# Writing stages

async def _live_pipeline_for_stages(session: AsyncSession, principal: Principal,
                                    pipeline_id: uuid.UUID, expected_version: int | None = None
                                    ) -> tuple[Pipeline, list[Stage]]:
    principal.require_admin()
    pipeline = await get_pipeline(session, principal, pipeline_id, for_update=True)
    records.check_version(pipeline, expected_version)
    return pipeline, (await stages_of(session, [pipeline.id]))[pipeline.id]


def _find_stage(stages: list[Stage], stage_id: uuid.UUID, pipeline: Pipeline) -> Stage:
    for stage in stages:
        if stage.id == stage_id:
            return stage
    raise NotFoundError(f"stage {stage_id} not found in pipeline {pipeline.id}")


def _renumber(stages: list[Stage]) -> None:
    """Positions 0..n-1 for the active stages in list order, then the archived ones."""
    active = [s for s in stages if s.archived_at is None]
    archived = [s for s in stages if s.archived_at is not None]
    for position, stage in enumerate(active + archived):
        stage.position = position


async def _stage_event(session: AsyncSession, principal: Principal, pipeline: Pipeline,
                       type_: str, stage: Stage, before: dict[str, Any] | None) -> None:
    records.touch(pipeline, principal)
    await session.flush()
    await record_event(session, principal, type=type_, entity_type=STAGE_ENTITY,
                       entity_id=stage.id, before=before, after=records.snapshot(stage))


async def add_stage(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                    data: StageCreate) -> tuple[Pipeline, Stage]:
    pipeline, stages = await _live_pipeline_for_stages(session, principal, pipeline_id)
    if len(stages) >= MAX_STAGES:
        raise ValidationError.at(["body"], f"a pipeline has at most {MAX_STAGES} stages")
    stage = Stage(workspace_id=principal.workspace_id, pipeline_id=pipeline.id, name=data.name,
                  kind=data.kind, probability=data.probability if data.probability is not None
                  else _default_probability(data.kind),
                  rotting_days=data.rotting_days, created_by=principal.actor,
                  updated_by=principal.actor)
    active = [s for s in stages if s.archived_at is None]
    at = len(active) if data.position is None else min(data.position, len(active))
    active.insert(at, stage)
    _renumber(active + [s for s in stages if s.archived_at is not None])
    session.add(stage)
    await _stage_event(session, principal, pipeline, "stage.created", stage, None)
    return pipeline, stage


async def update_stage(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                       stage_id: uuid.UUID, data: StageUpdate, *,
                       expected_version: int | None = None) -> tuple[Pipeline, Stage]:
    pipeline, stages = await _live_pipeline_for_stages(session, principal, pipeline_id)
    stage = _find_stage(stages, stage_id, pipeline)
    records.check_version(stage, expected_version)
    given = data.model_dump(exclude_unset=True)
    for key in ("name", "kind", "probability"):
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    before = records.snapshot(stage)
    if "kind" in given and given["kind"] != stage.kind:
        if await _has_live_deals(session, Deal.stage_id == stage.id):
            raise ConflictError("the stage holds deals, so its kind cannot change (their "
                                "status follows it); move them first")
        stage.kind = given["kind"]
        _require_open_stage(stages, ["body", "kind"])
    if "name" in given:
        stage.name = given["name"]
    if "probability" in given:
        stage.probability = given["probability"]
    if "rotting_days" in given:
        stage.rotting_days = given["rotting_days"]
    if records.snapshot(stage) == before:
        return pipeline, stage
    records.touch(stage, principal)
    await _stage_event(session, principal, pipeline, "stage.updated", stage, before)
    if stage.probability != before["probability"]:
        await rescore_stage_deals(session, principal, stage.id)
    return pipeline, stage


async def rescore_stage_deals(session: AsyncSession, principal: Principal,
                              stage_id: uuid.UUID) -> None:
    """The stage's probability is an input of every score in it. The score is derived state
    (as scoring.py does for rule changes): the deals' versions stay, and each deal whose score
    changed gets a `deal.updated` event with the score fields. In chunks, so a stage with
    many deals never sits in memory at once."""
    last: uuid.UUID | None = None
    while True:
        query = (select(Deal).where(Deal.stage_id == stage_id, Deal.deleted_at.is_(None))
                 .order_by(Deal.id).limit(RESCORE_CHUNK).with_for_update())
        if last is not None:
            query = query.where(Deal.id > last)
        deals = list((await session.execute(query)).scalars())
        if not deals:
            return
        await scoring.rescore_deals(session, principal, deals)
        await session.flush()
        last = deals[-1].id
        for deal in deals:
            session.expunge(deal)
        if len(deals) < RESCORE_CHUNK:
            return


async def reorder_stages(session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID,
                         data: StageReorder, *, expected_version: int | None = None
                         ) -> Pipeline:
    pipeline, stages = await _live_pipeline_for_stages(session, principal, pipeline_id,
                                                       expected_version)
    active = {s.id: s for s in stages if s.archived_at is None}
    if len(data.stage_ids) != len(set(data.stage_ids)) or set(data.stage_ids) != set(active):
        raise ValidationError.at(["body", "stage_ids"], (
            "give every active stage of the pipeline exactly once: "
            + ", ".join(str(i) for i in active)))
    before = _pipeline_snapshot(pipeline, stages)
    ordered = [active[i] for i in data.stage_ids]
    _renumber(ordered + [s for s in stages if s.archived_at is not None])
    after_stages = sorted(stages, key=_stage_order)
    if _pipeline_snapshot(pipeline, after_stages)["stage_ids"] == before["stage_ids"]:
        return pipeline
    now = clock.now()
    for stage in stages:
        stage.updated_at = now
    records.touch(pipeline, principal)
    await session.flush()
    await record_event(session, principal, type="pipeline.updated", entity_type=ENTITY,
                       entity_id=pipeline.id, before=before,
                       after=_pipeline_snapshot(pipeline, after_stages))
    return pipeline


async def set_stage_archived(session: AsyncSession, principal: Principal,
                             pipeline_id: uuid.UUID, stage_id: uuid.UUID, *, archived: bool,
                             expected_version: int | None = None) -> tuple[Pipeline, Stage]:
    """Archive: no new deals or moves into the stage; its deals stay where they are.
    Unarchive: the stage comes back as the last active stage."""
    pipeline, stages = await _live_pipeline_for_stages(session, principal, pipeline_id)
    stage = _find_stage(stages, stage_id, pipeline)
    records.check_version(stage, expected_version)
    if (stage.archived_at is not None) == archived:
        return pipeline, stage
    before = records.snapshot(stage)
    active = [s for s in stages if s.archived_at is None and s.id != stage.id]
    archived_ones = [s for s in stages if s.archived_at is not None and s.id != stage.id]
    if archived:
        stage.archived_at = clock.now()
        _require_open_stage(stages, ["path", "stage_id"])
        _renumber(active + archived_ones + [stage])
    else:
        stage.archived_at = None
        _renumber(active + [stage] + archived_ones)
    records.touch(stage, principal)
    await _stage_event(session, principal, pipeline,
                       "stage.archived" if archived else "stage.unarchived", stage, before)
    return pipeline, stage


async def live_stage(session: AsyncSession, stage_id: uuid.UUID, loc: list[str | int]) -> Stage:
    """A stage a deal may enter: it exists, is not archived, and its pipeline is live."""
    return (await move_stages(session, stage_id, None, loc))[0]


async def move_stages(session: AsyncSession, target_id: uuid.UUID, current_id: uuid.UUID | None,
                      loc: list[str | int]) -> tuple[Stage, Stage | None]:
    """A move's two stages in one query: the target, checked as `live_stage` checks it, and
    the stage the deal is in now, as it is (None if it is gone). The caller holds both: the
    session's identity map keeps an object only while something references it."""
    ids = [target_id] if current_id in (None, target_id) else [target_id, current_id]
    rows = (await session.execute(
        select(Stage, Pipeline.deleted_at)
        .join(Pipeline, (Pipeline.workspace_id == Stage.workspace_id)
              & (Pipeline.id == Stage.pipeline_id))
        .where(Stage.id.in_(ids)))).all()
    found = {stage.id: (stage, pipeline_deleted) for stage, pipeline_deleted in rows}
    target, pipeline_deleted = found.get(target_id, (None, None))
    if target is None or target.deleted_at is not None or pipeline_deleted is not None:
        raise ValidationError.at(loc, f"no such stage: {target_id}")
    if target.archived_at is not None:
        raise ValidationError.at(loc, f"stage {target.name!r} is archived and takes no deals")
    current = found.get(current_id, (None, None))[0] if current_id is not None else None
    return target, current


async def first_open_stage(session: AsyncSession, pipeline_id: uuid.UUID,
                           loc: list[str | int]) -> Stage:
    stage = (await session.execute(
        select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.kind == "open",
                            Stage.archived_at.is_(None), Stage.deleted_at.is_(None))
        .order_by(Stage.position, Stage.id).limit(1))).scalar_one_or_none()
    if stage is None:
        raise ValidationError.at(loc, "the pipeline has no active open stage")
    return stage


async def live_pipeline(session: AsyncSession, pipeline_id: uuid.UUID,
                        loc: list[str | int]) -> Pipeline:
    found = (await session.execute(select(Pipeline).where(
        Pipeline.id == pipeline_id, Pipeline.deleted_at.is_(None)))).scalar_one_or_none()
    if found is None:
        raise ValidationError.at(loc, f"no such pipeline: {pipeline_id}")
    return found
