"""REST: /api/v1/users and /api/v1/teams."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import Ctx
from app.api.rest.common import ListResponse
from app.domain.workspaces import service
from app.domain.workspaces.models import Team, User
from app.domain.workspaces.schemas import (
    TeamCreate,
    TeamRead,
    TeamUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)

users = APIRouter(prefix="/api/v1/users", tags=["users"])
teams = APIRouter(prefix="/api/v1/teams", tags=["teams"])


def user_read(user: User) -> UserRead:
    return UserRead.model_validate(user, from_attributes=True)


@users.get("", response_model=ListResponse[UserRead])
async def list_users(ctx: Ctx) -> ListResponse[UserRead]:
    return ListResponse(data=[user_read(u) for u in await service.list_users(ctx.session)],
                        next_cursor=None)


@users.post("", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def create_user(body: UserCreate, ctx: Ctx, response: Response) -> UserRead:
    user = await service.create_user(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user_read(user)


@users.get("/{user_id}", response_model=UserRead)
async def get_user(user_id: uuid.UUID, ctx: Ctx) -> UserRead:
    return user_read(await service.get_user(ctx.session, user_id))


@users.patch("/{user_id}", response_model=UserRead)
async def update_user(user_id: uuid.UUID, body: UserUpdate, ctx: Ctx) -> UserRead:
    return user_read(await service.update_user(ctx.session, ctx.principal, user_id, body))


async def team_read(ctx: Ctx, team: Team) -> TeamRead:
    members = await service.team_member_ids(ctx.session, team.id)
    return TeamRead(id=team.id, name=team.name, head_id=team.head_id, member_ids=members,
                    created_at=team.created_at)


@teams.get("", response_model=ListResponse[TeamRead])
async def list_teams(ctx: Ctx) -> ListResponse[TeamRead]:
    return ListResponse(data=[await team_read(ctx, t) for t in
                              await service.list_teams(ctx.session)], next_cursor=None)


@teams.post("", status_code=status.HTTP_201_CREATED, response_model=TeamRead)
async def create_team(body: TeamCreate, ctx: Ctx, response: Response) -> TeamRead:
    team = await service.create_team(ctx.session, ctx.principal, body)
    response.headers["Location"] = f"/api/v1/teams/{team.id}"
    return await team_read(ctx, team)


@teams.get("/{team_id}", response_model=TeamRead)
async def get_team(team_id: uuid.UUID, ctx: Ctx) -> TeamRead:
    return await team_read(ctx, await service.get_team(ctx.session, team_id))


@teams.patch("/{team_id}", response_model=TeamRead)
async def update_team(team_id: uuid.UUID, body: TeamUpdate, ctx: Ctx) -> TeamRead:
    return await team_read(ctx, await service.update_team(ctx.session, ctx.principal, team_id,
                                                          body))
