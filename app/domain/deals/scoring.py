"""Deal scoring (S8): the workspace's rules applied to deals, kept current on every change.

Interface used by the deals service:

    await rescore(session, deal, contact_ids)

recomputes the deal's score fields (score_class, score_points, probability, expected_amount,
max_expected_amount, score_explanation) from its inputs: its stage, its own fields, its
primary contact (the first of contact_ids), its company, the manual adjustment and the
workspace's configuration. It does not flush and records no event: the caller's deal event
carries the changed score fields. `contact_ids` are the deal's links in order, when the caller
knows them (a write has just read or written them); without them they are read, and pending
deal_contacts rows in the session are honoured.

Everything else that changes an input re-scores here, writing a `deal.updated` event (score
fields only) for each deal whose score changed, without bumping the deal's version — the
score is derived state, as `rotting_since` is (decision 0013):
- `contact_changed` / `company_changed`: hooks in the contacts and companies services;
- `update_config`: a new configuration re-scores every open deal in the same transaction.

The pure rule evaluation is in scoring_engine.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.customfields.service import definitions_for
from app.domain.deals import scoring_engine as engine
from app.domain.deals.models import Deal, DealContact
from app.domain.deals.scoring_schemas import (
    ScoreAdjustmentIn,
    ScoringConfigIn,
    ScoringConfigRead,
    field_kind,
    score_read,
    value_error,
)
from app.domain.outbox.service import record_event
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ForbiddenError, PreconditionFailedError, ValidationError
from app.domain.shared.money import check_currency
from app.domain.shared.principal import Principal, Role, system_principal
from app.domain.workspaces.context import lock_current_workspace
from app.domain.workspaces.models import Workspace, workspace_setting
from app.domain.workspaces.service import existing_user_ids

__all__ = ["company_changed", "contact_changed", "rescore", "rescore_aged_deals",
           "rescore_deals", "score_read", "update_config"]

SETTINGS_KEY = "deal_scoring"
ENTITY = "deal_scoring"
SCORE_FIELDS = ("score_class", "score_points", "probability", "expected_amount",
                "max_expected_amount", "score_explanation")
CHUNK = 500  # deals per batch when the whole workspace is re-scored
_CONFIG_CACHE = "deal_scoring_config"


# --- configuration --------------------------------------------------------------------------

async def _workspace(session: AsyncSession, workspace_id: uuid.UUID) -> Workspace:
    cached = session.info.get("workspace")
    if cached is not None and cached.id == workspace_id:
        return cached  # type: ignore[no-any-return]
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise LookupError(f"workspace {workspace_id} not found")
    return workspace


def _config_of(session: AsyncSession, workspace: Workspace) -> engine.Config:
    """The workspace's configuration as engine objects, parsed once per stored version (the
    deals service re-scores often within one transaction)."""
    stored = workspace.settings.get(SETTINGS_KEY)
    cached = session.info.get(_CONFIG_CACHE)
    if cached is not None and cached[0] is stored and cached[1] == workspace.id:
        return cached[2]  # type: ignore[no-any-return]
    config = engine.config_from_dict(stored)
    session.info[_CONFIG_CACHE] = (stored, workspace.id, config)
    return config


def config_read(workspace: Workspace) -> ScoringConfigRead:
    stored = workspace.settings.get(SETTINGS_KEY) or {}
    return ScoringConfigRead.model_validate({"version": 0, **stored})


async def get_config(session: AsyncSession, principal: Principal) -> ScoringConfigRead:
    return config_read(await _workspace(session, principal.workspace_id))


async def _definitions(session: AsyncSession, data: ScoringConfigIn) -> dict[str, dict[str, Any]]:
    """Custom field definitions of the entities the conditions name, by entity and key."""
    wanted = {entity for r in data.rules for c in r.conditions
              for prefix, entity in engine.CUSTOM_FIELD_PREFIXES.items()
              if c.field.startswith(prefix)}
    return {entity: {d.key: d for d in await definitions_for(session, entity)}
            for entity in sorted(wanted)}


def _choices(workspace: Workspace, field: str, definitions: dict[str, dict[str, Any]]
             ) -> list[str] | None:
    """The allowed values of a field with a closed list (statuses, kinds, select fields)."""
    lists = {"contact.status": "contact_statuses", "contact.kind": "contact_kinds",
             "company.kind": "company_kinds"}
    if field in lists:
        return list(workspace_setting(workspace, lists[field]))
    for prefix, entity in engine.CUSTOM_FIELD_PREFIXES.items():
        if field.startswith(prefix):
            definition = definitions.get(entity, {}).get(field[len(prefix):])
            if definition is not None and definition.type in ("select", "multiselect"):
                return list(definition.options)
    return None


async def check_config(session: AsyncSession, principal: Principal, data: ScoringConfigIn,
                       loc: list[str | int]) -> None:
    """Every condition names a known field, an operator that suits it and a value of the
    field's type; closed lists and ids are checked against the workspace. All problems are
    reported at once, each at its place in the body."""
    workspace = await _workspace(session, principal.workspace_id)
    definitions = await _definitions(session, data)
    kinds = {entity: {k: d.type for k, d in defs.items()} for entity, defs in definitions.items()}
    errors: list[dict[str, Any]] = []
    ids: dict[str, list[tuple[list[str | int], str]]] = {}
    seen: set[str] = set()

    def fail(where: list[str | int], msg: str) -> None:
        errors.append({"loc": where, "msg": msg, "type": "value_error"})

    for i, rule in enumerate(data.rules):
        here: list[str | int] = [*loc, "rules", i]
        if rule.id in seen:
            fail([*here, "id"], f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)
        for j, cond in enumerate(rule.conditions):
            at: list[str | int] = [*here, "conditions", j]
            kind = field_kind(cond.field, kinds)
            if kind is None:
                fail([*at, "field"], f"unknown field {cond.field!r}; GET "
                     "/api/v1/deal-scoring/fields lists the fields (custom fields must be "
                     "defined)")
                continue
            if cond.op not in engine.OPS_BY_KIND[kind]:
                fail([*at, "op"], value_error(kind, cond.op, cond.value) or "")
                continue
            problem = value_error(kind, cond.op, cond.value)
            if problem:
                fail([*at, "value"], problem)
                continue
            values = cond.value if isinstance(cond.value, list) else [cond.value]
            choices = _choices(workspace, cond.field, definitions)
            if choices is not None and cond.op not in ("exists", "not_exists", "contains"):
                folded = {c.casefold() for c in choices}
                bad = [v for v in values if str(v).casefold() not in folded]
                if bad:
                    fail([*at, "value"], f"{bad[0]!r} is not one of {choices}")
            if cond.field == "deal.currency" and cond.op in ("eq", "ne", "in", "nin"):
                for v in values:
                    try:
                        check_currency(v)
                    except ValueError as exc:
                        fail([*at, "value"], str(exc))
            if kind == "uuid" and cond.op not in ("exists", "not_exists"):
                table = cond.field.rsplit(".", 1)[-1] if cond.field.startswith("deal.") \
                    else "owner_id"
                for v in values:
                    ids.setdefault(table, []).append(([*at, "value"], v))
    await _check_ids(session, ids, fail)
    if errors:
        raise ValidationError("the scoring configuration is not valid", errors=errors)


async def _check_ids(session: AsyncSession, ids: dict[str, list[tuple[list[str | int], str]]],
                     fail: Any) -> None:
    """Stage, pipeline and user ids in conditions must exist in the workspace."""
    models = {"stage_id": Stage, "pipeline_id": Pipeline}
    for name, uses in ids.items():
        wanted = [uuid.UUID(v) for _, v in uses]
        if name in models:
            model = models[name]
            found = set((await session.execute(select(model.id).where(
                model.id.in_(wanted), model.deleted_at.is_(None)))).scalars())
        else:
            found = await existing_user_ids(session, wanted)
        for where, value in uses:
            if uuid.UUID(value) not in found:
                fail(where, f"no {name.removesuffix('_id').replace('_', ' ')} {value} in this "
                            "workspace")


async def update_config(session: AsyncSession, principal: Principal, data: ScoringConfigIn,
                        *, expected_version: int | None = None) -> tuple[ScoringConfigRead, int]:
    """Replace the configuration and re-score every open deal in this transaction. Returns
    the stored configuration and how many deals' scores changed."""
    principal.require_admin()
    workspace = await lock_current_workspace(session, principal)
    current = workspace.settings.get(SETTINGS_KEY) or {}
    version = int(current.get("version", 0))
    if expected_version is not None and expected_version != version:
        raise PreconditionFailedError(
            f"the scoring configuration is at version {version}, not {expected_version}; "
            "fetch it again and retry", extra={"current_version": version})
    await check_config(session, principal, data, ["body"])
    body = data.model_dump(mode="json")
    if current and all(current.get(k) == v for k, v in body.items()):
        return config_read(workspace), 0
    before = config_read(workspace).model_dump(mode="json")
    stored = {**body, "version": version + 1, "updated_at": clock.now().isoformat(),
              "updated_by": principal.actor}
    workspace.settings = {**workspace.settings, SETTINGS_KEY: stored}
    await record_event(session, principal, type="deal_scoring.updated", entity_type=ENTITY,
                       entity_id=workspace.id, before=before, after=stored)
    rescored = await rescore_open_deals(session, principal)
    return config_read(workspace), rescored


