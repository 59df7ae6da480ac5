"""Workspaces, users, teams and API keys."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_workspace
from app.domain.outbox.service import record_event
from app.domain.shared.clock import clock
from app.domain.shared.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal, Role, system_principal
from app.domain.shared.writecache import lookups
from app.domain.workspaces import secrets
from app.domain.workspaces.context import forget_workspace, lock_current_workspace
from app.domain.workspaces.models import ApiKey, Team, TeamMember, User, Workspace
from app.domain.workspaces.schemas import (
    ApiKeyCreate,
    TeamCreate,
    TeamUpdate,
    UserCreate,
    UserUpdate,
    WorkspaceCreate,
    WorkspaceUpdate,
)


async def create_workspace(session: AsyncSession, data: WorkspaceCreate
                           ) -> tuple[Workspace, User, str]:
    """A new workspace with its owner and a first read-write API key (returned once)."""
    workspace = Workspace(id=new_id(), name=data.name, default_region=data.default_region,
                          timezone=data.timezone)
    await set_workspace(session, workspace.id)
    session.add(workspace)
    await session.flush()
    system = system_principal(workspace.id)
    owner = User(workspace_id=workspace.id, email=str(data.owner_email).lower(),
                 full_name=data.owner_name, role=Role.owner,
                 password_hash=secrets.hash_password(data.owner_password)
                 if data.owner_password else None)
    session.add(owner)
    await session.flush()
    await record_event(session, system, type="workspace.created", entity_type="workspace",
                       entity_id=workspace.id, after={"name": workspace.name})
    # Imported here: the sales modules import this one.
    from app.domain.pipelines.service import create_default_pipeline

    await create_default_pipeline(session, system)
    owner_principal = Principal(workspace_id=workspace.id, kind="user", id=owner.id,
                                role=Role.owner)
    _, key = await create_api_key(session, owner_principal,
                                  ApiKeyCreate(name="default", scope="read_write"))
    return workspace, owner, key


async def update_workspace(session: AsyncSession, principal: Principal,
                           data: WorkspaceUpdate) -> Workspace:
    principal.require_admin()
    workspace = await lock_current_workspace(session, principal)
    before = {"name": workspace.name, "default_region": workspace.default_region,
              "timezone": workspace.timezone, "settings": workspace.settings}
    changes = data.model_dump(exclude_unset=True, exclude={"settings"})
    for key, value in changes.items():
        if value is None:
            raise ValidationError.at(["body", key], "cannot be null")
        setattr(workspace, key, value)
    if data.settings is not None:
        workspace.settings = {**workspace.settings,
                              **data.settings.model_dump(exclude_none=True)}
    after = {"name": workspace.name, "default_region": workspace.default_region,
             "timezone": workspace.timezone, "settings": workspace.settings}
    await record_event(session, principal, type="workspace.updated", entity_type="workspace",
                       entity_id=workspace.id, before=before, after=after)
    forget_workspace(workspace.id)
    return workspace


# Users

async def create_user(session: AsyncSession, principal: Principal, data: UserCreate) -> User:
    principal.require_admin()
    if data.role == Role.owner and principal.kind == "user" and principal.role != Role.owner:
        raise ValidationError.at(["body", "role"], "only an owner can add another owner")
    user = User(workspace_id=principal.workspace_id, email=str(data.email).lower(),
                full_name=data.full_name, role=data.role,
                password_hash=secrets.hash_password(data.password) if data.password else None)
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a user with email {user.email} already exists") from exc
    await record_event(session, principal, type="user.created", entity_type="user",
                       entity_id=user.id, after=user_public(user))
    return user


def user_public(user: User) -> dict[str, Any]:
    return {"email": user.email, "full_name": user.full_name, "role": user.role,
            "is_active": user.is_active}


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.created_at, User.id))).scalars())


async def update_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID,
                      data: UserUpdate) -> User:
    if principal.user_id != user_id or data.role is not None or data.is_active is not None:
        principal.require_admin()
    user = await get_user(session, user_id)
    # Admins manage the team, not its owners: no taking over, demoting or becoming an owner.
    touches_owner = (user.role == Role.owner and principal.user_id != user_id) \
        or data.role == Role.owner
    if touches_owner and principal.kind == "user" and principal.role != Role.owner:
        raise ForbiddenError("only an owner can change an owner's account or make an owner")
    before = user_public(user)
    changes = data.model_dump(exclude_unset=True)
    if "password" in changes:
        user.password_hash = secrets.hash_password(changes.pop("password"))
    for key, value in changes.items():
        if value is None:
            raise ValidationError.at(["body", key], "cannot be null")
        setattr(user, key, value)
    user.updated_at = clock.now()
    await record_event(session, principal, type="user.updated", entity_type="user",
                       entity_id=user.id, before=before, after=user_public(user))
    return user


async def existing_user_ids(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    cache = lookups(session)
    if cache is not None and cache.user_ids.issuperset(ids):
        return set(ids)
    rows = await session.execute(select(User.id).where(User.id.in_(ids)))
    found = set(rows.scalars())
    if cache is not None:
        cache.user_ids |= found
    return found


async def require_users(session: AsyncSession, ids: list[uuid.UUID], loc: list[str | int]) -> None:
    missing = set(ids) - await existing_user_ids(session, ids)
    if missing:
        raise ValidationError.at(loc, f"no such user in this workspace: {sorted(map(str, missing))}")


# Teams

async def team_member_ids(session: AsyncSession, team_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(select(TeamMember.user_id).where(TeamMember.team_id == team_id))
    return list(rows.scalars())


async def create_team(session: AsyncSession, principal: Principal, data: TeamCreate) -> Team:
    principal.require_admin()
    await require_users(session, [*data.member_ids, *([data.head_id] if data.head_id else [])],
                        ["body", "member_ids"])
    team = Team(workspace_id=principal.workspace_id, name=data.name, head_id=data.head_id)
    try:
        async with session.begin_nested():
            session.add(team)
            await session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a team named {data.name!r} already exists") from exc
    await _set_members(session, principal, team, data.member_ids)
    await record_event(session, principal, type="team.created", entity_type="team",
                       entity_id=team.id, after={"name": team.name,
                                                 "head_id": str(team.head_id) if team.head_id else None,
                                                 "member_ids": sorted(map(str, data.member_ids))})
    return team


async def _set_members(session: AsyncSession, principal: Principal, team: Team,
                       member_ids: list[uuid.UUID]) -> None:
    await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for user_id in dict.fromkeys(member_ids):
        session.add(TeamMember(workspace_id=principal.workspace_id, team_id=team.id,
                               user_id=user_id))
    await session.flush()


async def get_team(session: AsyncSession, team_id: uuid.UUID) -> Team:
    team = (await session.execute(select(Team).where(Team.id == team_id))).scalar_one_or_none()
    if team is None:
        raise NotFoundError(f"team {team_id} not found")
    return team


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.execute(select(Team).order_by(Team.name))).scalars())


async def update_team(session: AsyncSession, principal: Principal, team_id: uuid.UUID,
                      data: TeamUpdate) -> Team:
    principal.require_admin()
    team = await get_team(session, team_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("head_id"):
        await require_users(session, [changes["head_id"]], ["body", "head_id"])
    if changes.get("name"):
        team.name = changes["name"]
    if "head_id" in changes:
        team.head_id = changes["head_id"]
    if data.member_ids is not None:
        await require_users(session, data.member_ids, ["body", "member_ids"])
        await _set_members(session, principal, team, data.member_ids)
    await record_event(session, principal, type="team.updated", entity_type="team",
                       entity_id=team.id, after={k: str(v) if isinstance(v, uuid.UUID) else v
                                                 for k, v in changes.items()
                                                 if k != "member_ids"})
    return team


# API keys

async def create_api_key(session: AsyncSession, principal: Principal, data: ApiKeyCreate
                         ) -> tuple[ApiKey, str]:
    principal.require_admin()
    key_id = new_id()
    token = secrets.new_token(secrets.API_KEY_PREFIX, key_id)
    api_key = ApiKey(workspace_id=principal.workspace_id, id=key_id, name=data.name,
                     scope=data.scope, prefix=token[:12], secret_hash=secrets.digest(token),
                     created_by=principal.actor)
    session.add(api_key)
    await session.flush()
    await record_event(session, principal, type="api_key.created", entity_type="api_key",
                       entity_id=key_id, after={"name": data.name, "scope": data.scope})
    return api_key, token


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    principal.require_admin()
    rows = await session.execute(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
    return list(rows.scalars())


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    principal.require_admin()
    api_key = (await session.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one_or_none()
    if api_key is None:
        raise NotFoundError(f"API key {key_id} not found")
    if api_key.revoked_at is None:
        api_key.revoked_at = clock.now()
        await record_event(session, principal, type="api_key.revoked", entity_type="api_key",
                           entity_id=key_id, after={"name": api_key.name})
    return api_key


async def mark_api_key_used(session: AsyncSession, key_id: uuid.UUID) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id)
                          .values(last_used_at=func.now()))
