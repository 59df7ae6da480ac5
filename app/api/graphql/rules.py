"""GraphQL for pipeline rules: the same services as REST /api/v1/rules.

Triggers, conditions and actions are the rule language of docs/rules.md as JSON (the same
documents REST takes and returns), checked by the same pydantic models: one language, not a
second GraphQL dialect of it."""

from __future__ import annotations

import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.domain.automations import service
from app.domain.automations.schemas import (
    DryRunRequest,
    RuleCreate,
    RuleRead,
    RuleRunRead,
    RuleUpdate,
)
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor


@strawberry.type(description="A pipeline rule: when `trigger` fires and `conditions` hold, "
                             "the `actions` run (docs/rules.md).")
class Rule:
    id: strawberry.ID
    name: str
    description: str | None
    enabled: bool
    trigger: JSON
    conditions: JSON | None
    actions: JSON
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    created_by: str
    updated_by: str

    @classmethod
    def of(cls, r: RuleRead) -> Rule:
        return cls(id=strawberry.ID(str(r.id)), name=r.name, description=r.description,
                   enabled=r.enabled, trigger=r.trigger, conditions=r.conditions,
                   actions=r.actions, version=r.version, created_at=r.created_at,
                   updated_at=r.updated_at, created_by=r.created_by, updated_by=r.updated_by)

    @strawberry.field(description="The rule's runs, newest first (`filter` as REST's: "
                                  '{"field": "status", "op": "eq", "value": "failed"}).')
    async def runs(self, info: strawberry.Info, first: int = 20, after: str | None = None,
                   filter: JSON | None = None) -> RuleRunConnection:
        async with info.context.db_lock:
            rows, next_cursor = await service.list_runs(
                info.context.session, info.context.principal, parse_id(self.id, "rule"),
                conditions=await filter_conditions(info.context.session, service.RUNS_SPEC, filter),
                page=page_of(first, after, None))
        edges = [RuleRunEdge(cursor=row_cursor(service.RUNS_SPEC, None, row),
                             node=RuleRun.of(service.run_read(row))) for row in rows]
        return RuleRunConnection(edges=edges, page_info=page_info(edges, next_cursor))


@strawberry.type(description="One rule meeting one trigger: why it matched or not, and "
                             "what each action did.")
class RuleRun:
    id: strawberry.ID
    status: str
    event_id: strawberry.ID | None
    event_type: str | None
    entity_type: str
    entity_id: strawberry.ID
    explanation: JSON
    actions: JSON
    error: str | None
    attempts: int
    next_attempt_at: datetime.datetime | None
    depth: int
    created_at: datetime.datetime
    finished_at: datetime.datetime | None

    @classmethod
    def of(cls, r: RuleRunRead) -> RuleRun:
        return cls(id=strawberry.ID(str(r.id)), status=r.status,
                   event_id=strawberry.ID(str(r.event_id)) if r.event_id else None,
                   event_type=r.event_type, entity_type=r.entity_type,
                   entity_id=strawberry.ID(str(r.entity_id)), explanation=r.explanation,
                   actions=r.actions, error=r.error, attempts=r.attempts,
                   next_attempt_at=r.next_attempt_at, depth=r.depth, created_at=r.created_at,
                   finished_at=r.finished_at)


@strawberry.type
class RuleRunEdge:
    cursor: str
    node: RuleRun


@strawberry.type
class RuleRunConnection:
    edges: list[RuleRunEdge]
    page_info: PageInfo


@strawberry.type
class RuleEdge:
    cursor: str
    node: Rule


@strawberry.type
class RuleConnection:
    edges: list[RuleEdge]
    page_info: PageInfo


@strawberry.type(description="What a rule would do, with nothing written.")
class RuleDryRun:
    matched: bool
    explanation: JSON
    actions: JSON
    resume_at: datetime.datetime | None
    context: JSON


@strawberry.input(description="A rule as REST's body: trigger, conditions and actions are "
                              "the rule language's JSON.")
class RuleInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    trigger: JSON | None = strawberry.UNSET
    conditions: JSON | None = strawberry.UNSET
    actions: JSON | None = strawberry.UNSET


@strawberry.type
class RulesQuery:
    @strawberry.field(description="The workspace's rules (`filter` as REST's list filters).")
    async def rules(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                    filter: JSON | None = None, sort: str | None = None) -> RuleConnection:
        async with info.context.db_lock:
            rows, next_cursor = await service.list_rules(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, service.LIST_SPEC, filter),
                page=page_of(first, after, sort))
        edges = [RuleEdge(cursor=row_cursor(service.LIST_SPEC, sort, row),
                          node=Rule.of(service.to_read(row))) for row in rows]
        return RuleConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="A rule; null when there is none with this id here.")
    async def rule(self, info: strawberry.Info, id: strawberry.ID) -> Rule | None:
        async with info.context.db_lock:
            try:
                row = await service.get_rule(info.context.session, info.context.principal,
                                             parse_id(id, "rule"))
            except DomainNotFound:
                return None
        return Rule.of(service.to_read(row))


RuleResult = Annotated[Rule | ValidationError | ConflictError | NotFoundError
                       | PreconditionFailedError | ForbiddenError, strawberry.union("RuleResult")]
RuleDryRunResult = Annotated[
    RuleDryRun | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("RuleDryRunResult")]


@strawberry.type
class RulesMutation:
    @strawberry.mutation(description="Create a rule (owners and admins).")
    async def create_rule(self, info: strawberry.Info, input: RuleInput) -> RuleResult:
        async def run() -> Rule:
            rule = await service.create_rule(info.context.session, info.context.principal,
                                             RuleCreate.model_validate(input_to_dict(input)))
            return Rule.of(service.to_read(rule))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a rule; `version` refuses a lost update.")
    async def update_rule(self, info: strawberry.Info, id: strawberry.ID, input: RuleInput,
                          version: int | None = None) -> RuleResult:
        async def run() -> Rule:
            rule = await service.update_rule(info.context.session, info.context.principal,
                                             parse_id(id, "rule"),
                                             RuleUpdate.model_validate(input_to_dict(input)),
                                             expected_version=version)
            return Rule.of(service.to_read(rule))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Soft-delete a rule: it stops; its runs stay.")
    async def delete_rule(self, info: strawberry.Info, id: strawberry.ID,
                          version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await service.delete_rule(info.context.session, info.context.principal,
                                      parse_id(id, "rule"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Simulate a rule against a past event or a record; "
                                     "`rule` tries a proposed version. Nothing is written.")
    async def dry_run_rule(self, info: strawberry.Info, id: strawberry.ID,
                           event_id: strawberry.ID | None = None,
                           entity_type: str | None = None,
                           entity_id: strawberry.ID | None = None,
                           rule: RuleInput | None = None) -> RuleDryRunResult:
        async def run() -> RuleDryRun:
            request = DryRunRequest.model_validate({
                "event_id": event_id, "entity_type": entity_type, "entity_id": entity_id,
                "rule": input_to_dict(rule) if rule is not None else None})
            result = await service.dry_run(info.context.session, info.context.principal,
                                           parse_id(id, "rule"), request)
            return RuleDryRun(matched=result.matched, explanation=result.explanation,
                              actions=result.actions, resume_at=result.resume_at,
                              context=result.context)
        return await in_savepoint(info, run, body=None)


QUERY_TYPES: list[type] = [RulesQuery]
MUTATION_TYPES: list[type] = [RulesMutation]
