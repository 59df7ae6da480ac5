"""Importing tasks and activities (the history of calls, emails, meetings and notes) from a
spreadsheet, through the same services as the API, one row per savepoint.

A row names its people by email (`assignee`, `owner`), its customer by `phone` / `email`
(the card is found in any format, or created with the row's `contact` name), its company
by name and its deal by the deal's `external_id`. Times without an offset are read in the
workspace's time zone; `transforms.<field>.date_format` reads unusual formats."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate
from app.domain.deals.models import Deal
from app.domain.imports.deals import (
    Directory,
    contact_for,
    load_directory,
    user_for,
    wanted_contact,
)
from app.domain.imports.models import ImportJob, ImportRecord
from app.domain.imports.rows import RowError, RowPlan, given_fields
from app.domain.shared.errors import DomainError
from app.domain.shared.principal import Principal
from app.domain.tasks import service as tasks
from app.domain.tasks.schemas import TaskComplete, TaskCreate, TaskUpdate

DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S",
                    "%d/%m/%Y %H:%M", "%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
TASK_STATUSES = ("open", "done", "canceled")


def parse_time(text: str, target: str, plan: RowPlan) -> datetime:
    """RFC 3339 / ISO with or without an offset, or a common local format; a time without
    an offset is the workspace's local time."""
    date_format = plan.transform(target).date_format
    value: datetime | None = None
    if date_format is None:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
    for fmt in ([date_format] if date_format else [] if value else DATETIME_FORMATS):
        try:
            value = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if value is None:
        raise RowError(f"{target} {text!r} is not a date and time"
                       + (f" in the format {date_format}" if date_format
                          else f" (give transforms.{target}.date_format)"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(plan.timezone))
    return value


def _reason(exc: PydanticValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "row"
    return f"{where}: {first['msg']}"


async def _links(session: AsyncSession, principal: Principal, job: ImportJob,
                 given: dict[str, Any], plan: RowPlan, directory: Directory,
                 company_ids_for: Any) -> dict[str, uuid.UUID]:
    """contact_id / company_id / deal_id of the row (the card found or created)."""
    links: dict[str, uuid.UUID] = {}
    contact = wanted_contact(plan, given)
    if given.get("deal"):
        deal = (await session.execute(select(Deal.id, Deal.company_id).where(
            Deal.external_id == given["deal"], Deal.deleted_at.is_(None)))).first()
        if deal is None:
            raise RowError(f"no deal with external_id {given['deal']!r}")
        links["deal_id"] = deal.id
        if deal.company_id is not None:
            links["company_id"] = deal.company_id
    if given.get("company"):
        links["company_id"] = (await company_ids_for({given["company"]}))[
            given["company"].casefold()]
    if contact is not None:
        links["contact_id"] = await contact_for(session, principal, job, contact, directory)
    return links


def _record(job: ImportJob, entity_type: str, entity_id: uuid.UUID, action: str) -> Any:
    return insert(ImportRecord).values(workspace_id=job.workspace_id, import_id=job.id,
                                       entity_id=entity_id, entity_type=entity_type,
                                       action=action)


async def write_tasks(session: AsyncSession, principal: Principal, job: ImportJob,
                      plan: RowPlan, batch: list[tuple[int, list[Any]]], outcome: Any,
                      company_ids_for: Any) -> None:
    directory = await load_directory(session)
    for number, cells in batch:
        try:
            given = given_fields(plan, cells)
            body: dict[str, Any] = {k: given[k] for k in ("title", "type", "description")
                                    if k in given}
            for target in ("due_at", "reminder_at"):
                if given.get(target):
                    body[target] = parse_time(given[target], target, plan)
            if given.get("assignee"):
                body["assignee_id"] = user_for(directory, given["assignee"], "assignee")
            status = (given.get("status") or "open").casefold()
            if status not in TASK_STATUSES:
                raise RowError(f"status {given['status']!r} is not one of "
                               f"{', '.join(TASK_STATUSES)} (map it with transforms.status.map)")
            TaskCreate.model_validate(body)
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        except PydanticValidationError as exc:
            outcome.reject(number, _reason(exc), cells)
            continue
        if job.dry_run:
            outcome.created += 1
            continue
        try:
            async with session.begin_nested():
                body |= await _links(session, principal, job, given, plan, directory,
                                     company_ids_for)
                task = await tasks.create_task(session, principal, TaskCreate.model_validate(body))
                if status == "done":
                    await tasks.complete_task(session, principal, task.id, TaskComplete(
                        outcome=given.get("outcome"), note=given.get("note")))
                elif status == "canceled":
                    await tasks.update_task(session, principal, task.id,
                                            TaskUpdate(status="canceled"))
                await session.execute(_record(job, "task", task.id, "created"))
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        except DomainError as exc:
            outcome.reject(number, exc.errors[0]["msg"] if exc.errors else exc.detail, cells)
            continue
        outcome.created += 1


async def write_activities(session: AsyncSession, principal: Principal, job: ImportJob,
                           plan: RowPlan, batch: list[tuple[int, list[Any]]], outcome: Any,
                           company_ids_for: Any) -> None:
    directory = await load_directory(session)
    strategy: str = job.options.get("on_duplicate", "skip")
    for number, cells in batch:
        try:
            given = given_fields(plan, cells)
            body: dict[str, Any] = {k: given[k] for k in (
                "type", "direction", "channel", "subject", "body", "from_number", "to_number",
                "call_status", "recording_url", "external_id") if k in given}
            for key in ("type", "direction", "call_status"):
                if key in body:
                    body[key] = body[key].casefold()
            if given.get("occurred_at"):
                body["occurred_at"] = parse_time(given["occurred_at"], "occurred_at", plan)
            if given.get("duration_seconds"):
                try:
                    body["duration_seconds"] = int(float(given["duration_seconds"]))
                except ValueError:
                    raise RowError(f"duration_seconds {given['duration_seconds']!r} is not "
                                   "a number of seconds") from None
            if given.get("owner"):
                body["owner_id"] = user_for(directory, given["owner"], "owner")
            ActivityCreate.model_validate(body)
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        except PydanticValidationError as exc:
            outcome.reject(number, _reason(exc), cells)
            continue
        existing = None
        if body.get("external_id") and strategy != "create":
            existing = (await session.execute(select(Activity.id).where(
                Activity.external_id == body["external_id"], Activity.deleted_at.is_(None)))
            ).scalar_one_or_none()
        if existing is not None:
            outcome.skipped += 1  # an activity is history: a repeat is not applied again
            continue
        if job.dry_run:
            outcome.created += 1
            continue
        try:
            async with session.begin_nested():
                body |= await _links(session, principal, job, given, plan, directory,
                                     company_ids_for)
                activity = await activities.create_activity(
                    session, principal, ActivityCreate.model_validate(body))
                await session.execute(_record(job, "activity", activity.id, "created"))
        except RowError as exc:
            outcome.reject(number, str(exc), cells)
            continue
        except DomainError as exc:
            outcome.reject(number, exc.errors[0]["msg"] if exc.errors else exc.detail, cells)
            continue
        outcome.created += 1
