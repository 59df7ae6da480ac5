"""The rule engine: pure functions from (rule, trigger, context, now) to a plan.

No I/O and no clock of its own: the caller passes the event, a context of plain dicts (the
record and its related records, as `templates.variables.record_variables` builds them) and
`now`. That makes every rule testable table by table and lets `dry-run` explain a rule
without writing anything. Who exactly gets a round-robin task, or which users head a team,
needs the database: the plan names the strategy and `actions.py` resolves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.automations import rules as r
from app.domain.templates.sandbox import render_text

# The event types each trigger listens to (a cheap first filter before any context is read).
TRIGGER_EVENTS: dict[str, Any] = {
    "record_created": lambda t: {f"{t.object}.created"},
    "record_updated": lambda t: {f"{t.object}.updated"},
    "stage_entered": lambda t: {"deal.stage_changed", "deal.created"},
    "stage_left": lambda t: {"deal.stage_changed"},
    "task_completed": lambda t: {"task.completed"},
    "task_overdue": lambda t: {"task.overdue"},
    "reminder_due": lambda t: {"task.reminder_due"},
    "deal_rotting": lambda t: {"deal.rotting"},
    "event": lambda t: {t.event},
    "date_reached": lambda t: set(),
}

DEFAULT_BUSINESS_HOURS = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}


def trigger_event_types(trigger: Any) -> set[str]:
    return set(TRIGGER_EVENTS[trigger.type](trigger))


@dataclass
class Check:
    """One step of the explanation: what was compared and whether it held."""
    path: str
    matched: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "matched": self.matched, "reason": self.reason}


@dataclass
class PlannedAction:
    index: int
    type: str
    spec: dict[str, Any]
    params: dict[str, Any]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "params": self.params,
                "summary": self.summary}


@dataclass
class Evaluation:
    matched: bool
    checks: list[Check] = field(default_factory=list)
    plan: list[PlannedAction] = field(default_factory=list)
    # Actions after a `wait`: run at `resume_at`, with the context read again.
    resume_at: datetime | None = None
    remaining: list[dict[str, Any]] = field(default_factory=list)
    recheck: bool = False

    def explanation(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.checks]


# Triggers

def _get(ctx: dict[str, Any], *path: str) -> Any:
    value: Any = ctx
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def trigger_check(trigger: Any, event: dict[str, Any], ctx: dict[str, Any]) -> Check:
    """Whether the event is one the trigger means, with the reason."""
    etype = event.get("type", "")
    if etype not in trigger_event_types(trigger):
        return Check("trigger", False, f"{etype} is not a {trigger.type} event")
    after, before = event.get("after") or {}, event.get("before") or {}
    kind = trigger.type
    if kind == "record_updated" and trigger.fields:
        changed = set(event.get("changed") or [])
        hit = sorted(changed & set(trigger.fields))
        if not hit:
            return Check("trigger", False,
                         f"none of {', '.join(trigger.fields)} changed "
                         f"(changed: {', '.join(sorted(changed)) or 'nothing'})")
        return Check("trigger", True, f"{', '.join(hit)} changed")
    if kind in ("stage_entered", "stage_left"):
        side = after if kind == "stage_entered" else before
        stage_id = str(side.get("stage_id") or "")
        pipeline_id = str(side.get("pipeline_id") or after.get("pipeline_id") or "")
        if kind == "stage_left" and not stage_id:
            return Check("trigger", False, "the deal left no stage")
        if trigger.stage_id and stage_id != str(trigger.stage_id):
            return Check("trigger", False, f"the stage is {stage_id or 'unknown'}, "
                                           f"not {trigger.stage_id}")
        if trigger.pipeline_id and pipeline_id and pipeline_id != str(trigger.pipeline_id):
            return Check("trigger", False, f"the deal is in another pipeline ({pipeline_id})")
        name = side.get("stage_name") or _get(ctx, "deal", "stage", "name") or stage_id
        verb = "entered" if kind == "stage_entered" else "left"
        return Check("trigger", True, f"the deal {verb} stage {name}")
    if kind in ("task_completed", "task_overdue", "reminder_due"):
        task_type = _get(ctx, "task", "type")
        if trigger.task_type and task_type != trigger.task_type:
            return Check("trigger", False, f"the task is a {task_type}, not a {trigger.task_type}")
        if kind == "task_completed" and trigger.outcome:
            outcome = _get(ctx, "task", "outcome") or after.get("outcome")
            if outcome != trigger.outcome:
                return Check("trigger", False,
                             f"the outcome is {outcome}, not {trigger.outcome}")
        return Check("trigger", True, f"{etype}")
    if kind == "deal_rotting" and trigger.pipeline_id \
            and str(_get(ctx, "deal", "pipeline_id")) != str(trigger.pipeline_id):
        return Check("trigger", False, "the deal is in another pipeline")
    return Check("trigger", True, etype)


# Conditions

def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _norm(value: Any) -> Any:
    return str(value) if value is not None and not isinstance(value, (str, int, float, bool,
                                                                      list, dict)) else value


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "is_set":
        return actual not in (None, "", [], {})
    if op == "is_empty":
        return actual in (None, "", [], {})
    if op in ("in", "not_in"):
        options = expected if isinstance(expected, list) else [expected]
        inside = any(_equal(actual, o) for o in options)
        return inside if op == "in" else not inside
    if op in ("has", "not_has"):
        items = actual if isinstance(actual, list) else []
        present = any(_equal(i, expected) for i in items)
        return present if op == "has" else not present
    if op == "contains":
        if isinstance(actual, list):
            return any(_equal(i, expected) for i in actual)
        return isinstance(actual, str) and str(expected).casefold() in actual.casefold()
    if op == "starts_with":
        return isinstance(actual, str) and actual.casefold().startswith(str(expected).casefold())
    if op == "eq":
        return _equal(actual, expected)
    if op == "ne":
        return not _equal(actual, expected)
    if actual is None or expected is None:
        return False
    a, e = _number(actual), _number(expected)
    left, right = (a, e) if a is not None and e is not None else (str(actual), str(expected))
    return {"gt": left > right, "gte": left >= right, "lt": left < right,
            "lte": left <= right}[op]


def _equal(actual: Any, expected: Any) -> bool:
    a, e = _number(actual), _number(expected)
    if a is not None and e is not None and not isinstance(actual, bool):
        return a == e
    return _norm(actual) == _norm(expected)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return "nothing" if value is None else str(value)


def _field_check(cond: r.FieldCondition, ctx: dict[str, Any], path: str) -> Check:
    parts = cond.field.split(".")
    if cond.op == "changed":
        event = ctx.get("event") or {}
        entity = event.get("entity_type")
        changed = set(event.get("changed") or [])
        name = ".".join(parts[1:])
        hit = entity == parts[0] and name in changed
        return Check(path, hit, f"{cond.field} {'changed' if hit else 'did not change'}")
    actual = _get(ctx, *parts)
    ok = _compare(cond.op, actual, cond.value)
    expected = "" if cond.op in r.VALUELESS_OPS else f" {_show(cond.value)}"
    verb = "holds" if ok else "does not hold"
    return Check(path, ok, f"{cond.field} is {_show(actual)}: {cond.op}{expected} {verb}")


def check_conditions(cond: Any, ctx: dict[str, Any], path: str = "conditions"
                     ) -> tuple[bool, list[Check]]:
    """Evaluate a condition tree; every leaf is explained (no short-circuit, so the
    explanation shows each reason)."""
    if cond is None:
        return True, [Check(path, True, "no conditions")]
    if isinstance(cond, r.FieldCondition):
        check = _field_check(cond, ctx, path)
        return check.matched, [check]
    if isinstance(cond, r.NotOf):
        ok, checks = check_conditions(cond.not_, ctx, f"{path}.not")
        return not ok, [*checks, Check(path, not ok, "not: " + ("holds" if not ok else
                                                                "does not hold"))]
    items = cond.all if isinstance(cond, r.AllOf) else cond.any
    key = "all" if isinstance(cond, r.AllOf) else "any"
    results: list[bool] = []
    checks: list[Check] = []
    for i, item in enumerate(items):
        ok, sub = check_conditions(item, ctx, f"{path}.{key}.{i}")
        results.append(ok)
        checks.extend(sub)
    ok = all(results) if key == "all" else any(results)
    checks.append(Check(path, ok, f"{key}: {sum(results)} of {len(results)} hold"))
    return ok, checks


# Times

def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def within_business_hours(at: datetime, tz: str | None, hours: dict[str, Any] | None) -> datetime:
    """`at`, or the next opening when it falls outside the business hours in `tz`."""
    hours = hours or DEFAULT_BUSINESS_HOURS
    days = set(hours.get("days") or DEFAULT_BUSINESS_HOURS["days"])
    start, end = _hhmm(hours.get("start", "09:00")), _hhmm(hours.get("end", "18:00"))
    zone = _zone(tz)
    local = at.astimezone(zone)
    for _ in range(8):
        opening = datetime.combine(local.date(), start, zone)
        closing = datetime.combine(local.date(), end, zone)
        if local.weekday() in days:
            if local < opening:
                return opening.astimezone(at.tzinfo)
            if local < closing:
                return local.astimezone(at.tzinfo)
        local = datetime.combine(local.date() + timedelta(days=1), start, zone)
        if local.weekday() in days:
            return local.astimezone(at.tzinfo)
    return at


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = datetime.combine(date.fromisoformat(value), time(9, 0))
            except ValueError:
                return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))
    return None


def _signed_duration(text: str) -> timedelta:
    negative = text.startswith("-")
    span = r.parse_duration(text.lstrip("-"))
    return -span if negative else span


def due_time(due: r.DueIn | None, ctx: dict[str, Any], now: datetime,
             business_hours: dict[str, Any] | None) -> datetime | None:
    if due is None:
        return None
    at: datetime | None
    if due.field:
        at = _parse_time(_get(ctx, *due.field.split(".")))
        if at is None:
            return None
    else:
        at = now + r.parse_duration(due.in_ or "0m")
    if due.offset:
        at += _signed_duration(due.offset)
    if due.business_hours:
        tz = _get(ctx, "contact", "timezone") or _get(ctx, "workspace", "timezone")
        at = within_business_hours(at, tz, business_hours)
    return at


def date_trigger_day(trigger: r.DateReached, local_today: date) -> date:
    """The value the date field must hold for the trigger to fire on `local_today`."""
    return local_today - timedelta(days=trigger.offset_days)


# Plans

def _render(text: str | None, ctx: dict[str, Any], loc: str) -> str | None:
    return render_text(text, ctx, loc=[loc]) if text is not None else None


def _who(who: Any) -> str:
    match who.strategy:
        case "owner":
            return "the record's owner"
        case "user":
            return f"user {who.user_id}"
        case "role":
            return f"users with role {who.role}"
        case "round_robin":
            return f"the next member of team {who.team_id}"
        case _:
            return f"the head of team {who.team_id}" if who.team_id else \
                "the heads of the owner's teams"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def plan_action(index: int, action: Any, ctx: dict[str, Any], now: datetime,
                settings: dict[str, Any]) -> list[PlannedAction]:
    spec = action.model_dump(mode="json", by_alias=True)
    loc = f"actions.{index}"
    match action.type:
        case "create_task":
            title = _render(action.title, ctx, f"{loc}.title") or action.title
            due = due_time(action.due, ctx, now, settings.get("business_hours"))
            reminder = due - r.parse_duration(action.reminder_before) \
                if due and action.reminder_before else None
            params = {"title": title, "task_type": action.task_type,
                      "description": _render(action.description, ctx, f"{loc}.description"),
                      "due_at": _iso(due), "reminder_at": _iso(reminder),
                      "assignee": action.assignee.model_dump(mode="json")}
            when = f", due {due:%Y-%m-%d %H:%M} UTC" if due else ""
            summary = f"create a {action.task_type} task {title!r} for {_who(action.assignee)}{when}"
        case "assign_owner":
            params = {"object": action.object, "assignee": action.assignee.model_dump(mode="json")}
            summary = f"make {_who(action.assignee)} the owner of the {action.object or 'record'}"
        case "move_deal":
            params = {"stage_id": str(action.stage_id), "lost_reason": action.lost_reason}
            summary = f"move the deal to stage {action.stage_id}"
        case "update_fields":
            params = {"object": action.object, "set": action.set}
            summary = f"set {', '.join(sorted(action.set))} on the {action.object or 'record'}"
        case "notify":
            title = _render(action.title, ctx, f"{loc}.title") or action.title
            params = {"to": action.to.model_dump(mode="json"), "title": title,
                      "body": _render(action.body, ctx, f"{loc}.body")}
            summary = f"notify {_who(action.to)}: {title!r}"
        case "send_email" | "send_sms":
            channel = "email" if action.type == "send_email" else "sms"
            to = action.to if isinstance(action.to, str) else action.to.model_dump(mode="json")
            params = {"channel": channel, "to": to, "template_id":
                      str(action.template_id) if action.template_id else None,
                      "subject": action.subject, "body": action.body,
                      "attach_documents": action.attach_documents}
            whom = "the contact" if to == "contact" else f"user {action.to.user_id}"
            summary = f"send an {channel} to {whom}" if channel == "email" else \
                f"send an SMS to {whom}"
        case "generate_document":
            params = {"template_id": str(action.template_id)}
            summary = f"generate a document from template {action.template_id}"
        case "call_webhook":
            params = {"url": action.url}
            summary = f"POST the event to {action.url}"
        case "cadence":
            return _plan_cadence(index, action, ctx, now, settings, spec)
        case _:  # pragma: no cover - the union is closed
            raise ValueError(action.type)
    return [PlannedAction(index, action.type, spec, params, summary)]


def _plan_cadence(index: int, action: r.NoAnswerCadence, ctx: dict[str, Any], now: datetime,
                  settings: dict[str, Any], spec: dict[str, Any]) -> list[PlannedAction]:
    attempt = int(_get(ctx, "task", "attempt") or 0)
    if 1 <= attempt <= len(action.offsets):
        offset = action.offsets[attempt - 1]
        due = now + r.parse_duration(offset)
        return [PlannedAction(index, "reschedule_task", spec,
                              {"task_id": _get(ctx, "task", "id"), "due_at": due.isoformat(),
                               "attempt": attempt},
                              f"attempt {attempt}: reopen the task due in {offset} "
                              f"({due:%Y-%m-%d %H:%M} UTC)")]
    plans = [PlannedAction(index, "cadence_exhausted", spec, {"attempt": attempt},
                           f"attempt {attempt}: the {len(action.offsets)} retries are used up")]
    for sub in action.on_exhausted:
        plans.extend(plan_action(index, sub, ctx, now, settings))
    return plans


def evaluate(spec: r.RuleSpec, event: dict[str, Any] | None, ctx: dict[str, Any],
             now: datetime, settings: dict[str, Any] | None = None,
             actions: list[Any] | None = None) -> Evaluation:
    """Does the rule fire for this event (None for a time trigger that came due), and if so,
    what would it do? `actions` replaces the rule's actions (the rest after a wait)."""
    settings = settings or {}
    checks: list[Check] = []
    if event is not None:
        trig = trigger_check(spec.trigger, event, ctx)
        checks.append(trig)
        if not trig.matched:
            return Evaluation(False, checks)
    else:
        checks.append(Check("trigger", True, "taken as fired (a date rule coming due, or a "
                                             "dry-run against a record)"))
    ok, cond_checks = check_conditions(spec.conditions, ctx)
    checks.extend(cond_checks)
    if not ok:
        return Evaluation(False, checks)
    evaluation = plan_actions(spec.actions if actions is None else actions, ctx, now, settings)
    evaluation.checks = checks
    return evaluation


def plan_actions(actions: list[Any], ctx: dict[str, Any], now: datetime,
                 settings: dict[str, Any] | None = None) -> Evaluation:
    """The plan for a list of actions, up to the first `wait` (the rest is kept for later)."""
    settings = settings or {}
    evaluation = Evaluation(True)
    for i, action in enumerate(actions):
        if action.type == "wait":
            evaluation.resume_at = now + r.parse_duration(action.for_)
            evaluation.recheck = action.recheck
            evaluation.remaining = [a.model_dump(mode="json", by_alias=True)
                                    for a in actions[i + 1:]]
            evaluation.plan.append(PlannedAction(
                i, "wait", action.model_dump(mode="json", by_alias=True),
                {"resume_at": evaluation.resume_at.isoformat(), "recheck": action.recheck},
                f"wait {action.for_}, then " + ("if the conditions still hold, " if action.recheck
                                                else "") +
                f"go on with {len(evaluation.remaining)} action(s)"))
            break
        evaluation.plan.extend(plan_action(i, action, ctx, now, settings))
    return evaluation
