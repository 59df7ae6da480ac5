"""Running rules: one rule against one trigger, inside the caller's transaction.

A run is claimed by inserting its row under the unique (rule, trigger_key) index, in the
same transaction as the actions' effects: if the transaction commits, the run and all its
effects exist exactly once; if it rolls back (a crash, a killed worker), neither does, and
the event is handled again. A failure is recorded afterwards (`record_failure`): transient
errors are retried with backoff, a refusal by the domain (an archived stage, a deleted
template) fails at once, and after the last retry the run stays visibly `failed`."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, func, select, update
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


# Parsed specs per process, by rule id: parsing a rule (pydantic) cost more than the rest of
# a no-op run. An entry is used only while the rule's stored JSON still equals the one it was
# parsed from (a dict comparison), so an edited rule, here or in another process, is parsed
# again at once: there is nothing to invalidate and nothing can be stale.
_SPECS: dict[uuid.UUID, tuple[Any, Any, Any, RuleSpec]] = {}
SPEC_CACHE_SIZE = 4096


def spec_of(rule: Rule) -> RuleSpec:
    cached = _SPECS.get(rule.id)
    if cached is not None and cached[0] == rule.trigger and cached[1] == rule.conditions \
            and cached[2] == rule.actions:
        return cached[3]
    spec = RuleSpec.model_validate({"trigger": rule.trigger, "conditions": rule.conditions,
                                    "actions": rule.actions})
    if len(_SPECS) >= SPEC_CACHE_SIZE:
        _SPECS.clear()
    # Copies: the rule object may be changed in place later (update_rule).
    _SPECS[rule.id] = (copy.deepcopy(rule.trigger), copy.deepcopy(rule.conditions),
                       copy.deepcopy(rule.actions), spec)
    return spec


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


@dataclass
class NewRun:
    """A run this transaction inserted with Core statements (what `run_rule` returns for it;
    building a SQLModel object cost as much as writing the row)."""
    workspace_id: uuid.UUID
    id: uuid.UUID
    chain_key: str
    status: str
    explanation: list[Any]
    actions: list[Any]
    attempts: int
    finished_at: datetime


def _new_run(values: dict[str, Any]) -> NewRun:
    return NewRun(workspace_id=values["workspace_id"], id=values["id"],
                  chain_key=values["chain_key"], status=values["status"],
                  explanation=values["explanation"], actions=values["actions"],
                  attempts=values["attempts"], finished_at=values["finished_at"])


RUNS = RuleRun.__table__  # type: ignore[attr-defined]
# Core statements for the run row (the ORM's INSERT … RETURNING an entity and its flush were
# a third of a no-op run's CPU). Compiled once; the values come as parameters.
_INSERT_RUN = insert(RUNS).on_conflict_do_nothing(
    index_elements=["workspace_id", "rule_id", "trigger_key"]).returning(RUNS.c.id)
_FINISH_RUN = update(RUNS).where(
    RUNS.c.workspace_id == bindparam("b_workspace_id"), RUNS.c.id == bindparam("b_id")
).values(status=bindparam("status"), explanation=bindparam("explanation"),
         actions=bindparam("actions"), attempts=bindparam("attempts"),
         finished_at=bindparam("finished_at"))


async def _run_values(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                      now: datetime) -> dict[str, Any]:
    return {"workspace_id": rule.workspace_id, "id": new_id(), "rule_id": rule.id,
            "trigger_key": trigger.key,
            "event_id": uuid.UUID(trigger.key) if trigger.event else None,
            "event_type": trigger.event["type"] if trigger.event else None,
            "entity_type": trigger.entity_type, "entity_id": trigger.entity_id,
            "status": "running", "explanation": [], "actions": [], "error": None,
            "attempts": 1, "next_attempt_at": None, "depth": trigger.depth,
            "cause_run_id": trigger.cause_run_id,
            "chain_key": await chain_of(session, trigger), "created_at": now,
            "finished_at": now}


async def _insert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the run row; False when the rule already has a run for the trigger."""
    return (await session.execute(_INSERT_RUN, values)).scalar_one_or_none() is not None