# --- computing a score ----------------------------------------------------------------------

def _stage_of(stage: Stage | None, deal: Deal) -> engine.Stage:
    if stage is None:
        return engine.Stage(id=deal.stage_id, name="unknown stage", probability=0)
    return engine.Stage(id=stage.id, name=stage.name, probability=stage.probability,
                        kind=stage.kind)


def _previous_note(deal: Deal) -> str | None:
    """The adjustment's note lives in the explanation entry that records the adjustment."""
    at = deal.score_adjusted_at.isoformat() if deal.score_adjusted_at else None
    for entry in deal.score_explanation or []:
        if entry.get("kind") == "adjustment" and entry.get("at") == at:
            return entry.get("note")  # type: ignore[no-any-return]
    return None


def _previous_max(deal: Deal) -> Decimal | None:
    """The maximum so far, unless the currency changed in this unit of work (a maximum in
    another currency means nothing)."""
    try:
        currency_changed = inspect(deal).attrs.currency.history.deleted
    except Exception:  # noqa: BLE001 - a plain object outside any session
        currency_changed = ()
    return None if currency_changed else deal.max_expected_amount


def compute(config: engine.Config, deal: Deal, stage: Stage | None, contact: Contact | None,
            company: Company | None, *, note: str | None = None) -> engine.Score:
    entered = deal.stage_entered_at
    days = max(0, (clock.now() - entered).days) if entered is not None else 0
    facts = engine.facts_for(deal, contact, company, days_in_stage=days)
    adjustment = engine.Adjustment(value=deal.score_adjustment or 0, by=deal.score_adjusted_by,
                                   at=deal.score_adjusted_at, note=note)
    status = deal.status or (stage.kind if stage is not None else "open")
    return engine.score(config, facts, stage=_stage_of(stage, deal), status=status,
                        amount=deal.amount, currency=deal.currency, adjustment=adjustment,
                        previous_max=_previous_max(deal))


