"""Running rules: one rule against one trigger, inside the caller's transaction.

A run is claimed by inserting its row under the unique (rule, trigger_key) index, in the
same transaction as the actions' effects: if the transaction commits, the run and all its
effects exist exactly once; if it rolls back (a crash, a killed worker), neither does, and
the event is handled again. A failure is recorded afterwards (`record_failure`): transient
errors are retried with backoff, a refusal by the domain (an archived stage, a deleted
template) fails at once, and after the last retry the run stays visibly `failed`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations import engine
from app.domain.automations.actions import Runner
from app.domain.automations.context import load_context
from app.domain.automations.models import Rule, RuleRun
from app.domain.automations.rules import Action, RuleSpec
from app.domain.outbox.service import record_event
from app.domain.shared.errors import DomainError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal, rule_principal
from app.domain.workspaces.context import current_workspace

# A chain of automation-caused events stops here (rule A's task triggers rule B, …): at a
# depth, and after a number of runs however wide it fans out (ten rules each making a task
# that triggers the ten again would otherwise make 10^5 runs before the depth bound).
MAX_DEPTH = 5
CHAIN_BUDGET = 100
RETRY_DELAYS = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5),
                timedelta(minutes=30), timedelta(hours=2))
ACTIONS = TypeAdapter(list[Action])


@dataclass(frozen=True)
class TriggerRef:
    """What a rule runs against: an event, or a date rule coming due for a record."""
    key: str
    entity_type: str
    entity_id: uuid.UUID
    event: dict[str, Any] | None
    depth: int = 0
    cause_run_id: uuid.UUID | None = None

    @classmethod
    def of_event(cls, view: dict[str, Any], cause_run_id: uuid.UUID | None) -> TriggerRef:
        return cls(key=view["id"], entity_type=view["entity_type"],
                   entity_id=uuid.UUID(view["entity_id"]), event=view,
                   depth=int(view.get("depth") or 0), cause_run_id=cause_run_id)


def spec_of(rule: Rule) -> RuleSpec:
    return RuleSpec.model_validate({"trigger": rule.trigger, "conditions": rule.conditions,
                                    "actions": rule.actions})


async def engine_settings(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    workspace = await current_workspace(session, principal)
    return {"business_hours": workspace.settings.get("business_hours")}


async def chain_of(session: AsyncSession, trigger: TriggerRef) -> str:
    """The key of the trigger that started this chain: this trigger's own, or the chain of
    the run that caused it."""
    if trigger.cause_run_id is None:
        return trigger.key
    cause = (await session.execute(select(RuleRun.chain_key).where(
        RuleRun.id == trigger.cause_run_id))).scalar_one_or_none()
    return cause or trigger.key


async def _over_budget(session: AsyncSession, chain_key: str) -> bool:
    runs = (await session.execute(select(func.count()).select_from(
        select(RuleRun.id).where(RuleRun.chain_key == chain_key).limit(CHAIN_BUDGET + 1)
        .subquery()))).scalar_one()
    return int(runs) > CHAIN_BUDGET


async def _claim(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                 now: datetime) -> RuleRun | None:
    """This transaction's run of the rule for the trigger, or None when another has it
    (done, or in progress). A run waiting for its retry is taken over."""
    run_id = new_id()
    # The new run comes back as the ORM object (INSERT … RETURNING): no second read.
    inserted = (await session.execute(
        insert(RuleRun).values(
            workspace_id=rule.workspace_id, id=run_id, rule_id=rule.id,
            trigger_key=trigger.key, event_id=uuid.UUID(trigger.key) if trigger.event else None,
            event_type=trigger.event["type"] if trigger.event else None,
            entity_type=trigger.entity_type, entity_id=trigger.entity_id, status="running",
            explanation=[], actions=[], attempts=0, depth=trigger.depth,
            cause_run_id=trigger.cause_run_id, chain_key=await chain_of(session, trigger),
            created_at=now)
        .on_conflict_do_nothing(index_elements=["workspace_id", "rule_id", "trigger_key"])
        .returning(RuleRun))).scalar_one_or_none()
    if inserted is not None:
        return inserted
    run = (await session.execute(
        select(RuleRun).where(RuleRun.rule_id == rule.id, RuleRun.trigger_key == trigger.key)
        .with_for_update(skip_locked=True))).scalar_one_or_none()
    if run is None or run.status != "retrying":
        return None
    return run


async def run_rule(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                   now: datetime) -> RuleRun | None:
    """Run the rule for the trigger if it applies; None when the trigger does not concern
    the rule or the run was already made."""
    spec = spec_of(rule)
    reader = rule_principal(rule.workspace_id, rule.id, run_id=uuid.UUID(int=0),
                            depth=trigger.depth + 1)
    ctx = await load_context(session, reader, entity_type=trigger.entity_type,
                             entity_id=trigger.entity_id, event=trigger.event)
    if trigger.event is not None and \
            not engine.trigger_check(spec.trigger, trigger.event, ctx).matched:
        return None
    run = await _claim(session, rule, trigger, now)
    if run is None:
        return None
    run.attempts += 1
    run.finished_at, run.error, run.next_attempt_at = now, None, None
    if trigger.depth >= MAX_DEPTH:
        run.status = "loop_stopped"
        run.explanation = [{"path": "depth", "matched": False, "reason": (
            f"the event is {trigger.depth} automation steps deep; chains stop at {MAX_DEPTH}")}]
        return run
    if trigger.depth > 0 and await _over_budget(session, run.chain_key):
        run.status = "loop_stopped"
        run.explanation = [{"path": "chain", "matched": False, "reason": (
            f"this chain of automations has already made {CHAIN_BUDGET} runs")}]
        return run
    principal = rule_principal(rule.workspace_id, rule.id, run_id=run.id,
                               depth=trigger.depth + 1)
    evaluation = engine.evaluate(spec, trigger.event, ctx, now,
                                 await engine_settings(session, principal))
    run.explanation = evaluation.explanation()
    if not evaluation.matched:
        run.status = "not_matched"
        return run
    runner = Runner(session, principal, run_id=run.id, rule_id=rule.id,
                    entity_type=trigger.entity_type, entity_id=trigger.entity_id, ctx=ctx)
    run.actions = await runner.execute(evaluation)
    run.status = "waiting" if evaluation.resume_at else "succeeded"
    await session.flush()
    return run


async def continue_run(session: AsyncSession, rule: Rule, run: RuleRun,
                       payload: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The actions after a `wait`, against the record as it is now."""
    principal = rule_principal(rule.workspace_id, rule.id, run_id=run.id, depth=run.depth + 1)
    entity_id = uuid.UUID(payload["entity_id"])
    ctx = await load_context(session, principal, entity_type=payload["entity_type"],
                             entity_id=entity_id, event=payload.get("event"))
    if payload.get("recheck"):
        still, checks = engine.check_conditions(spec_of(rule).conditions, ctx)
        if not still:
            run.actions = [*run.actions, {"type": "wait", "result": {
                "skipped": "the conditions no longer hold",
                "explanation": [c.as_dict() for c in checks]}}]
            run.status, run.finished_at = "succeeded", now
            return []
    evaluation = engine.plan_actions(ACTIONS.validate_python(payload["actions"]), ctx, now,
                                     await engine_settings(session, principal))
    runner = Runner(session, principal, run_id=run.id, rule_id=rule.id,
                    entity_type=payload["entity_type"], entity_id=entity_id, ctx=ctx)
    results = await runner.execute(evaluation)
    run.actions = [*run.actions, *results]
    run.status = "waiting" if evaluation.resume_at else "succeeded"
    run.finished_at = now
    return results


