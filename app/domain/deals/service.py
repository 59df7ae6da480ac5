"""Deals: create, update, move between stages, delete, restore, upsert.

Events (docs/decisions/0012-deal-events-and-moves.md):
- `deal.created`; `deal.updated` for edits of the deal's own fields;
- `deal.stage_changed` for every move (PATCH with a new stage_id/pipeline_id, or POST …/move),
  with before/after stage ids and stage names, status, closed_at, lost_reason and the score;
- and, on top of that, `deal.won` / `deal.lost` when the status becomes won / lost, and
  `deal.reopened` when a closed deal moves back into an open stage;
- `deal.deleted` / `deal.restored`.
A PATCH that edits fields and moves writes `deal.updated` for the edits, then
`deal.stage_changed`. Each stage stay is a StageInterval row (GET …/stage-history)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals import lineitems, moves, queries, scoring, transitions
from app.domain.deals.models import Deal, DealContact, StageInterval
from app.domain.deals.schemas import DealCreate, DealFields, DealMove, DealRead, DealUpdate
from app.domain.deals.transitions import ENTITY, snapshot
from app.domain.outbox.service import record_event
from app.domain.pipelines import service as pipelines
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared import records
from app.domain.shared.cardfields import normalize_tags, search_blob, validated_custom_fields
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, DuplicateError, ValidationError
from app.domain.shared.money import quantize
from app.domain.shared.principal import Principal
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import Workspace, workspace_setting
from app.domain.workspaces.service import require_users

_NOT_NULL = ("title", "currency", "pipeline_id", "stage_id")


class _Changes:
    """What one write asks for, after validation, before it touches the deal."""

    def __init__(self) -> None:
        self.contact_ids: list[uuid.UUID] | None = None
        self.stage: Stage | None = None  # the stage to move into (None: stay)
        self.from_stage: Stage | None = None  # the stage a move leaves, when it still exists
        self.lost_reason: str | None = None


async def _check_contacts(session: AsyncSession, principal: Principal,
                          ids: list[uuid.UUID]) -> list[uuid.UUID]:
    ordered = list(dict.fromkeys(ids))
    if not ordered:
        return []
    found = set((await session.execute(select(Contact.id).where(
        Contact.id.in_(ordered), Contact.deleted_at.is_(None),
        records.visibility_condition(Contact, principal)))).scalars())
    missing = [str(i) for i in ordered if i not in found]
    if missing:
        raise ValidationError.at(["body", "contact_ids"], f"no such contact: {missing}")
    return ordered


async def _check_company(session: AsyncSession, principal: Principal,
                         company_id: uuid.UUID) -> None:
    found = (await session.execute(select(Company.id).where(
        Company.id == company_id, Company.deleted_at.is_(None),
        records.visibility_condition(Company, principal)))).first()
    if found is None:
        raise ValidationError.at(["body", "company_id"], "no such company")


def _amount(deal: Deal, given: dict[str, Any], data: DealFields, *,
            currency_changed: bool) -> None:
    """Line items decide the amount when there are any; otherwise the client does."""
    computed: Decimal | None = None
    if "line_items" in given:
        deal.line_items, computed = lineitems.compute_lines(data.line_items or [], deal.currency)
    elif deal.line_items and currency_changed:
        deal.line_items, computed = lineitems.recompute(deal.line_items, deal.currency)
    elif deal.line_items:
        computed = Decimal(deal.amount or 0)
    if deal.line_items:
        if "amount" in given and given["amount"] != computed:
            raise ValidationError.at(["body", "amount"], (
                f"the amount is computed from the line items: {lineitems.dec_str(computed)} "
                f"{deal.currency}; send that or leave amount out"), "amount_conflict")
        deal.amount = computed
    elif "amount" in given:
        deal.amount = quantize(given["amount"], deal.currency) \
            if given["amount"] is not None else None
    elif currency_changed and deal.amount is not None:
        # Without line items (or after removing them, when the last computed amount stays)
        deal.amount = quantize(Decimal(deal.amount), deal.currency)


async def _apply_fields(session: AsyncSession, principal: Principal, deal: Deal,
                        data: DealFields, *, creating: bool) -> _Changes:
    """Validate `data` (merge-patch) onto the deal's own fields; the move is only planned."""
    workspace = await current_workspace(session, principal)
    given = data.model_dump(exclude_unset=True)
    apply_own_fields(deal, given, data, workspace, principal, creating=creating)
    changes = _Changes()
    if "contact_ids" in given:
        changes.contact_ids = await _check_contacts(session, principal,
                                                    given["contact_ids"] or [])
    if given.get("company_id") is not None:
        await _check_company(session, principal, given["company_id"])
    if given.get("owner_id") is not None:
        await require_users(session, [given["owner_id"]], ["body", "owner_id"])
    if "custom_fields" in given or creating:
        deal.custom_fields = await validated_custom_fields(
            session, "deal", given.get("custom_fields"), region=workspace.default_region,
            existing=deal.custom_fields, enforce_required=principal.fills_required_fields)
    return changes