def _values(result: engine.Score) -> dict[str, Any]:
    return {"score_class": result.score_class, "score_points": result.points,
            "probability": result.probability, "expected_amount": result.expected_amount,
            "max_expected_amount": result.max_expected_amount,
            "score_explanation": result.explanation}


def _apply(deal: Deal, result: engine.Score) -> None:
    for name, value in _values(result).items():
        setattr(deal, name, value)


def _live(record: Any) -> Any:
    return record if record is not None and record.deleted_at is None else None


async def _linked_contacts(session: AsyncSession, deal: Deal) -> list[uuid.UUID]:
    """The deal's contact ids by position, counting links added or removed in this session
    but not flushed yet."""
    links: dict[uuid.UUID, int] = {}
    if deal not in session.new:
        rows = await session.execute(select(DealContact.contact_id, DealContact.position)
                                     .where(DealContact.deal_id == deal.id))
        links = dict(rows.all())
    for link in session.deleted:
        if isinstance(link, DealContact) and link.deal_id == deal.id:
            links.pop(link.contact_id, None)
    for link in session.new:
        if isinstance(link, DealContact) and link.deal_id == deal.id:
            links[link.contact_id] = link.position
    return sorted(links, key=lambda c: (links[c], str(c)))


async def _primary_contact(session: AsyncSession, deal: Deal,
                           contact_ids: Sequence[uuid.UUID] | None) -> Contact | None:
    """The live contact with the lowest position among the deal's links."""
    if contact_ids is None:
        contact_ids = await _linked_contacts(session, deal)
    for contact_id in contact_ids:
        contact = _live(await session.get(Contact, (deal.workspace_id, contact_id)))
        if contact is not None:
            return contact  # type: ignore[no-any-return]
    return None


async def _inputs(session: AsyncSession, config: engine.Config, deal: Deal,
                  contact_ids: Sequence[uuid.UUID] | None = None,
                  ) -> tuple[Stage | None, Contact | None, Company | None]:
    stage = await session.get(Stage, (deal.workspace_id, deal.stage_id))
    contact = await _primary_contact(session, deal, contact_ids) \
        if config.uses("contact") else None
    company = None
    if deal.company_id is not None and config.uses("company"):
        company = _live(await session.get(Company, (deal.workspace_id, deal.company_id)))
    return stage, contact, company


