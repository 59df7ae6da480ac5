"""Carrying out a plan through the domain services, in the caller's transaction.

Every effect goes through the same service a REST call would use (same checks, same
events), acting as the rule (`rule_principal`: the events name the rule and carry the run
and the chain depth). Effects outside PostgreSQL are written as rows here and sent by the
worker afterwards (messages, webhook calls), so a run that rolls back leaves nothing behind
and a run that commits leaves exactly one of each."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.automations.engine import Evaluation, PlannedAction
from app.domain.automations.models import RoundRobinTurn, ScheduledAction
from app.domain.companies import service as companies
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyUpdate
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactUpdate
from app.domain.deals import service as deals
from app.domain.deals.models import Deal
from app.domain.deals.schemas import DealMove, DealUpdate
from app.domain.documents.service import generate_document
from app.domain.messages.service import queue_message
from app.domain.notifications.service import notify
from app.domain.shared.clock import clock
from app.domain.shared.errors import ValidationError
from app.domain.shared.principal import Principal
from app.domain.tasks import service as tasks
from app.domain.tasks.models import Task
from app.domain.tasks.schemas import TaskCreate, TaskReopen, TaskUpdate
from app.domain.tasks.sweeps import heads_by_member
from app.domain.workspaces.models import Team, TeamMember, User

UPDATERS: dict[str, tuple[Any, Any]] = {
    "contact": (ContactUpdate, contacts.update_contact),
    "company": (CompanyUpdate, companies.update_company),
    "deal": (DealUpdate, deals.update_deal),
    "task": (TaskUpdate, tasks.update_task),
}
UPDATE_SCHEMAS = {name: schema for name, (schema, _) in UPDATERS.items()}
# Assignee strategies whose user was read from the users table of this workspace.
VERIFIED_STRATEGIES = ("user", "role", "round_robin", "owner")
RECORD_MODELS: dict[str, Any] = {"contact": Contact, "company": Company, "deal": Deal,
                                 "task": Task, "activity": Activity}


def _id(ctx: dict[str, Any], key: str) -> uuid.UUID | None:
    record = ctx.get(key) or {}
    return uuid.UUID(record["id"]) if record.get("id") else None


def record_owner(ctx: dict[str, Any], entity_type: str) -> uuid.UUID | None:
    """A task's assignee for task triggers; otherwise the deal's, contact's or company's
    owner (as `record_variables` chose it)."""
    task = ctx.get("task") or {}
    if entity_type == "task" and task.get("assignee_id"):
        return uuid.UUID(task["assignee_id"])
    owner = ctx.get("owner") or {}
    return uuid.UUID(owner["id"]) if owner.get("id") else None


async def _active(session: AsyncSession, query: Any) -> list[uuid.UUID]:
    return list((await session.execute(query.where(User.is_active.is_(True))
                                       .order_by(User.id))).scalars())


async def _next_turn(session: AsyncSession, workspace_id: uuid.UUID, key: str) -> int:
    statement = insert(RoundRobinTurn).values(workspace_id=workspace_id, key=key, turn=1)
    statement = statement.on_conflict_do_update(
        index_elements=["workspace_id", "key"],
        set_={"turn": RoundRobinTurn.turn + 1}).returning(RoundRobinTurn.turn)
    return int((await session.execute(statement)).scalar_one())


async def resolve_who(session: AsyncSession, principal: Principal, who: dict[str, Any],
                      ctx: dict[str, Any], entity_type: str, *, one: bool) -> list[uuid.UUID]:
    """The users a strategy names: one (an assignment) or all (a notice)."""
    strategy = who["strategy"]
    if strategy == "owner":
        owner = record_owner(ctx, entity_type)
        return [owner] if owner else []
    if strategy == "user":
        return await _active(session, select(User.id).where(User.id == uuid.UUID(who["user_id"])))
    if strategy == "team_head":
        if who.get("team_id"):
            head = (await session.execute(select(Team.head_id).where(
                Team.id == uuid.UUID(who["team_id"])))).scalar_one_or_none()
            return [head] if head else []
        owner = record_owner(ctx, entity_type)
        return sorted((await heads_by_member(session, {owner})).get(owner, set())) if owner else []
    if strategy == "role":
        users = await _active(session, select(User.id).where(User.role == who["role"]))
        key = f"role:{who['role']}"
    else:  # round_robin
        users = await _active(session, select(User.id).join(
            TeamMember, (TeamMember.workspace_id == User.workspace_id)
            & (TeamMember.user_id == User.id)).where(
            TeamMember.team_id == uuid.UUID(who["team_id"])))
        key = f"team:{who['team_id']}"
    if not users or not one:
        return users
    turn = await _next_turn(session, principal.workspace_id, key)
    return [users[(turn - 1) % len(users)]]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Runner:
    """Executes one evaluation's plan for one run."""

    def __init__(self, session: AsyncSession, principal: Principal, *, run_id: uuid.UUID,
                 rule_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID,
                 ctx: dict[str, Any]) -> None:
        self.session, self.principal = session, principal
        self.run_id, self.rule_id = run_id, rule_id
        self.entity_type, self.entity_id, self.ctx = entity_type, entity_id, ctx
        self.documents: list[uuid.UUID] = []

    async def execute(self, evaluation: Evaluation) -> list[dict[str, Any]]:
        results = []
        for planned in evaluation.plan:
            outcome = await self._one(planned)
            results.append({**planned.as_dict(), "result": outcome})
        if evaluation.resume_at is not None:
            self.session.add(ScheduledAction(
                workspace_id=self.principal.workspace_id, run_id=self.run_id,
                rule_id=self.rule_id, kind="continue", due_at=evaluation.resume_at,
                payload={"actions": evaluation.remaining, "recheck": evaluation.recheck,
                         "event": self.ctx.get("event"),
                         "entity_type": self.entity_type, "entity_id": str(self.entity_id)}))
        return results

    async def _one(self, planned: PlannedAction) -> dict[str, Any]:
        handler = getattr(self, f"_{planned.type}")
        return await handler(planned.params, planned)  # type: ignore[no-any-return]

    async def _who(self, who: dict[str, Any], *, one: bool) -> list[uuid.UUID]:
        return await resolve_who(self.session, self.principal, who, self.ctx, self.entity_type,
                                 one=one)

    async def _create_task(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        assignee = await self._who(params["assignee"], one=True)
        # The linked records come from the run's context (loaded live in this transaction,
        # and a rule sees the whole workspace); these strategies read their user from the
        # users table just now. So the task service need not look them up again.
        verified = ["contact_id", "company_id", "deal_id"]
        if params["assignee"]["strategy"] in VERIFIED_STRATEGIES:
            verified.append("assignee_id")
        data = TaskCreate(
            title=params["title"][:500], type=params["task_type"],
            description=params.get("description"), due_at=_time(params.get("due_at")),
            reminder_at=_time(params.get("reminder_at")),
            assignee_id=assignee[0] if assignee else None,
            contact_id=_id(self.ctx, "contact"), deal_id=_id(self.ctx, "deal"),
            company_id=None if _id(self.ctx, "contact") else _id(self.ctx, "company"))
        task = await tasks.create_task(self.session, self.principal, data, verified=verified)
        return {"task_id": str(task.id), "assignee_id": str(task.assignee_id)
                if task.assignee_id else None}

    def _target(self, object_: str | None, loc: str) -> tuple[str, uuid.UUID]:
        if object_ is None:
            if self.entity_type in ("contact", "company", "deal", "task"):
                object_ = self.entity_type
            else:
                object_ = "deal" if self.ctx.get("deal") else "contact"
        record_id = _id(self.ctx, object_)
        if record_id is None:
            raise ValidationError.at([loc], f"the trigger's record has no {object_}")
        return object_, record_id

    async def _update(self, object_: str, record_id: uuid.UUID,
                      values: dict[str, Any]) -> None:
        schema, update = UPDATERS[object_]
        await update(self.session, self.principal, record_id, schema.model_validate(values))

    async def _assign_owner(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        object_, record_id = self._target(params.get("object"), "object")
        if object_ == "task":
            object_, record_id = self._target("deal" if self.ctx.get("deal") else "contact",
                                              "object")
        users = await self._who(params["assignee"], one=True)
        if not users:
            return {"skipped": "nobody matches the assignee strategy"}
        await self._update(object_, record_id, {"owner_id": str(users[0])})
        # The actions after this one act for the new owner (`"strategy": "owner"`).
        (self.ctx.get(object_) or {})["owner_id"] = str(users[0])
        self.ctx["owner"] = {**(self.ctx.get("owner") or {}), "id": str(users[0])}
        return {object_ + "_id": str(record_id), "owner_id": str(users[0])}

    async def _move_deal(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        deal_id = _id(self.ctx, "deal")
        if deal_id is None:
            raise ValidationError.at(["stage_id"], "the trigger's record has no deal to move")
        await deals.move_deal(self.session, self.principal, deal_id, DealMove(
            stage_id=uuid.UUID(params["stage_id"]), lost_reason=params.get("lost_reason")))
        return {"deal_id": str(deal_id), "stage_id": params["stage_id"]}

    async def _update_fields(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        object_, record_id = self._target(params.get("object"), "object")
        await self._update(object_, record_id, params["set"])
        return {object_ + "_id": str(record_id), "set": sorted(params["set"])}

    async def _notify(self, params: dict[str, Any], planned: PlannedAction) -> dict[str, Any]:
        users = await self._who(params["to"], one=False)
        created = await notify(self.session, self.principal, user_ids=users, type="rule",
                               title=params["title"][:500], body=params.get("body"),
                               entity_type=self.entity_type, entity_id=self.entity_id,
                               dedup_key=f"rule:{self.run_id}:{planned.index}")
        return {"user_ids": [str(n.user_id) for n in created]}

    async def _send(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        to = params["to"]
        address = None
        contact_id = _id(self.ctx, "contact")
        if isinstance(to, dict):
            user = (await self.session.execute(select(User).where(
                User.id == uuid.UUID(to["user_id"])))).scalar_one()
            address, contact_id = user.email, None
            if params["channel"] == "sms":
                raise ValidationError.at(["to"], "an SMS goes to a contact, not to a user")
        message = await queue_message(
            self.session, self.principal, channel=params["channel"], contact_id=contact_id,
            to=address, deal_id=_id(self.ctx, "deal"),
            template_id=uuid.UUID(params["template_id"]) if params.get("template_id") else None,
            subject=params.get("subject"), body=params.get("body"),
            document_ids=list(self.documents) if params.get("attach_documents") else [],
            variables_from={"task_id": _id(self.ctx, "task")} if self.ctx.get("task") else None)
        return {"message_id": str(message.id)}

    _send_email = _send
    _send_sms = _send

    async def _generate_document(self, params: dict[str, Any], _: PlannedAction
                                 ) -> dict[str, Any]:
        deal_id = _id(self.ctx, "deal")
        if deal_id is None:
            raise ValidationError.at(["template_id"], "a document is made for a deal")
        document = await generate_document(self.session, self.principal, deal_id=deal_id,
                                           template_id=uuid.UUID(params["template_id"]))
        self.documents.append(document.id)
        return {"document_id": str(document.id)}

    async def _call_webhook(self, params: dict[str, Any], planned: PlannedAction
                            ) -> dict[str, Any]:
        action = ScheduledAction(
            workspace_id=self.principal.workspace_id, run_id=self.run_id, rule_id=self.rule_id,
            kind="webhook", due_at=clock.now(),
            payload={"url": params["url"], "body": {
                "rule_id": str(self.rule_id), "run_id": str(self.run_id),
                "event": self.ctx.get("event"), "record": {
                    k: self.ctx.get(k) for k in ("contact", "company", "deal", "task")}}})
        self.session.add(action)
        return {"scheduled_action_id": str(action.id)}

    async def _reschedule_task(self, params: dict[str, Any], _: PlannedAction
                               ) -> dict[str, Any]:
        task_id = uuid.UUID(params["task_id"])
        task = await tasks.get_task(self.session, self.principal, task_id)
        due = _time(params["due_at"])
        if task.status == "open":
            await tasks.update_task(self.session, self.principal, task_id, TaskUpdate(due_at=due))
        else:
            await tasks.reopen_task(self.session, self.principal, task_id, TaskReopen(due_at=due))
        return {"task_id": str(task_id), "due_at": params["due_at"]}

    async def _wait(self, params: dict[str, Any], _: PlannedAction) -> dict[str, Any]:
        return {"resume_at": params["resume_at"]}  # scheduled by `execute` after the plan

    async def _cadence_exhausted(self, params: dict[str, Any], _: PlannedAction
                                 ) -> dict[str, Any]:
        return {"attempt": params["attempt"]}
