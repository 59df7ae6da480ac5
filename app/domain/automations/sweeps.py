"""Automation work that comes due with time, swept from PostgreSQL (nothing lives only in
Redis): date rules (birthdays, a next-service date), retries of failed runs, and the actions
a `wait` put off. Each function handles one workspace in the caller's transaction; every
rule run happens in its own savepoint, so one failure does not undo the others."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations.context import event_view
from app.domain.automations.models import Rule, RuleRun, ScheduledAction
from app.domain.automations.rules import DateReached
from app.domain.automations.runner import (
    RETRY_DELAYS,
    NewRun,
    TriggerRef,
    continue_run,
    describe_error,
    record_failure,
    run_rule,
    spec_of,
)
from app.domain.contacts.models import Contact
from app.domain.outbox.models import Event
from app.domain.shared.errors import DomainError
from app.domain.workspaces.models import Workspace

BATCH = 200


async def run_in_savepoint(session: AsyncSession, rule: Rule, trigger: TriggerRef,
                           now: datetime) -> RuleRun | NewRun | None:
    """One rule for one trigger; a failure rolls back only this run and is recorded."""
    try:
        async with session.begin_nested():
            return await run_rule(session, rule, trigger, now)
    except Exception as exc:  # noqa: BLE001 - every failure is kept on the run
        return await record_failure(session, rule, trigger, exc, now)


def _date_column(trigger: DateReached) -> Any:
    if trigger.field == "birthday":
        return Contact.birthday
    key = trigger.field.removeprefix("custom_fields.")
    raw = Contact.custom_fields[key].astext
    # A value that is not an ISO date never matches (and never breaks the query).
    return func.to_date(func.substring(raw, text("'^\\d{4}-\\d{2}-\\d{2}'")), "YYYY-MM-DD")


async def fire_date_rules(session: AsyncSession, workspace_id: uuid.UUID, now: datetime) -> int:
    """Run each date rule for the contacts whose date, shifted by the rule's offset, is
    today in their time zone, once `at` o'clock has passed there. Once per contact and
    day: the run's trigger key is `date:<contact>:<local day>`."""
    rules = list((await session.execute(select(Rule).where(
        Rule.enabled.is_(True), Rule.deleted_at.is_(None),
        Rule.trigger_type == "date_reached"))).scalars())
    if not rules:
        return 0
    workspace_tz = (await session.execute(select(Workspace.timezone).where(
        Workspace.id == workspace_id))).scalar_one()
    fired = 0
    for rule in rules:
        trigger = spec_of(rule).trigger
        assert isinstance(trigger, DateReached)
        local_now = func.timezone(func.coalesce(Contact.timezone, workspace_tz), literal(now))
        local_day = cast(local_now, Date)
        target = local_day - trigger.offset_days
        column = _date_column(trigger)
        if trigger.yearly:
            match = func.to_char(column, "MM-DD") == func.to_char(target, "MM-DD")
        else:
            match = column == target
        already = select(RuleRun.id).where(
            RuleRun.rule_id == rule.id,
            RuleRun.trigger_key == func.concat("date:", Contact.id, ":", local_day)).exists()
        rows = (await session.execute(
            select(Contact.id, local_day).where(
                Contact.deleted_at.is_(None), column.is_not(None), match,
                func.to_char(local_now, "HH24:MI") >= trigger.at, ~already)
            .order_by(Contact.id).limit(BATCH))).all()
        for contact_id, day in rows:
            ref = TriggerRef(key=f"date:{contact_id}:{day}", entity_type="contact",
                             entity_id=contact_id, event=None)
            if await run_in_savepoint(session, rule, ref, now) is not None:
                fired += 1
    return fired


async def retry_due_runs(session: AsyncSession, workspace_id: uuid.UUID, now: datetime) -> int:
    """Runs that failed for a transient reason, once their backoff has passed."""
    runs = list((await session.execute(select(RuleRun).where(
        RuleRun.status == "retrying", RuleRun.next_attempt_at <= now)
        .order_by(RuleRun.next_attempt_at).limit(BATCH)
        .with_for_update(skip_locked=True))).scalars())
    retried = 0
    for run in runs:
        rule = await session.get(Rule, (workspace_id, run.rule_id))
        if rule is None or rule.deleted_at is not None or not rule.enabled:
            run.status, run.error = "failed", (run.error or "") + "; the rule is off"
            continue
        if run.event_id is not None:
            event = (await session.execute(select(Event).where(
                Event.id == run.event_id))).scalar_one()
            ref = TriggerRef.of_event(event_view(event), event.cause_run_id)
        else:
            ref = TriggerRef(key=run.trigger_key, entity_type=run.entity_type,
                             entity_id=run.entity_id, event=None, depth=run.depth)
        if await run_in_savepoint(session, rule, ref, now) is None:
            # The rule was changed since: its trigger no longer concerns this event.
            run.status, run.next_attempt_at = "failed", None
            run.error = (run.error or "") + "; on retry the rule no longer applies"
        retried += 1
    return retried


async def continue_waiting_runs(session: AsyncSession, workspace_id: uuid.UUID,
                                now: datetime) -> int:
    """The actions after a `wait`, once its time has come."""
    due = list((await session.execute(select(ScheduledAction).where(
        ScheduledAction.kind == "continue", ScheduledAction.status == "pending",
        ScheduledAction.due_at <= now).order_by(ScheduledAction.due_at).limit(BATCH)
        .with_for_update(skip_locked=True))).scalars())
    for item in due:
        run = await session.get(RuleRun, (workspace_id, item.run_id))
        rule = await session.get(Rule, (workspace_id, item.rule_id))
        item.attempts += 1
        try:
            async with session.begin_nested():
                assert run is not None and rule is not None
                await continue_run(session, rule, run, item.payload, now)
            item.status, item.finished_at = "done", now
        except Exception as exc:  # noqa: BLE001 - kept on the item and its run
            item.last_error = describe_error(exc)
            if isinstance(exc, DomainError) or item.attempts > len(RETRY_DELAYS):
                item.status, item.finished_at = "failed", now
                if run is not None:
                    run.status, run.error = "failed", item.last_error
            else:
                item.due_at = now + RETRY_DELAYS[item.attempts - 1]
    return len(due)