async def rescore(session: AsyncSession, deal: Deal,
                  contact_ids: Sequence[uuid.UUID] | None = None) -> None:
    """Recompute the deal's score fields in place (no flush, no event). `contact_ids`: the
    deal's links in position order, if the caller has them (saves reading them again)."""
    config = _config_of(session, await _workspace(session, deal.workspace_id))
    stage, contact, company = await _inputs(session, config, deal, contact_ids)
    rescore_with(config, deal, stage, contact, company)


def rescore_with(config: engine.Config, deal: Deal, stage: Any, contact: Any | None,
                 company: Any | None) -> None:
    """`rescore` with its inputs at hand (the plain move reads them itself): `contact` and
    `company` are None when the configuration does not read them or they are gone."""
    _apply(deal, compute(config, deal, stage, contact, company, note=_previous_note(deal)))


async def preview(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                  data: ScoringConfigIn | None, *, loc: Sequence[str | int] = ("body", "config")
                  ) -> tuple[Deal, engine.Score]:
    """The score the deal would get, with the current or a proposed configuration; nothing
    is written (the deal is not modified)."""
    deal = await records.get_visible(session, Deal, principal, deal_id)
    if data is not None:
        await check_config(session, principal, data, list(loc))
        config = engine.config_from_dict(data.model_dump(mode="json"))
    else:
        config = _config_of(session, await _workspace(session, principal.workspace_id))
    stage, contact, company = await _inputs(session, config, deal)
    return deal, compute(config, deal, stage, contact, company, note=_previous_note(deal))


# --- re-scoring many deals ------------------------------------------------------------------

def _score_snapshot(deal: Deal) -> dict[str, Any]:
    return {f: engine.json_value(getattr(deal, f)) for f in SCORE_FIELDS}


async def _primary_contacts(session: AsyncSession, deal_ids: list[uuid.UUID]
                            ) -> dict[uuid.UUID, Contact]:
    rows = await session.execute(
        select(DealContact.deal_id, Contact)
        .join(Contact, and_(Contact.workspace_id == DealContact.workspace_id,
                            Contact.id == DealContact.contact_id))
        .where(DealContact.deal_id.in_(deal_ids), Contact.deleted_at.is_(None))
        .order_by(DealContact.deal_id, DealContact.position, DealContact.contact_id))
    primary: dict[uuid.UUID, Contact] = {}
    for deal_id, contact in rows:
        if deal_id not in primary and contact.deleted_at is None:
            primary[deal_id] = contact
    return primary


