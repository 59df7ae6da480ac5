"""Reading deals: the read model, list filters, search, and the stage history."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, exists, false, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.contacts.service import search_condition as contact_search
from app.domain.deals.models import Deal, DealContact, StageInterval
from app.domain.deals.schemas import DealRead, LineItemOut, StageIntervalRead
from app.domain.deals.scoring_schemas import score_read
from app.domain.pipelines.models import Stage
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.listing import FilterField, ListSpec, Page, Related, paginate
from app.domain.shared.normalize import fold_for_search
from app.domain.shared.principal import Principal


class ContactFilter:
    """`contact_id=<id>`: deals that list the contact (through deal_contacts)."""

    def _deals_with(self, condition: Any) -> ColumnElement[bool]:
        return Deal.id.in_(select(DealContact.deal_id).where(condition))

    def __eq__(self, value: object) -> ColumnElement[bool]:  # type: ignore[override]
        return self._deals_with(DealContact.contact_id == value)

    def __ne__(self, value: object) -> ColumnElement[bool]:  # type: ignore[override]
        return not_(self == value)

    def in_(self, values: list[Any]) -> ColumnElement[bool]:
        return self._deals_with(DealContact.contact_id.in_(values))

    def is_(self, _: None) -> ColumnElement[bool]:
        return not_(exists().where(DealContact.deal_id == Deal.id))

    def is_not(self, _: None) -> ColumnElement[bool]:
        return exists().where(DealContact.deal_id == Deal.id)

    # Ordered comparisons never apply to ids (the parser refuses them first).
    def __gt__(self, _: Any) -> ColumnElement[bool]:
        return false()

    __ge__ = __lt__ = __le__ = __gt__
    __hash__ = None  # type: ignore[assignment]


STAGE_FIELDS = {
    "name": FilterField(Stage.name, "str"),
    "kind": FilterField(Stage.kind, "str"),
}

LIST_SPEC = ListSpec(
    id_column=Deal.id,
    custom_fields_column=Deal.custom_fields, custom_fields_object="deal",
    fields={
        "id": FilterField(Deal.id, "uuid"),
        "title": FilterField(Deal.title, "str", sortable=True),
        "pipeline_id": FilterField(Deal.pipeline_id, "uuid"),
        "stage_id": FilterField(Deal.stage_id, "uuid"),
        "status": FilterField(Deal.status, "str", sortable=True),
        "amount": FilterField(Deal.amount, "decimal"),
        "currency": FilterField(Deal.currency, "str"),
        "contact_id": FilterField(ContactFilter(), "uuid"),
        "company_id": FilterField(Deal.company_id, "uuid"),
        "owner_id": FilterField(Deal.owner_id, "uuid"),
        "expected_close_date": FilterField(Deal.expected_close_date, "date"),
        "lost_reason": FilterField(Deal.lost_reason, "str"),
        "source": FilterField(Deal.source, "str"),
        "tags": FilterField(Deal.tags, "array"),
        "external_id": FilterField(Deal.external_id, "str"),
        "score_class": FilterField(Deal.score_class, "str"),
        "probability": FilterField(Deal.probability, "int"),
        "expected_amount": FilterField(Deal.expected_amount, "decimal"),
        "rotting_since": FilterField(Deal.rotting_since, "datetime"),
        "stage_entered_at": FilterField(Deal.stage_entered_at, "datetime", sortable=True),
        "closed_at": FilterField(Deal.closed_at, "datetime"),
        "last_activity_at": FilterField(Deal.last_activity_at, "datetime"),
        "created_at": FilterField(Deal.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Deal.updated_at, "datetime", sortable=True),
    },
    related={
        "stage": Related(STAGE_FIELDS, lambda cond: Deal.stage_id.in_(
            select(Stage.id).where(cond))),
        "company": Related(
            {"name": FilterField(Company.name, "str"), "kind": FilterField(Company.kind, "str")},
            lambda cond: Deal.company_id.in_(select(Company.id).where(
                Company.deleted_at.is_(None), cond))),
    },
)


# The read model

def to_read(deal: Deal, contact_ids: list[uuid.UUID]) -> DealRead:
    return DealRead(
        id=deal.id, title=deal.title, pipeline_id=deal.pipeline_id, stage_id=deal.stage_id,
        status=deal.status, amount=deal.amount, currency=deal.currency,
        line_items=[LineItemOut(**line) for line in deal.line_items], contact_ids=contact_ids,
        company_id=deal.company_id, owner_id=deal.owner_id,
        expected_close_date=deal.expected_close_date, lost_reason=deal.lost_reason,
        source=deal.source, tags=deal.tags, custom_fields=deal.custom_fields,
        external_id=deal.external_id, score=score_read(deal),
        rotting=deal.rotting_since is not None, rotting_since=deal.rotting_since,
        stage_entered_at=deal.stage_entered_at, closed_at=deal.closed_at,
        last_activity_at=deal.last_activity_at, version=deal.version,
        created_at=deal.created_at, updated_at=deal.updated_at, deleted_at=deal.deleted_at,
        created_by=deal.created_by, updated_by=deal.updated_by)


async def contact_ids_of(session: AsyncSession, deal_ids: list[uuid.UUID]
                         ) -> dict[uuid.UUID, list[uuid.UUID]]:
    result: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in deal_ids}
    if not deal_ids:
        return result
    rows = await session.execute(
        select(DealContact.deal_id, DealContact.contact_id)
        .where(DealContact.deal_id.in_(deal_ids))
        .order_by(DealContact.deal_id, DealContact.position, DealContact.contact_id))
    for deal_id, contact_id in rows:
        result[deal_id].append(contact_id)
    return result


async def reads(session: AsyncSession, deals: list[Deal]) -> list[DealRead]:
    contacts = await contact_ids_of(session, [d.id for d in deals])
    return [to_read(d, contacts[d.id]) for d in deals]


async def read_one(session: AsyncSession, deal: Deal) -> DealRead:
    return (await reads(session, [deal]))[0]


# Lists

def search_condition(q: str, principal: Principal) -> Any:
    """`q` matches the title and external id, and the deal's contacts (names, phones,
    emails) that the caller can see."""
    folded = fold_for_search(q)
    needle = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    by_contact = (select(DealContact.deal_id)
                  .join(Contact, (Contact.workspace_id == DealContact.workspace_id)
                        & (Contact.id == DealContact.contact_id))
                  .where(Contact.deleted_at.is_(None), contact_search(q),
                         records.visibility_condition(Contact, principal)))
    return Deal.search_text.like(needle, escape="\\") | Deal.id.in_(by_contact)


def visible_deals(principal: Principal, *, include_deleted: bool = False) -> list[Any]:
    conditions = [records.visibility_condition(Deal, principal)]
    if not include_deleted:
        conditions.append(Deal.deleted_at.is_(None))
    return conditions


async def list_deals(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                     q: str | None, page: Page, include_deleted: bool = False
                     ) -> tuple[list[Deal], str | None]:
    query = select(Deal).where(*visible_deals(principal, include_deleted=include_deleted),
                               *conditions)
    if q:
        query = query.where(search_condition(q, principal))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def deals_by_ids(session: AsyncSession, principal: Principal,
                       ids: list[uuid.UUID]) -> dict[uuid.UUID, Deal]:
    """Batch load for DataLoaders: visible, live deals by id."""
    if not ids:
        return {}
    rows = await session.execute(select(Deal).where(Deal.id.in_(ids), *visible_deals(principal)))
    return {d.id: d for d in rows.scalars()}


# Stage history

INTERVAL_SPEC = ListSpec(
    id_column=StageInterval.id, default_sort="entered_at",
    fields={"entered_at": FilterField(StageInterval.entered_at, "datetime", sortable=True)})


async def intervals_by_deal(session: AsyncSession, deal_ids: list[uuid.UUID]
                            ) -> dict[uuid.UUID, list[StageIntervalRead]]:
    """Every interval of the given deals, in order (for DataLoaders)."""
    result: dict[uuid.UUID, list[StageIntervalRead]] = {i: [] for i in deal_ids}
    if not deal_ids:
        return result
    rows = list((await session.execute(
        select(StageInterval).where(StageInterval.deal_id.in_(deal_ids))
        .order_by(StageInterval.entered_at, StageInterval.id))).scalars())
    for item in await interval_reads(session, rows):
        result[item[0]].append(item[1])
    return result


async def interval_reads(session: AsyncSession, intervals: list[StageInterval]
                         ) -> list[tuple[uuid.UUID, StageIntervalRead]]:
    """Intervals with their stage's name as it is now (renames and archiving show)."""
    stage_ids = {i.stage_id for i in intervals}
    stages = {s.id: s for s in (await session.execute(
        select(Stage).where(Stage.id.in_(stage_ids)))).scalars()} if stage_ids else {}
    now = clock.now()
    out = []
    for interval in intervals:
        stage = stages[interval.stage_id]
        until = interval.left_at or now
        out.append((interval.deal_id, StageIntervalRead(
            id=interval.id, pipeline_id=interval.pipeline_id, stage_id=interval.stage_id,
            stage_name=stage.name, stage_kind=stage.kind,
            stage_archived=stage.archived_at is not None, from_stage_id=interval.from_stage_id,
            entered_at=interval.entered_at, entered_by=interval.entered_by,
            left_at=interval.left_at, left_by=interval.left_by,
            duration_seconds=max(0, int((until - interval.entered_at).total_seconds())))))
    return out


async def stage_history(session: AsyncSession, deal_id: uuid.UUID, page: Page
                        ) -> tuple[list[StageIntervalRead], str | None]:
    """The deal's intervals, oldest first. The caller checks the deal is visible."""
    query, cut = paginate(INTERVAL_SPEC, select(StageInterval).where(
        StageInterval.deal_id == deal_id), page)
    rows, cursor = cut(list((await session.execute(query)).scalars()))
    return [read for _, read in await interval_reads(session, rows)], cursor
