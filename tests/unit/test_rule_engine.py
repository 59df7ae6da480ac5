"""The rule engine, table by table: pure functions, a frozen `now`, plain dict contexts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from app.domain.automations import engine
from app.domain.automations import rules as r

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday
CONDITION = TypeAdapter(r.Condition)


def spec(**parts: Any) -> r.RuleSpec:
    return r.RuleSpec.model_validate({"actions": [{"type": "notify", "title": "hi",
                                                   "to": {"strategy": "owner"}}], **parts})


def ctx(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"contact": {"id": "c1", "full_name": "Anna", "tags": ["vip"],
                                        "status": "warm", "timezone": "Asia/Yerevan",
                                        "custom_fields": {"visits": 4}},
                            "deal": {"id": "d1", "amount": "1500.00", "stage_id": "s1",
                                     "pipeline_id": "p1", "stage": {"name": "Pricing",
                                                                    "kind": "open"}},
                            "task": {"id": "t1", "type": "call", "outcome": "no_answer",
                                     "attempt": 2, "data": {"visit_at": "2026-12-05T11:00:00Z"}},
                            "stage": {"name": "Pricing", "kind": "open"},
                            "owner": {"id": "u1", "team_ids": ["team1"]},
                            "workspace": {"timezone": "Europe/Moscow"}, "event": None}
    base.update(parts)
    return base


@pytest.mark.parametrize(("condition", "expected"), [
    ({"field": "deal.amount", "op": "gte", "value": "1000"}, True),
    ({"field": "deal.amount", "op": "gt", "value": 1500}, False),
    ({"field": "deal.amount", "op": "eq", "value": 1500}, True),
    ({"field": "contact.tags", "op": "has", "value": "vip"}, True),
    ({"field": "contact.tags", "op": "not_has", "value": "vip"}, False),
    ({"field": "contact.status", "op": "in", "value": ["warm", "hot"]}, True),
    ({"field": "contact.status", "op": "not_in", "value": ["warm", "hot"]}, False),
    ({"field": "contact.full_name", "op": "contains", "value": "ann"}, True),
    ({"field": "contact.full_name", "op": "starts_with", "value": "An"}, True),
    ({"field": "contact.custom_fields.visits", "op": "lt", "value": 5}, True),
    ({"field": "contact.custom_fields.missing", "op": "is_empty"}, True),
    ({"field": "contact.custom_fields.missing", "op": "is_set"}, False),
    ({"field": "contact.custom_fields.missing", "op": "gt", "value": 1}, False),
    ({"field": "task.attempt", "op": "gte", "value": 2}, True),
    ({"field": "stage.kind", "op": "eq", "value": "open"}, True),
    ({"field": "owner.team_ids", "op": "has", "value": "team1"}, True),
    ({"all": [{"field": "deal.amount", "op": "gte", "value": 1000},
              {"field": "contact.status", "op": "eq", "value": "cold"}]}, False),
    ({"any": [{"field": "deal.amount", "op": "gte", "value": 1000},
              {"field": "contact.status", "op": "eq", "value": "cold"}]}, True),
    ({"not": {"field": "contact.status", "op": "eq", "value": "cold"}}, True),
])
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    ok, checks = engine.check_conditions(CONDITION.validate_python(condition), ctx())
    assert ok is expected
    assert checks[-1].matched is expected


def test_every_leaf_is_explained_even_after_a_failure() -> None:
    condition = CONDITION.validate_python({"all": [
        {"field": "contact.status", "op": "eq", "value": "cold"},
        {"field": "deal.amount", "op": "gte", "value": "1000"}]})
    ok, checks = engine.check_conditions(condition, ctx())
    assert not ok
    assert [c.reason for c in checks] == [
        "contact.status is 'warm': eq 'cold' does not hold",
        "deal.amount is '1500.00': gte '1000' holds",
        "all: 1 of 2 hold"]
    assert [c.path for c in checks] == ["conditions.all.0", "conditions.all.1", "conditions"]


def test_changed_reads_the_event() -> None:
    condition = CONDITION.validate_python({"field": "deal.stage_id", "op": "changed"})
    event = {"entity_type": "deal", "changed": ["stage_id", "status"]}
    assert engine.check_conditions(condition, ctx(event=event))[0]
    assert not engine.check_conditions(condition, ctx(event={**event, "changed": ["title"]}))[0]


@pytest.mark.parametrize(("trigger", "event", "expected"), [
    ({"type": "record_created", "object": "contact"}, {"type": "contact.created"}, True),
    ({"type": "record_created", "object": "contact"}, {"type": "deal.created"}, False),
    ({"type": "record_updated", "object": "contact", "fields": ["status"]},
     {"type": "contact.updated", "changed": ["status", "tags"]}, True),
    ({"type": "record_updated", "object": "contact", "fields": ["status"]},
     {"type": "contact.updated", "changed": ["tags"]}, False),
    ({"type": "stage_entered", "stage_id": "00000000-0000-0000-0000-000000000001"},
     {"type": "deal.stage_changed",
      "after": {"stage_id": "00000000-0000-0000-0000-000000000001"}}, True),
    ({"type": "stage_entered", "stage_id": "00000000-0000-0000-0000-000000000001"},
     {"type": "deal.created", "after": {"stage_id": "00000000-0000-0000-0000-000000000002"}},
     False),
    ({"type": "stage_left", "stage_id": "00000000-0000-0000-0000-000000000001"},
     {"type": "deal.stage_changed",
      "before": {"stage_id": "00000000-0000-0000-0000-000000000001"}, "after": {}}, True),
    ({"type": "task_completed", "outcome": "no_answer"}, {"type": "task.completed"}, True),
    ({"type": "task_completed", "outcome": "done"}, {"type": "task.completed"}, False),
    ({"type": "task_completed", "task_type": "meeting"}, {"type": "task.completed"}, False),
    ({"type": "task_overdue"}, {"type": "task.overdue"}, True),
    ({"type": "reminder_due"}, {"type": "task.reminder_due"}, True),
    ({"type": "deal_rotting"}, {"type": "deal.rotting"}, True),
    ({"type": "event", "event": "call.missed"}, {"type": "call.missed"}, True),
    ({"type": "event", "event": "call.missed"}, {"type": "call.logged"}, False),
])
def test_triggers(trigger: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    evaluation = engine.evaluate(spec(trigger=trigger), event, ctx(), NOW)
    assert evaluation.matched is expected
    assert evaluation.checks[0].path == "trigger"


def test_create_task_plan_renders_the_title_and_due_time() -> None:
    rule = spec(trigger={"type": "record_created", "object": "deal"}, actions=[
        {"type": "create_task", "title": "Call {{ contact.full_name }}", "due": {"in": "15m"},
         "reminder_before": "5m"}])
    [plan] = engine.evaluate(rule, {"type": "deal.created"}, ctx(), NOW).plan
    assert plan.params["title"] == "Call Anna"
    assert plan.params["due_at"] == (NOW + timedelta(minutes=15)).isoformat()
    assert plan.params["reminder_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert plan.params["assignee"] == {"strategy": "owner"}


def test_due_from_a_field_with_an_offset() -> None:
    due = r.DueIn.model_validate({"field": "task.data.visit_at", "offset": "-1h"})
    assert engine.due_time(due, ctx(), NOW, None) == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("at", "expected"), [
    # Yerevan is UTC+4; business hours 09:00-18:00 Mon-Fri.
    (datetime(2026, 12, 3, 6, 0, tzinfo=UTC), datetime(2026, 12, 3, 6, 0, tzinfo=UTC)),
    (datetime(2026, 12, 3, 4, 0, tzinfo=UTC), datetime(2026, 12, 3, 5, 0, tzinfo=UTC)),
    (datetime(2026, 12, 3, 15, 0, tzinfo=UTC), datetime(2026, 12, 4, 5, 0, tzinfo=UTC)),
    (datetime(2026, 12, 4, 15, 0, tzinfo=UTC), datetime(2026, 12, 7, 5, 0, tzinfo=UTC)),
])
def test_business_hours_in_the_contacts_zone(at: datetime, expected: datetime) -> None:
    assert engine.within_business_hours(at, "Asia/Yerevan", None) == expected


@pytest.mark.parametrize(("attempt", "kind", "due_in"), [
    (1, "reschedule_task", timedelta(minutes=5)), (2, "reschedule_task", timedelta(minutes=30)),
    (3, "reschedule_task", timedelta(hours=3)), (4, "reschedule_task", timedelta(days=1)),
    (5, "cadence_exhausted", None),
])
def test_no_answer_cadence(attempt: int, kind: str, due_in: timedelta | None) -> None:
    rule = spec(trigger={"type": "task_completed", "outcome": "no_answer"}, actions=[
        {"type": "cadence", "offsets": ["5m", "30m", "3h", "1d"], "on_exhausted": [
            {"type": "move_deal", "stage_id": "00000000-0000-0000-0000-000000000009"}]}])
    context = ctx(task={**ctx()["task"], "attempt": attempt})
    plan = engine.evaluate(rule, {"type": "task.completed"}, context, NOW).plan
    assert plan[0].type == kind
    if due_in is not None:
        assert plan[0].params["due_at"] == (NOW + due_in).isoformat()
        assert len(plan) == 1
    else:
        assert [p.type for p in plan] == ["cadence_exhausted", "move_deal"]


def test_wait_keeps_the_rest_for_later() -> None:
    rule = spec(trigger={"type": "record_created", "object": "contact"}, actions=[
        {"type": "notify", "title": "now", "to": {"strategy": "owner"}},
        {"type": "wait", "for": "2h"},
        {"type": "notify", "title": "later", "to": {"strategy": "owner"}}])
    evaluation = engine.evaluate(rule, {"type": "contact.created"}, ctx(), NOW)
    assert [p.type for p in evaluation.plan] == ["notify", "wait"]
    assert evaluation.resume_at == NOW + timedelta(hours=2)
    assert evaluation.remaining[0]["title"] == "later"


def test_date_trigger_day() -> None:
    trigger = r.DateReached.model_validate({"type": "date_reached", "field":
                                            "custom_fields.next_service_date",
                                            "offset_days": -30})
    assert str(engine.date_trigger_day(trigger, NOW.date())) == "2027-01-02"


@pytest.mark.parametrize(("rule", "loc"), [
    ({"trigger": {"type": "nope"}}, ("trigger",)),
    ({"trigger": {"type": "record_created", "object": "planet"}},
     ("trigger", "record_created", "object")),
    ({"trigger": {"type": "record_created", "object": "deal"},
      "actions": [{"type": "create_task", "title": "x", "due": {"in": "15 minutes"}}]},
     ("actions", 0, "create_task", "due", "in")),
    ({"trigger": {"type": "record_created", "object": "deal"},
      "conditions": {"all": [{"field": "deal.amount", "op": "bigger"}]}},
     ("conditions", "all", "all", 0, "field", "op")),
    ({"trigger": {"type": "record_created", "object": "deal"},
      "actions": [{"type": "cadence", "offsets": ["5m", "soon"]}]},
     ("actions", 0, "cadence", "offsets")),
])
def test_invalid_rules_point_at_the_faulty_part(rule: dict[str, Any], loc: tuple[Any, ...]) -> None:
    body = {"actions": [{"type": "notify", "title": "x", "to": {"strategy": "owner"}}], **rule}
    with pytest.raises(ValidationError) as info:
        r.RuleSpec.model_validate(body)
    locs = [tuple(e["loc"]) for e in info.value.errors()]
    assert any(found[:len(loc)] == loc for found in locs), locs