async def _by_id(session: AsyncSession, model: Any, ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    rows = await session.execute(select(model).where(model.id.in_(list(ids))))
    return {r.id: r for r in rows.scalars()}


async def rescore_deals(session: AsyncSession, principal: Principal, deals: Sequence[Deal],
                        ) -> int:
    """Re-score loaded deals with batched loads (stages, primary contacts, companies: one
    query each per chunk of deals) and one UPDATE per chunk; a `deal.updated` event with the
    score fields for each deal whose score changed. Returns how many changed."""
    changed = 0
    for start in range(0, len(deals), CHUNK):
        changed += await _rescore_chunk(session, principal, deals[start:start + CHUNK])
    return changed


async def _rescore_chunk(session: AsyncSession, principal: Principal, deals: Sequence[Deal]
                         ) -> int:
    if not deals:
        return 0
    config = _config_of(session, await _workspace(session, principal.workspace_id))
    stages = await _by_id(session, Stage, {d.stage_id for d in deals})
    contacts = await _primary_contacts(session, [d.id for d in deals]) \
        if config.uses("contact") else {}
    companies = await _by_id(session, Company, {d.company_id for d in deals if d.company_id}) \
        if config.uses("company") else {}
    rows: list[dict[str, Any]] = []
    for deal in deals:
        company = _live(companies.get(deal.company_id)) if deal.company_id else None
        result = compute(config, deal, stages.get(deal.stage_id), contacts.get(deal.id),
                         company, note=_previous_note(deal))
        values = _values(result)
        before = _score_snapshot(deal)
        after = {f: engine.json_value(v) for f, v in values.items()}
        if after == before:
            continue
        rows.append({"workspace_id": deal.workspace_id, "id": deal.id, **values})
        for name, value in values.items():  # the loaded deal shows it, and is not dirty
            set_committed_value(deal, name, value)
        await record_event(session, principal, type="deal.updated", entity_type="deal",
                           entity_id=deal.id, before=before, after=after)
    if rows:  # one executemany for the chunk
        await session.execute(update(Deal), rows)
    return len(rows)


def _open_deals() -> Any:
    return (select(Deal).where(Deal.status == "open", Deal.deleted_at.is_(None))
            .order_by(Deal.id).with_for_update())


async def rescore_open_deals(session: AsyncSession, principal: Principal) -> int:
    """Every open deal of the workspace, in chunks: locked (a concurrent change of a deal
    waits, then re-scores with its own inputs), written, and let go of."""
    changed, last = 0, None
    while True:
        query = _open_deals().limit(CHUNK)
        if last is not None:
            query = query.where(Deal.id > last)
        deals = list((await session.execute(query)).scalars())
        if not deals:
            return changed
        changed += await rescore_deals(session, principal, deals)
        await session.flush()
        last = deals[-1].id
        for obj in [*deals, *(o for o in session.identity_map.values()
                              if type(o).__name__ == "Event")]:
            session.expunge(obj)
        if len(deals) < CHUNK:
            return changed


AGE_WINDOW = timedelta(hours=1)  # a missed sweep within the hour still finds its deals


async def rescore_aged_deals(session: AsyncSession, workspace_id: uuid.UUID,
                             now: datetime) -> int:
    """A sweep (signature of app/workers/sweeps.py): time passing is an input when a rule
    reads `deal.days_in_stage`. Only open deals that reached one of the day marks those
    rules care about within the last hour are re-scored (locked rows are left to the next
    sweep); each one whose score changes gets a `deal.updated` event."""
    config = _config_of(session, await _workspace(session, workspace_id))
    marks = engine.day_marks(config)
    if not marks:
        return 0
    windows = [and_(Deal.stage_entered_at <= now - timedelta(days=k),
                    Deal.stage_entered_at > now - timedelta(days=k) - AGE_WINDOW)
               for k in sorted(marks)]
    query = (select(Deal).where(Deal.status == "open", Deal.deleted_at.is_(None), or_(*windows))
             .order_by(Deal.id).with_for_update(skip_locked=True))
    deals = list((await session.execute(query)).scalars())
    return await rescore_deals(session, system_principal(workspace_id), deals)


async def contact_changed(session: AsyncSession, principal: Principal,
                          contact_id: uuid.UUID) -> None:
    """Hook for the contacts service: re-score the open deals the contact is on (only when a
    rule reads contact fields)."""
    config = _config_of(session, await _workspace(session, principal.workspace_id))
    if not config.uses("contact"):
        return
    linked = select(DealContact.deal_id).where(DealContact.contact_id == contact_id)
    deals = (await session.execute(_open_deals().where(Deal.id.in_(linked)))).scalars()
    await rescore_deals(session, principal, list(deals))


async def company_changed(session: AsyncSession, principal: Principal,
                          company_id: uuid.UUID) -> None:
    """Hook for the companies service: re-score the company's open deals (only when a rule
    reads company fields)."""
    config = _config_of(session, await _workspace(session, principal.workspace_id))
    if not config.uses("company"):
        return
    deals = (await session.execute(_open_deals().where(Deal.company_id == company_id))).scalars()
    await rescore_deals(session, principal, list(deals))


# --- manual adjustment and read models ------------------------------------------------------

async def adjust_score(session: AsyncSession, principal: Principal, deal_id: uuid.UUID,
                       data: ScoreAdjustmentIn, *, expected_version: int | None = None) -> Deal:
    """The head overrules the automatic class by one step; recorded with who and when."""
    principal.require_write()
    if principal.kind == "user" and principal.role == Role.agent:
        raise ForbiddenError("only managers, admins and owners may adjust a deal's score")
    deal = await records.get_visible(session, Deal, principal, deal_id, for_update=True)
    records.check_version(deal, expected_version)
    before = records.snapshot(deal)
    deal.score_adjustment = data.adjustment
    deal.score_adjusted_by = principal.actor
    deal.score_adjusted_at = clock.now()
    config = _config_of(session, await _workspace(session, principal.workspace_id))
    stage, contact, company = await _inputs(session, config, deal)
    _apply(deal, compute(config, deal, stage, contact, company,
                         note=(data.note or None) if data.adjustment else None))
    records.touch(deal, principal)
    await record_event(session, principal, type="deal.updated", entity_type="deal",
                       entity_id=deal.id, before=before, after=records.snapshot(deal))
    return deal
