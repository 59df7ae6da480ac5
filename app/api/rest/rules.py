"""REST: /api/v1/rules — pipeline rules, their dry-run and their runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import Ctx, PageDep
from app.api.rest.common import (
    ListResponse,
    expected_version,
    query_conditions,
    reject_repeated_params,
    set_etag,
)
from app.api.rest.history import EventRead, event_read
from app.domain.automations import service
from app.domain.automations.schemas import (
    DryRunRequest,
    DryRunResult,
    RuleCreate,
    RuleRead,
    RuleRunRead,
    RuleUpdate,
)
from app.domain.outbox.service import entity_history

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])


@router.get("", response_model=ListResponse[RuleRead])
async def list_rules(request: Request, ctx: Ctx, page: PageDep,
                     include_deleted: bool = False) -> ListResponse[RuleRead]:
    """Rules, oldest first by default. Filters: `enabled=true`, `trigger_type=task_completed`,
    `name=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_rules(
        ctx.session, ctx.principal, conditions=await query_conditions(ctx.session, service.LIST_SPEC, request),
        page=page, include_deleted=include_deleted)
    return ListResponse(data=[service.to_read(r) for r in rows], next_cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RuleRead)
async def create_rule(body: RuleCreate, ctx: Ctx, response: Response) -> RuleRead:
    """A rule: a `trigger`, optional `conditions` and a list of `actions` (docs/rules.md).
    Checked when saved: a 422 names the faulty part. Owners and admins only."""
    rule = await service.create_rule(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/rules/{rule.id}"
    set_etag(response, rule.version)
    return service.to_read(rule)


@router.get("/{rule_id}", response_model=RuleRead)
async def get_rule(rule_id: uuid.UUID, ctx: Ctx, response: Response) -> RuleRead:
    rule = await service.get_rule(ctx.session, ctx.principal, rule_id)
    set_etag(response, rule.version)
    return service.to_read(rule)


@router.patch("/{rule_id}", response_model=RuleRead)
async def update_rule(rule_id: uuid.UUID, body: RuleUpdate, request: Request, ctx: Ctx,
                      response: Response) -> RuleRead:
    """JSON merge-patch; `trigger`, `conditions` and `actions` are replaced whole.
    `{"enabled": false}` switches a rule off."""
    rule = await service.update_rule(ctx.session, ctx.principal, rule_id, body,
                                     expected_version=expected_version(request))
    set_etag(response, rule.version)
    return service.to_read(rule)


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    """Soft delete: the rule stops; its runs and history stay; restorable for 30 days."""
    await service.delete_rule(ctx.session, ctx.principal, rule_id,
                              expected_version=expected_version(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{rule_id}/restore", response_model=RuleRead)
async def restore_rule(rule_id: uuid.UUID, ctx: Ctx, response: Response) -> RuleRead:
    rule = await service.restore_rule(ctx.session, ctx.principal, rule_id)
    set_etag(response, rule.version)
    return service.to_read(rule)


@router.post("/{rule_id}/dry-run", response_model=DryRunResult)
async def dry_run(rule_id: uuid.UUID, body: DryRunRequest, ctx: Ctx) -> DryRunResult:
    """Simulate the rule against a past event (`event_id`) or a record as it is now
    (`entity_type` + `entity_id`): which checks held and why, and the actions that would
    run. Nothing is written. Give `rule` to try a change before saving it."""
    return await service.dry_run(ctx.session, ctx.principal, rule_id, body)


@router.get("/{rule_id}/runs", response_model=ListResponse[RuleRunRead])
async def list_runs(rule_id: uuid.UUID, request: Request, ctx: Ctx,
                    page: PageDep) -> ListResponse[RuleRunRead]:
    """Every run, newest first: the trigger event, the explanation, each action with its
    result, or the error. Filters: `status=failed`, `event_id=…`, `entity_id=…`."""
    reject_repeated_params(request)
    rows, cursor = await service.list_runs(
        ctx.session, ctx.principal, rule_id,
        conditions=await query_conditions(ctx.session, service.RUNS_SPEC, request), page=page)
    return ListResponse(data=[service.run_read(r) for r in rows], next_cursor=cursor)


@router.get("/{rule_id}/history", response_model=ListResponse[EventRead])
async def rule_history(rule_id: uuid.UUID, ctx: Ctx,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: str | None = None) -> ListResponse[EventRead]:
    """Every change of the rule with actor, time and before/after values."""
    await service.get_rule(ctx.session, ctx.principal, rule_id, include_deleted=True)
    events, next_cursor = await entity_history(ctx.session, [rule_id], after=cursor,
                                               limit=limit)
    return ListResponse(data=[event_read(e) for e in events], next_cursor=next_cursor)
