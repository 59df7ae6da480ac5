"""Request and response shapes for deals, their line items, moves and stage history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.domain.deals.scoring_schemas import ScoreRead
from app.domain.pipelines.schemas import PipelineRead, StageRead
from app.domain.shared.cardfields import Tag
from app.domain.shared.money import Amount, AmountOut, Currency

NonNegativeAmount = Annotated[Amount, Field(ge=0)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=6, allow_inf_nan=False,
                                    examples=["3"])]
TaxRate = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4,
                                   allow_inf_nan=False, examples=["20"],
                                   description="Percent, 0–100")]
DealStatus = Literal["open", "won", "lost"]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=100)]

MAX_LINE_ITEMS = 200
MAX_CONTACTS = 50


class LineItemIn(BaseModel):
    """One product line. Its total is (quantity × unit_price − discount) × (1 + tax_rate/100),
    rounded to the currency's minor unit; the deal's amount is the sum of the totals."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    sku: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    quantity: Quantity
    unit_price: NonNegativeAmount
    discount: NonNegativeAmount = Field(
        default=Decimal(0), description="An amount off the whole line (not a percent)")
    tax_rate: TaxRate = Decimal(0)

    @model_validator(mode="after")
    def _named(self) -> LineItemIn:
        if not self.name and not self.sku:
            raise ValueError("a line item needs a name or a sku")
        return self


class LineItemOut(BaseModel):
    name: str | None
    sku: str | None
    quantity: str
    unit_price: str
    discount: str
    tax_rate: str
    total: str = Field(description="Computed by the server")


class DealFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=300,
                                            strip_whitespace=True)] | None = None
    pipeline_id: uuid.UUID | None = Field(default=None, description=(
        "Default: the stage's pipeline, or the workspace's default pipeline"))
    stage_id: uuid.UUID | None = Field(default=None, description=(
        "Default: the pipeline's first open stage. Changing it moves the deal"))
    status: DealStatus | None = Field(default=None, description=(
        "Follows the stage's kind; may be sent only when it agrees with the stage"))
    amount: NonNegativeAmount | None = Field(default=None, description=(
        "A decimal string. With line items it is computed; a different value is refused"))
    currency: Currency | None = Field(default=None,
                                      description="Default: the workspace's currency")
    line_items: list[LineItemIn] | None = Field(default=None, max_length=MAX_LINE_ITEMS)
    contact_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_CONTACTS,
                                                description="In order; the first is the main")
    company_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = Field(default=None,
                                       description="Default: the user who creates the deal")
    expected_close_date: date | None = None
    lost_reason: Reason | None = Field(default=None, description=(
        "Required in a lost stage: one of the workspace's `lost_reasons`"))
    source: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = Field(default=None, max_length=200)
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class DealCreate(DealFields):
    title: Annotated[str, StringConstraints(min_length=1, max_length=300,
                                            strip_whitespace=True)]


class DealUpdate(DealFields):
    """JSON merge-patch: a field that is present is set (null clears it); absent ones stay.
    A new `stage_id` (and/or `pipeline_id`) moves the deal, exactly as POST …/move."""


class DealMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_id: uuid.UUID
    pipeline_id: uuid.UUID | None = Field(default=None, description=(
        "Required (and must be the stage's) to move into another pipeline"))
    lost_reason: Reason | None = Field(default=None,
                                       description="Required when the stage is a lost one")


class DealRead(BaseModel):
    id: uuid.UUID
    title: str
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: str
    amount: AmountOut | None
    currency: str
    line_items: list[LineItemOut]
    contact_ids: list[uuid.UUID]
    company_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    expected_close_date: date | None
    lost_reason: str | None
    source: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    external_id: str | None
    score: ScoreRead
    rotting: bool
    rotting_since: datetime | None
    stage_entered_at: datetime
    closed_at: datetime | None
    last_activity_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str


class StageIntervalRead(BaseModel):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage_name: str = Field(description="The stage's current name")
    stage_kind: str
    stage_archived: bool
    from_stage_id: uuid.UUID | None
    entered_at: datetime
    entered_by: str
    left_at: datetime | None
    left_by: str | None
    duration_seconds: int = Field(description="Until left_at, or until now while in the stage")


class CurrencyTotal(BaseModel):
    currency: str
    count: int
    total_amount: AmountOut
    weighted_amount: AmountOut


class BoardColumn(BaseModel):
    stage: StageRead
    count: int = Field(description="Live deals you can see in the stage, any currency")
    total_amount: AmountOut = Field(description="Sum of amounts in the workspace currency")
    weighted_amount: AmountOut = Field(description="Sum of amount × probability / 100")
    currency: str
    other_currencies: list[CurrencyTotal]
    deals: list[DealRead] = Field(description="The newest deals first")
    next_cursor: str | None = Field(description=(
        "Continue with GET /api/v1/deals?stage_id=<stage>&cursor=<this> (and the same owner_id)"))


class BoardRead(BaseModel):
    pipeline: PipelineRead
    currency: str
    stages: list[BoardColumn]