def apply_own_fields(deal: Deal, given: dict[str, Any], data: DealFields,
                     workspace: Workspace, principal: Principal, *, creating: bool) -> None:
    """The part of `_apply_fields` that reads nothing: every field of the deal's own but
    the checks of its contacts, company and owner and the custom fields (decision 0065).
    `given` is `data` as sent (`exclude_unset`); its status is checked by `_plan_stage`."""
    for key in _NOT_NULL:
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    if "title" in given:
        deal.title = given["title"]
    old_currency = deal.currency if not creating else None
    if "currency" in given:
        deal.currency = given["currency"]
    elif creating:
        deal.currency = workspace_setting(workspace, "currency")
    _amount(deal, given, data, currency_changed=not creating and deal.currency != old_currency)
    if "company_id" in given:
        deal.company_id = given["company_id"]
    if "owner_id" in given:
        deal.owner_id = given["owner_id"]
    elif creating and principal.user_id:
        deal.owner_id = principal.user_id
    for name in ("expected_close_date", "source", "external_id"):
        if name in given:
            setattr(deal, name, given[name])
    if "tags" in given:
        deal.tags = normalize_tags(given["tags"] or [])
    deal.search_text = search_blob(deal.title, deal.external_id)


async def _plan_stage(session: AsyncSession, principal: Principal, deal: Deal,
                      data: DealFields | DealMove, changes: _Changes, *, creating: bool) -> None:
    """Where the deal goes, and its lost reason there. A stage of another pipeline needs that
    pipeline's id with it; an archived stage takes no deals."""
    given = data.model_dump(exclude_unset=True)
    for key in ("pipeline_id", "stage_id"):
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    stage_id, pipeline_id = given.get("stage_id"), given.get("pipeline_id")
    target: Stage | None = None
    if creating:
        if stage_id is not None:
            target = await pipelines.live_stage(session, stage_id, ["body", "stage_id"])
            if pipeline_id is not None and pipeline_id != target.pipeline_id:
                raise ValidationError.at(["body", "stage_id"],
                                         "the stage belongs to another pipeline")
        else:
            pipeline = await pipelines.live_pipeline(session, pipeline_id, ["body", "pipeline_id"]) \
                if pipeline_id is not None else await pipelines.default_pipeline(session)
            target = await pipelines.first_open_stage(session, pipeline.id,
                                                      ["body", "pipeline_id"])
    elif stage_id is not None and stage_id != deal.stage_id:
        target, changes.from_stage = await pipelines.move_stages(
            session, stage_id, deal.stage_id, ["body", "stage_id"])
        if target.pipeline_id != (pipeline_id or deal.pipeline_id):
            raise ValidationError.at(["body", "stage_id"], (
                "the stage belongs to another pipeline; send that pipeline_id with it to move "
                "the deal there"))
    elif pipeline_id is not None and pipeline_id != deal.pipeline_id:
        if stage_id is not None:  # the current stage, in another pipeline: impossible
            raise ValidationError.at(["body", "stage_id"],
                                     "the stage belongs to another pipeline")
        await pipelines.live_pipeline(session, pipeline_id, ["body", "pipeline_id"])
        target = await pipelines.first_open_stage(session, pipeline_id, ["body", "pipeline_id"])
    changes.stage = target
    kind = target.kind if target is not None else deal.status
    status = given.get("status")
    if status is not None and status != kind:
        raise ValidationError.at(["body", "status"], (
            f"the status follows the stage: it is {kind!r} there; move the deal to a "
            f"{status} stage instead"), "status_conflict")
    await _plan_lost_reason(session, principal, deal, given, changes, kind)