def describe_error(error: BaseException) -> str:
    if isinstance(error, DomainError):
        locs = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}"
                         for e in error.errors)
        return f"{error.detail}" + (f" ({locs})" if locs else "")
    return f"{type(error).__name__}: {error}"[:2000]


async def record_failure(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                         error: BaseException, now: datetime) -> RuleRun:
    """Keep a failed run visible; schedule a retry unless the failure is permanent."""
    run = (await session.execute(select(RuleRun).where(
        RuleRun.rule_id == rule.id, RuleRun.trigger_key == trigger.key)
        .with_for_update())).scalar_one_or_none()
    if run is None:
        run = RuleRun(workspace_id=rule.workspace_id, rule_id=rule.id, trigger_key=trigger.key,
                      event_id=uuid.UUID(trigger.key) if trigger.event else None,
                      event_type=trigger.event["type"] if trigger.event else None,
                      entity_type=trigger.entity_type, entity_id=trigger.entity_id,
                      status="retrying", depth=trigger.depth, cause_run_id=trigger.cause_run_id,
                      chain_key=await chain_of(session, trigger), created_at=now)
        session.add(run)
    run.attempts += 1
    run.error = describe_error(error)
    run.finished_at = now
    permanent = isinstance(error, DomainError)
    if permanent or run.attempts > len(RETRY_DELAYS):
        run.status, run.next_attempt_at = "failed", None
        principal = rule_principal(rule.workspace_id, rule.id, run_id=run.id,
                                   depth=trigger.depth + 1)
        await session.flush()
        await record_event(session, principal, type="rule.run_failed", entity_type="rule",
                           entity_id=rule.id, after={"run_id": str(run.id),
                                                     "error": run.error,
                                                     "attempts": run.attempts})
    else:
        run.status = "retrying"
        run.next_attempt_at = now + RETRY_DELAYS[run.attempts - 1]
    await session.flush()
    return run
