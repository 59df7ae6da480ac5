"""GraphQL object and input types for pipelines, stages, deals and the board.

Types are built from the REST read models (PipelineRead, DealRead, …), so both APIs show the
same values: money as decimal strings, the score as REST's `score` object."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.types.common import PageInfo
from app.api.graphql.types.records import Company, Contact
from app.api.graphql.types.scoring import DealScore
from app.domain.deals.schemas import (
    BoardColumn as BoardColumnRead,
)
from app.domain.deals.schemas import (
    BoardRead,
    DealRead,
    LineItemOut,
    StageIntervalRead,
)
from app.domain.deals.schemas import (
    CurrencyTotal as CurrencyTotalRead,
)
from app.domain.pipelines.schemas import PipelineRead, StageRead

if TYPE_CHECKING:
    from app.api.graphql.types.messaging import Document


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


def _money(value: object) -> str | None:
    return None if value is None else str(value)


@strawberry.type
class Stage:
    id: strawberry.ID
    pipeline_id: strawberry.ID
    name: str
    position: int
    kind: str = strawberry.field(description="open, won or lost")
    probability: int = strawberry.field(description="Win probability, percent")
    rotting_days: int | None
    archived: bool
    archived_at: datetime.datetime | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, s: StageRead) -> Stage:
        return cls(id=strawberry.ID(str(s.id)), pipeline_id=strawberry.ID(str(s.pipeline_id)),
                   name=s.name, position=s.position, kind=s.kind, probability=s.probability,
                   rotting_days=s.rotting_days, archived=s.archived, archived_at=s.archived_at,
                   version=s.version, created_at=s.created_at, updated_at=s.updated_at)


@strawberry.type
class Pipeline:
    id: strawberry.ID
    name: str
    position: int
    is_default: bool
    stages: list[Stage] = strawberry.field(
        description="Active stages in order, then archived ones (which keep their deals)")
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, p: PipelineRead) -> Pipeline:
        return cls(id=strawberry.ID(str(p.id)), name=p.name, position=p.position,
                   is_default=p.is_default, stages=[Stage.of(s) for s in p.stages],
                   version=p.version, created_at=p.created_at, updated_at=p.updated_at)


@strawberry.type(description="A product line; `total` is computed by the server.")
class LineItem:
    name: str | None
    sku: str | None
    quantity: str
    unit_price: str
    discount: str
    tax_rate: str
    total: str

    @classmethod
    def of(cls, line: LineItemOut) -> LineItem:
        return cls(**line.model_dump())


@strawberry.type(description="A deal's stay in one stage.")
class StageInterval:
    id: strawberry.ID
    pipeline_id: strawberry.ID
    stage_id: strawberry.ID
    stage_name: str = strawberry.field(description="The stage's current name")
    stage_kind: str
    stage_archived: bool
    from_stage_id: strawberry.ID | None
    entered_at: datetime.datetime
    entered_by: str
    left_at: datetime.datetime | None
    left_by: str | None
    duration_seconds: int

    @classmethod
    def of(cls, i: StageIntervalRead) -> StageInterval:
        return cls(id=strawberry.ID(str(i.id)), pipeline_id=strawberry.ID(str(i.pipeline_id)),
                   stage_id=strawberry.ID(str(i.stage_id)), stage_name=i.stage_name,
                   stage_kind=i.stage_kind, stage_archived=i.stage_archived,
                   from_stage_id=_id(i.from_stage_id), entered_at=i.entered_at,
                   entered_by=i.entered_by, left_at=i.left_at, left_by=i.left_by,
                   duration_seconds=i.duration_seconds)


@strawberry.type
class Deal:
    id: strawberry.ID
    title: str
    pipeline_id: strawberry.ID
    stage_id: strawberry.ID
    status: str = strawberry.field(description="open, won or lost: follows the stage's kind")
    amount: str | None = strawberry.field(description="A decimal string")
    currency: str
    line_items: list[LineItem]
    contact_ids: list[strawberry.ID]
    company_id: strawberry.ID | None
    owner_id: strawberry.ID | None
    expected_close_date: datetime.date | None
    lost_reason: str | None
    source: str | None
    tags: list[str]
    custom_fields: JSON
    external_id: str | None
    score: DealScore
    rotting: bool
    rotting_since: datetime.datetime | None
    stage_entered_at: datetime.datetime
    closed_at: datetime.datetime | None
    last_activity_at: datetime.datetime | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field(description="The deal's contacts you can see, in order")
    async def contacts(self, info: strawberry.Info) -> list[Contact]:
        found = await info.context.loaders.get("contact").load_many(
            [uuid.UUID(str(i)) for i in self.contact_ids])
        return [Contact.of(c) for c in found if c is not None]

    @strawberry.field
    async def company(self, info: strawberry.Info) -> Company | None:
        if self.company_id is None:
            return None
        found = await info.context.loaders.company.load(uuid.UUID(str(self.company_id)))
        return Company.of(found) if found else None

    @strawberry.field
    async def stage(self, info: strawberry.Info) -> Stage | None:
        found = await info.context.loaders.get("stage").load(uuid.UUID(str(self.stage_id)))
        return Stage.of(found) if found else None

    @strawberry.field
    async def pipeline(self, info: strawberry.Info) -> Pipeline | None:
        found = await info.context.loaders.get("pipeline").load(
            uuid.UUID(str(self.pipeline_id)))
        return Pipeline.of(found) if found else None

    @strawberry.field(description="Every stay in a stage, oldest first")
    async def stage_history(self, info: strawberry.Info) -> list[StageInterval]:
        found = await info.context.loaders.get("deal_stage_history").load(
            uuid.UUID(str(self.id)))
        return [StageInterval.of(i) for i in found or []]

    @strawberry.field(description="Documents generated for the deal, newest first")
    async def documents(self, info: strawberry.Info) -> list[
            Annotated[Document, strawberry.lazy("app.api.graphql.types.messaging")]]:
        from app.api.graphql.types.messaging import Document

        found = await info.context.loaders.get("deal_documents").load(uuid.UUID(str(self.id)))
        return [Document.of(d) for d in found or []]

    @classmethod
    def of(cls, d: DealRead) -> Deal:
        return cls(
            id=strawberry.ID(str(d.id)), title=d.title,
            pipeline_id=strawberry.ID(str(d.pipeline_id)),
            stage_id=strawberry.ID(str(d.stage_id)), status=d.status, amount=_money(d.amount),
            currency=d.currency, line_items=[LineItem.of(x) for x in d.line_items],
            contact_ids=[strawberry.ID(str(c)) for c in d.contact_ids],
            company_id=_id(d.company_id), owner_id=_id(d.owner_id),
            expected_close_date=d.expected_close_date, lost_reason=d.lost_reason,
            source=d.source, tags=d.tags, custom_fields=d.custom_fields,
            external_id=d.external_id,
            score=DealScore.of(d, d.score),  # type: ignore[arg-type]  # reads id and version
            rotting=d.rotting, rotting_since=d.rotting_since,
            stage_entered_at=d.stage_entered_at, closed_at=d.closed_at,
            last_activity_at=d.last_activity_at, version=d.version, created_at=d.created_at,
            updated_at=d.updated_at)


@strawberry.type
class DealEdge:
    cursor: str
    node: Deal


@strawberry.type
class DealConnection:
    edges: list[DealEdge]
    page_info: PageInfo


@strawberry.type
class CurrencyTotal:
    currency: str
    count: int
    total_amount: str
    weighted_amount: str

    @classmethod
    def of(cls, t: CurrencyTotalRead) -> CurrencyTotal:
        return cls(currency=t.currency, count=t.count, total_amount=str(t.total_amount),
                   weighted_amount=str(t.weighted_amount))


@strawberry.type(description="One stage of the board.")
class BoardColumn:
    stage: Stage
    count: int
    total_amount: str = strawberry.field(description="In the workspace currency")
    weighted_amount: str = strawberry.field(description="Σ amount × probability / 100")
    currency: str
    other_currencies: list[CurrencyTotal]
    deals: list[Deal] = strawberry.field(description="The newest deals first")
    next_cursor: str | None = strawberry.field(
        description="Continue with deals(filter: {field: \"stage_id\", …}, after: this)")

    @classmethod
    def of(cls, c: BoardColumnRead) -> BoardColumn:
        return cls(stage=Stage.of(c.stage), count=c.count, total_amount=str(c.total_amount),
                   weighted_amount=str(c.weighted_amount), currency=c.currency,
                   other_currencies=[CurrencyTotal.of(o) for o in c.other_currencies],
                   deals=[Deal.of(d) for d in c.deals], next_cursor=c.next_cursor)


@strawberry.type
class Board:
    pipeline: Pipeline
    currency: str
    stages: list[BoardColumn]

    @classmethod
    def of(cls, b: BoardRead) -> Board:
        return cls(pipeline=Pipeline.of(b.pipeline), currency=b.currency,
                   stages=[BoardColumn.of(c) for c in b.stages])


# Inputs

@strawberry.input(description="Amounts are decimal strings: \"19.99\".")
class LineItemInput:
    name: str | None = strawberry.UNSET
    sku: str | None = strawberry.UNSET
    quantity: str
    unit_price: str
    discount: str | None = strawberry.UNSET
    tax_rate: str | None = strawberry.UNSET


@strawberry.input(description="Fields of a deal; on update, omitted fields stay as they are "
                              "and null clears a field (merge-patch). A new stageId moves it.")
class DealInput:
    title: str | None = strawberry.UNSET
    pipeline_id: strawberry.ID | None = strawberry.UNSET
    stage_id: strawberry.ID | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    amount: str | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    line_items: list[LineItemInput] | None = strawberry.UNSET
    contact_ids: list[strawberry.ID] | None = strawberry.UNSET
    company_id: strawberry.ID | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    expected_close_date: datetime.date | None = strawberry.UNSET
    lost_reason: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    custom_fields: JSON | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input
class StageInput:
    name: str
    kind: str | None = strawberry.UNSET
    probability: int | None = strawberry.UNSET
    rotting_days: int | None = strawberry.UNSET
    position: int | None = strawberry.UNSET


@strawberry.input(description="Merge-patch of a stage.")
class StageUpdateInput:
    name: str | None = strawberry.UNSET
    kind: str | None = strawberry.UNSET
    probability: int | None = strawberry.UNSET
    rotting_days: int | None = strawberry.UNSET


@strawberry.input
class PipelineInput:
    name: str
    is_default: bool | None = strawberry.UNSET
    position: int | None = strawberry.UNSET
    stages: list[StageInput]


@strawberry.input(description="Merge-patch of a pipeline; isDefault: true moves the default "
                              "here.")
class PipelineUpdateInput:
    name: str | None = strawberry.UNSET
    is_default: bool | None = strawberry.UNSET
    position: int | None = strawberry.UNSET
