"""Rules: create, read, list, update, delete, dry-run; and their runs.

A rule is checked twice when saved: its shape by `rules.RuleSpec` (pydantic, 422 with the
exact location) and its references here — stages, users, teams and templates must exist in
the workspace, task types must be the workspace's, title templates must parse and field
updates must pass the same checks a PATCH would. Rules are read by every member and written
by owners and admins (as pipelines are)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations import engine
from app.domain.automations.actions import RECORD_MODELS, UPDATE_SCHEMAS
from app.domain.automations.context import RECORD_TYPES, event_view, load_context
from app.domain.automations.models import Rule, RuleRun
from app.domain.automations.rules import RuleSpec
from app.domain.automations.runner import engine_settings, spec_of
from app.domain.automations.schemas import (
    DryRunRequest,
    DryRunResult,
    RuleCreate,
    RuleRead,
    RuleRunRead,
    RuleUpdate,
)
from app.domain.outbox.models import Event
from app.domain.outbox.service import record_event
from app.domain.pipelines.models import Stage
from app.domain.shared import records
from app.domain.shared.clock import clock
from app.domain.shared.errors import ConflictError, NotFoundError, ValidationError
from app.domain.shared.listing import FilterField, ListSpec, Page, paginate
from app.domain.shared.principal import Principal, rule_principal
from app.domain.templates.models import Template
from app.domain.templates.sandbox import check_syntax
from app.domain.webhooks.service import check_url as check_webhook_url
from app.domain.workspaces.context import current_workspace
from app.domain.workspaces.models import Team, User, workspace_setting

ENTITY = "rule"
# A published limit: every enabled rule is evaluated for every event it listens to.
MAX_ENABLED_RULES = 100

LIST_SPEC = ListSpec(
    id_column=Rule.id,
    fields={
        "id": FilterField(Rule.id, "uuid"),
        "name": FilterField(Rule.name, "str"),
        "enabled": FilterField(Rule.enabled, "bool"),
        "trigger_type": FilterField(Rule.trigger_type, "str"),
        "created_at": FilterField(Rule.created_at, "datetime", sortable=True),
        "updated_at": FilterField(Rule.updated_at, "datetime", sortable=True),
    },
)

RUNS_SPEC = ListSpec(
    id_column=RuleRun.id,
    default_sort="-id",
    fields={
        "id": FilterField(RuleRun.id, "uuid", sortable=True),
        "status": FilterField(RuleRun.status, "str"),
        "event_id": FilterField(RuleRun.event_id, "uuid"),
        "event_type": FilterField(RuleRun.event_type, "str"),
        "entity_id": FilterField(RuleRun.entity_id, "uuid"),
        "created_at": FilterField(RuleRun.created_at, "datetime"),
    },
)


def to_read(rule: Rule) -> RuleRead:
    return RuleRead.model_validate(rule, from_attributes=True)


def run_read(run: RuleRun) -> RuleRunRead:
    return RuleRunRead.model_validate(run, from_attributes=True)


# Checking references

class _Refs:
    """Collects every reference of a rule, then checks them in one query per kind."""

    def __init__(self) -> None:
        self.stages: list[tuple[list[str | int], uuid.UUID]] = []
        self.users: list[tuple[list[str | int], uuid.UUID]] = []
        self.teams: list[tuple[list[str | int], uuid.UUID]] = []
        self.templates: list[tuple[list[str | int], uuid.UUID, str]] = []
        self.urls: list[tuple[list[str | int], str]] = []


def _walk_who(who: Any, loc: list[str | int], refs: _Refs) -> None:
    if who.strategy == "user":
        refs.users.append(([*loc, "user_id"], who.user_id))
    elif who.strategy in ("round_robin", "team_head") and who.team_id:
        refs.teams.append(([*loc, "team_id"], who.team_id))


def _walk_actions(actions: list[Any], loc: list[str | int], refs: _Refs,
                  task_types: list[str]) -> None:
    for i, action in enumerate(actions):
        here = [*loc, i]
        kind = action.type
        if kind == "create_task":
            check_syntax(action.title, [*here, "title"])
            if action.description:
                check_syntax(action.description, [*here, "description"])
            if action.task_type not in task_types:
                raise ValidationError.at([*here, "task_type"], (
                    f"{action.task_type!r} is not one of the workspace's task types "
                    f"({', '.join(task_types)})"))
            _walk_who(action.assignee, [*here, "assignee"], refs)
        elif kind == "assign_owner":
            _walk_who(action.assignee, [*here, "assignee"], refs)
        elif kind == "notify":
            check_syntax(action.title, [*here, "title"])
            if action.body:
                check_syntax(action.body, [*here, "body"])
            _walk_who(action.to, [*here, "to"], refs)
        elif kind == "move_deal":
            refs.stages.append(([*here, "stage_id"], action.stage_id))
        elif kind == "update_fields":
            schema = UPDATE_SCHEMAS.get(action.object) if action.object else None
            if schema is not None:
                try:
                    schema.model_validate(action.set)
                except PydanticValidationError as exc:
                    first = exc.errors()[0]
                    raise ValidationError.at([*here, "set", *first["loc"]], first["msg"]) \
                        from exc
        elif kind in ("send_email", "send_sms"):
            if action.template_id is None and not action.body:
                raise ValidationError.at([*here, "body"], "give a template_id or a body")
            if action.template_id is not None:
                refs.templates.append(([*here, "template_id"], action.template_id,
                                       "email" if kind == "send_email" else "sms"))
            for part in ("subject", "body"):
                if getattr(action, part):
                    check_syntax(getattr(action, part), [*here, part])
            if not isinstance(action.to, str):
                _walk_who(action.to, [*here, "to"], refs)
        elif kind == "call_webhook":
            refs.urls.append(([*here, "url"], action.url))
        elif kind == "generate_document":
            refs.templates.append(([*here, "template_id"], action.template_id, "document"))
        elif kind == "cadence":
            _walk_actions(action.on_exhausted, [*here, "on_exhausted"], refs, task_types)


async def _missing(session: AsyncSession, model: Any, ids: list[uuid.UUID],
                   *conditions: Any) -> set[uuid.UUID]:
    if not ids:
        return set()
    found = set((await session.execute(select(model.id).where(
        model.id.in_(ids), *conditions))).scalars())
    return set(ids) - found


async def check_references(session: AsyncSession, principal: Principal, spec: RuleSpec) -> None:
    workspace = await current_workspace(session, principal)
    refs = _Refs()
    trigger = spec.trigger
    if getattr(trigger, "stage_id", None):
        refs.stages.append((["body", "trigger", "stage_id"], trigger.stage_id))
    if trigger.type == "task_completed" and trigger.outcome:
        outcomes = workspace_setting(workspace, "task_outcomes")
        if trigger.outcome not in outcomes:
            raise ValidationError.at(["body", "trigger", "outcome"], (
                f"{trigger.outcome!r} is not one of the workspace's task outcomes"))
    _walk_actions(spec.actions, ["body", "actions"], refs,
                  workspace_setting(workspace, "task_types"))
    for loc, url in refs.urls:  # the SSRF rules, as for webhook subscriptions
        await check_webhook_url(url, loc)
    checks = [
        (refs.stages, Stage, "stage", (Stage.deleted_at.is_(None),)),
        (refs.users, User, "user", (User.is_active.is_(True),)),
        (refs.teams, Team, "team", ()),
    ]
    for items, model, name, conditions in checks:
        missing = await _missing(session, model, [i for _, i in items], *conditions)
        for loc, item in items:
            if item in missing:
                raise ValidationError.at(loc, f"no such {name} in this workspace")
    if refs.templates:
        rows = dict((await session.execute(select(Template.id, Template.kind).where(
            Template.id.in_([t for _, t, _ in refs.templates]),
            Template.deleted_at.is_(None)))).all())
        for loc, template_id, kind in refs.templates:
            if template_id not in rows:
                raise ValidationError.at(loc, "no such template in this workspace")
            if rows[template_id] != kind:
                raise ValidationError.at(loc, f"the template is a {rows[template_id]} "
                                              f"template, not a {kind} one")


# Writes

async def _check_room(session: AsyncSession, *, excluding: uuid.UUID | None = None) -> None:
    query = select(func.count()).where(Rule.enabled.is_(True), Rule.deleted_at.is_(None))
    if excluding is not None:
        query = query.where(Rule.id != excluding)
    if (await session.execute(query)).scalar_one() >= MAX_ENABLED_RULES:
        raise ConflictError(f"a workspace has at most {MAX_ENABLED_RULES} enabled rules: "
                            "disable or delete one first")


def _store(rule: Rule, spec: RuleSpec) -> None:
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    rule.trigger_type = spec.trigger.type
    rule.trigger, rule.actions = dumped["trigger"], dumped["actions"]
    rule.conditions = dumped.get("conditions")


async def create_rule(session: AsyncSession, principal: Principal, data: RuleCreate) -> Rule:
    principal.require_admin()
    spec = RuleSpec(trigger=data.trigger, conditions=data.conditions, actions=data.actions)
    await check_references(session, principal, spec)
    if data.enabled:
        await _check_room(session)
    rule = Rule(workspace_id=principal.workspace_id, name=data.name,
                description=data.description, enabled=data.enabled, trigger_type="",
                created_by=principal.actor, updated_by=principal.actor)
    _store(rule, spec)
    session.add(rule)
    await session.flush()
    await record_event(session, principal, type="rule.created", entity_type=ENTITY,
                       entity_id=rule.id, after=records.snapshot(rule))
    return rule


async def get_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID, *,
                   include_deleted: bool = False, for_update: bool = False) -> Rule:
    return await records.get_visible(session, Rule, principal, rule_id,
                                     include_deleted=include_deleted, for_update=for_update)


async def update_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID,
                      data: RuleUpdate, *, expected_version: int | None = None) -> Rule:
    principal.require_admin()
    rule = await get_rule(session, principal, rule_id, for_update=True)
    records.check_version(rule, expected_version)
    given = data.model_dump(exclude_unset=True)
    for key in ("name", "enabled", "trigger", "actions"):
        if key in given and given[key] is None:
            raise ValidationError.at(["body", key], "cannot be null")
    before = records.snapshot(rule)
    current = spec_of(rule)
    spec = RuleSpec(trigger=data.trigger if "trigger" in given else current.trigger,
                    conditions=data.conditions if "conditions" in given else current.conditions,
                    actions=data.actions if "actions" in given else current.actions)
    await check_references(session, principal, spec)
    if given.get("enabled") and not rule.enabled:
        await _check_room(session, excluding=rule.id)
    _store(rule, spec)
    for key in ("name", "description", "enabled"):
        if key in given:
            setattr(rule, key, given[key])
    if records.snapshot(rule) == before:
        return rule
    records.touch(rule, principal)
    await session.flush()
    await record_event(session, principal, type="rule.updated", entity_type=ENTITY,
                       entity_id=rule.id, before=before, after=records.snapshot(rule))
    return rule


async def delete_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID, *,
                      expected_version: int | None = None) -> None:
    principal.require_admin()
    rule = await get_rule(session, principal, rule_id, for_update=True)
    records.check_version(rule, expected_version)
    await records.soft_delete(session, rule, principal, ENTITY)


async def restore_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID) -> Rule:
    principal.require_admin()
    rule = await get_rule(session, principal, rule_id, include_deleted=True, for_update=True)
    if rule.deleted_at is not None and rule.enabled:
        await _check_room(session, excluding=rule.id)
    await records.restore(session, rule, principal, ENTITY)
    return rule


# Reads

async def list_rules(session: AsyncSession, principal: Principal, *, conditions: list[Any],
                     page: Page, include_deleted: bool = False) -> tuple[list[Rule], str | None]:
    query = select(Rule).where(*conditions)
    if not include_deleted:
        query = query.where(Rule.deleted_at.is_(None))
    query, cut = paginate(LIST_SPEC, query, page)
    return cut(list((await session.execute(query)).scalars()))


async def list_runs(session: AsyncSession, principal: Principal, rule_id: uuid.UUID, *,
                    conditions: list[Any], page: Page) -> tuple[list[RuleRun], str | None]:
    await get_rule(session, principal, rule_id, include_deleted=True)
    query, cut = paginate(RUNS_SPEC, select(RuleRun).where(RuleRun.rule_id == rule_id,
                                                           *conditions), page)
    return cut(list((await session.execute(query)).scalars()))


async def _event_rules(session: AsyncSession) -> list[tuple[Rule, set[str]]]:
    """The enabled event rules, each with the event types its trigger listens to."""
    rules = (await session.execute(select(Rule).where(
        Rule.enabled.is_(True), Rule.deleted_at.is_(None),
        Rule.trigger_type != "date_reached").order_by(Rule.created_at, Rule.id))).scalars()
    return [(r, engine.trigger_event_types(spec_of(r).trigger)) for r in rules]


async def rules_for_event(session: AsyncSession, event_type: str) -> list[Rule]:
    """The enabled rules whose trigger listens to this type of event."""
    return [rule for rule, types in await _event_rules(session) if event_type in types]


async def listened_event_types(session: AsyncSession) -> set[str]:
    """Every event type some enabled rule listens to."""
    return set().union(*(types for _, types in await _event_rules(session)))


# Dry-run

async def dry_run(session: AsyncSession, principal: Principal, rule_id: uuid.UUID,
                  data: DryRunRequest) -> DryRunResult:
    """What the rule would do for a past event or a record, with nothing written."""
    principal.require_admin()
    rule = await get_rule(session, principal, rule_id)
    if data.rule is not None:
        spec = RuleSpec(trigger=data.rule.trigger, conditions=data.rule.conditions,
                        actions=data.rule.actions)
        await check_references(session, principal, spec)
    else:
        spec = spec_of(rule)
    view: dict[str, Any] | None = None
    if data.event_id is not None:
        event = (await session.execute(select(Event).where(
            Event.id == data.event_id))).scalar_one_or_none()
        if event is None:
            raise NotFoundError(f"event {data.event_id} not found")
        if event.entity_type not in RECORD_TYPES:
            raise ValidationError.at(["body", "event_id"],
                                     f"a {event.entity_type} event has no record to act on")
        view = event_view(event)
        entity_type, entity_id = event.entity_type, event.entity_id
    else:
        assert data.entity_type is not None and data.entity_id is not None
        entity_type, entity_id = data.entity_type, data.entity_id
        await records.get_visible(session, RECORD_MODELS[entity_type], principal, entity_id)
    reader = rule_principal(principal.workspace_id, rule.id, run_id=uuid.UUID(int=0), depth=1)
    ctx = await load_context(session, reader, entity_type=entity_type, entity_id=entity_id,
                             event=view)
    now = clock.now()
    evaluation = engine.evaluate(spec, view, ctx, now, await engine_settings(session, reader))
    return DryRunResult(matched=evaluation.matched, explanation=evaluation.explanation(),
                        actions=[p.as_dict() for p in evaluation.plan] if evaluation.matched
                        else [], resume_at=evaluation.resume_at, context=ctx)