async def _plan_lost_reason(session: AsyncSession, principal: Principal, deal: Deal,
                            given: dict[str, Any], changes: _Changes, kind: str) -> None:
    reason = given.get("lost_reason")
    if kind != "lost":
        if reason is not None:
            raise ValidationError.at(["body", "lost_reason"],
                                     "only a lost deal has a lost reason")
        changes.lost_reason = None
        return
    if "lost_reason" not in given and deal.status == "lost":
        changes.lost_reason = deal.lost_reason  # lost → another lost stage keeps it
        return
    allowed = workspace_setting(await current_workspace(session, principal), "lost_reasons")
    if reason is None or reason not in allowed:
        raise ValidationError.at(["body", "lost_reason"],
                                 "a lost deal needs a lost reason, one of: "
                                 + ", ".join(allowed), "lost_reason")
    changes.lost_reason = reason


async def _write_contacts(session: AsyncSession, principal: Principal, deal: Deal,
                          contact_ids: list[uuid.UUID], *, creating: bool) -> None:
    if not creating:
        await session.execute(delete(DealContact).where(DealContact.deal_id == deal.id))
    if contact_ids:
        await session.execute(insert(DealContact), [
            {"workspace_id": principal.workspace_id, "deal_id": deal.id, "contact_id": c,
             "position": i} for i, c in enumerate(contact_ids)])


async def _status_events(session: AsyncSession, principal: Principal, deal: Deal,
                         old_status: str) -> None:
    status = transitions.status_event(deal, old_status)
    if status is not None:
        await record_event(session, principal, type=status[0], entity_type=ENTITY,
                           entity_id=deal.id, before=None, after=status[1])


# Create

async def create_deal(session: AsyncSession, principal: Principal, data: DealCreate) -> Deal:
    principal.require_write()
    now = clock.now()
    deal = Deal(workspace_id=principal.workspace_id, created_by=principal.actor,
                updated_by=principal.actor, created_at=now, updated_at=now)
    changes = await _apply_fields(session, principal, deal, data, creating=True)
    await _plan_stage(session, principal, deal, data, changes, creating=True)
    assert changes.stage is not None
    deal.status = "open"
    transitions.enter(deal, changes.stage, changes.lost_reason, now)
    session.add(deal)
    session.add(transitions.open_interval(principal, deal, changes.stage, now, None))
    await records.flush_with_external_id(session, deal, ENTITY, check_external_id=True)
    contact_ids = changes.contact_ids or []
    await _write_contacts(session, principal, deal, contact_ids, creating=True)
    # Scored once the deal and its contacts are written: the rules may read them.
    await scoring.rescore(session, deal, contact_ids)
    await session.flush()
    await record_event(session, principal, type="deal.created", entity_type=ENTITY,
                       entity_id=deal.id, after=snapshot(deal, contact_ids))
    await _status_events(session, principal, deal, "open")
    return deal


# Update and move

async def get_deal(session: AsyncSession, principal: Principal, deal_id: uuid.UUID, *,
                   include_deleted: bool = False) -> Deal:
    return await records.get_visible(session, Deal, principal, deal_id,
                                     include_deleted=include_deleted)


async def update_deal(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                      data: DealUpdate, *, expected_version: int | None = None) -> DealRead:
    """The deal as written (its contact links are known here, so nothing is read again)."""
    principal.require_write()
    deal = await records.get_visible(session, Deal, principal, deal_id, for_update=True)
    records.check_version(deal, expected_version)
    return queries.to_read(*await _update_loaded(session, principal, deal, data))


async def move_deal(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                    data: DealMove, *, expected_version: int | None = None,
                    plain: bool = True) -> DealRead:
    """The same move as a PATCH with a new stage_id: moving to the stage the deal is in
    changes nothing (its lost reason may still be corrected). A plain move (into an open or
    won stage) is read and written below the ORM; the ORM path does and reports the rest.
    `plain=False`: the caller tried `moves.plain_move_on` already."""
    principal.require_write()
    if plain:
        moved = await moves.plain_move(session, principal, deal_id, data,
                                       expected_version=expected_version)
        if moved is not None:
            return moved
    deal = await records.get_visible(session, Deal, principal, deal_id, for_update=True)
    records.check_version(deal, expected_version)
    return queries.to_read(*await _update_loaded(session, principal, deal, data))