async def _take_over(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                     now: datetime) -> RuleRun | None:
    """The existing run of the rule for the trigger, when it waits for its retry (locked,
    for this transaction to redo); None when it is done or another transaction has it."""
    run = (await session.execute(
        select(RuleRun).where(RuleRun.rule_id == rule.id, RuleRun.trigger_key == trigger.key)
        .with_for_update(skip_locked=True))).scalar_one_or_none()
    if run is None or run.status != "retrying":
        return None
    run.attempts += 1
    run.finished_at, run.error, run.next_attempt_at = now, None, None
    return run


async def run_rule(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                   now: datetime) -> RuleRun | NewRun | None:
    """Run the rule for the trigger if it applies; None when the trigger does not concern
    the rule or the run was already made.

    A new run is a row inserted (`status` running) before any action, under the unique
    (rule, trigger) index, and finished with one UPDATE; a run whose outcome needs no action
    (`not_matched`) is inserted finished. A run waiting for its retry is taken over."""
    spec = spec_of(rule)
    reader = rule_principal(rule.workspace_id, rule.id, run_id=uuid.UUID(int=0),
                            depth=trigger.depth + 1)
    ctx = await load_context(session, reader, entity_type=trigger.entity_type,
                             entity_id=trigger.entity_id, event=trigger.event)
    if trigger.event is not None and \
            not engine.trigger_check(spec.trigger, trigger.event, ctx).matched:
        return None
    values = await _run_values(session, rule, trigger, now)
    evaluation: engine.Evaluation | None = None
    if trigger.depth == 0:  # no loop checks to make first: evaluate before claiming
        try:
            evaluation = engine.evaluate(spec, trigger.event, ctx, now,
                                         await engine_settings(session, reader))
        except Exception:  # noqa: BLE001 - claimed first and raised again below
            evaluation = None
        if evaluation is not None and not evaluation.matched:
            values["status"], values["explanation"] = "not_matched", evaluation.explanation()
            if await _insert(session, values):
                return _new_run(values)
            run = await _take_over(session, rule, trigger, now)
            if run is None:
                return None
            run.status, run.explanation = "not_matched", values["explanation"]
            await session.flush()
            return run
    new = await _insert(session, values)
    run: RuleRun | NewRun | None = _new_run(values) if new else \
        await _take_over(session, rule, trigger, now)
    if run is None:
        return None
    if trigger.depth >= MAX_DEPTH:
        run.status = "loop_stopped"
        run.explanation = [{"path": "depth", "matched": False, "reason": (
            f"the event is {trigger.depth} automation steps deep; chains stop at {MAX_DEPTH}")}]
    elif trigger.depth > 0 and await _over_budget(session, run.chain_key):
        run.status = "loop_stopped"
        run.explanation = [{"path": "chain", "matched": False, "reason": (
            f"this chain of automations has already made {CHAIN_BUDGET} runs")}]
    else:
        principal = rule_principal(rule.workspace_id, rule.id, run_id=run.id,
                                   depth=trigger.depth + 1)
        if evaluation is None:
            evaluation = engine.evaluate(spec, trigger.event, ctx, now,
                                         await engine_settings(session, principal))
        run.explanation = evaluation.explanation()
        if not evaluation.matched:
            run.status = "not_matched"
        else:
            runner = Runner(session, principal, run_id=run.id, rule_id=rule.id,
                            entity_type=trigger.entity_type, entity_id=trigger.entity_id,
                            ctx=ctx)
            run.actions = await runner.execute(evaluation)
            run.status = "waiting" if evaluation.resume_at else "succeeded"
    if new:
        await session.execute(_FINISH_RUN, {
            "b_workspace_id": run.workspace_id, "b_id": run.id, "status": run.status,
            "explanation": run.explanation, "actions": run.actions,
            "attempts": run.attempts, "finished_at": run.finished_at})
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