async def _update_loaded(session: AsyncSession, principal: Principal, deal: Deal,
                         data: DealFields | DealMove) -> tuple[Deal, list[uuid.UUID]]:
    """Apply the write to the loaded deal; returns it with its contact ids after the write."""
    old_contacts = (await queries.contact_ids_of(session, [deal.id]))[deal.id]
    before = snapshot(deal, old_contacts)
    if isinstance(data, DealMove):
        changes = _Changes()
    else:
        changes = await _apply_fields(session, principal, deal, data, creating=False)
    await _plan_stage(session, principal, deal, data, changes, creating=False)
    contact_ids = old_contacts if changes.contact_ids is None else changes.contact_ids
    if contact_ids != old_contacts:
        await _write_contacts(session, principal, deal, contact_ids, creating=False)
    now = clock.now()
    if changes.stage is None:
        deal.lost_reason = changes.lost_reason
        await scoring.rescore(session, deal, contact_ids)
        after = snapshot(deal, contact_ids)
        if after == before:
            return deal, contact_ids
        records.touch(deal, principal)
        await _flush(session, deal, before)
        await record_event(session, principal, type="deal.updated", entity_type=ENTITY,
                           entity_id=deal.id, before=before, after=snapshot(deal, contact_ids))
        return deal, contact_ids
    edited = snapshot(deal, contact_ids)
    from_stage = changes.from_stage or await session.get(Stage, (deal.workspace_id,
                                                                 deal.stage_id))
    old_status = deal.status
    await session.execute(
        update(StageInterval).where(StageInterval.deal_id == deal.id,
                                    StageInterval.left_at.is_(None))
        .values(left_at=now, left_by=principal.actor))
    session.add(transitions.open_interval(principal, deal, changes.stage, now, deal.stage_id))
    transitions.enter(deal, changes.stage, changes.lost_reason, now)
    await scoring.rescore(session, deal, contact_ids)
    records.touch(deal, principal)
    await _flush(session, deal, before)
    if edited != before:
        await record_event(session, principal, type="deal.updated", entity_type=ENTITY,
                           entity_id=deal.id, before=before, after=edited)
    after = snapshot(deal, contact_ids)
    before_move, after_move = transitions.stage_changed(
        edited, after, from_stage.name if from_stage else None, changes.stage.name)
    await record_event(session, principal, type="deal.stage_changed", entity_type=ENTITY,
                       entity_id=deal.id, before=before_move, after=after_move)
    await _status_events(session, principal, deal, old_status)
    return deal, contact_ids


async def _flush(session: AsyncSession, deal: Deal, before: dict[str, Any]) -> None:
    await records.flush_with_external_id(session, deal, ENTITY,
                                         check_external_id=deal.external_id
                                         != before["external_id"])


# Delete, restore

async def delete_deal(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                      *, expected_version: int | None = None) -> None:
    principal.require_write()
    deal = await records.get_visible(session, Deal, principal, deal_id, for_update=True)
    records.check_version(deal, expected_version)
    await records.soft_delete(session, deal, principal, ENTITY)


async def restore_deal(session: AsyncSession, principal: Principal, deal_id: uuid.UUID) -> Deal:
    principal.require_write()
    deal = await records.get_visible(session, Deal, principal, deal_id, include_deleted=True,
                                     for_update=True)
    if deal.deleted_at is not None:
        pipeline = await session.get(Pipeline, (deal.workspace_id, deal.pipeline_id))
        if pipeline is None or pipeline.deleted_at is not None:
            raise ConflictError("the deal's pipeline is deleted; restore the pipeline first")
    await records.restore(session, deal, principal, ENTITY)
    return deal


# Batch upserts

async def upsert_target(session: AsyncSession, principal: Principal, data: DealCreate,
                        upsert_on: str) -> Deal | None:
    if upsert_on != "external_id":
        raise ValidationError.at(["body", "upsert_on"], "deals upsert on external_id only")
    if not data.external_id:
        raise ValidationError.at(["body", "external_id"], "required for upsert_on=external_id")
    existing = (await session.execute(select(Deal).where(
        Deal.external_id == data.external_id, Deal.deleted_at.is_(None))
        .with_for_update())).scalar_one_or_none()
    if existing is not None and not principal.can_see_owner(existing.owner_id):
        raise DuplicateError("a matching deal exists that you may not change")
    return existing


async def apply_upsert(session: AsyncSession, principal: Principal, existing: Deal,
                       data: DealCreate) -> bool:
    version = existing.version
    await _update_loaded(session, principal, existing,
                         DealUpdate.model_validate(data.model_dump(exclude_unset=True)))
    return existing.version != version
