"""Resolving bearer tokens to principals, and the OAuth2 password and refresh grants."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_workspace
from app.domain.shared.clock import clock
from app.domain.shared.errors import DomainError, UnauthenticatedError
from app.domain.shared.ids import new_id
from app.domain.shared.principal import Principal, Role, Scope
from app.domain.workspaces import secrets
from app.domain.workspaces.models import RefreshToken, Team, TeamMember, User, Workspace

INVALID = "invalid or expired credentials"


class TokenRequestError(DomainError):
    """A refused token request, as RFC 6749 section 5.2 has it: a 400 whose problem also
    carries OAuth2's own `error` and `error_description` members, which OAuth2 client
    libraries read."""

    status = 400
    error = "invalid_request"
    title, type_slug = "Invalid request", "invalid-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"error": self.error, "error_description": detail})


class InvalidGrantError(TokenRequestError):
    """Wrong credentials, or a refresh token that is unknown, used, revoked or expired."""

    error, title, type_slug = "invalid_grant", "Invalid grant", "invalid-grant"


class UnsupportedGrantTypeError(TokenRequestError):
    error = "unsupported_grant_type"
    title, type_slug = "Unsupported grant type", "unsupported-grant-type"


async def principal_for_api_key(session: AsyncSession, token: str) -> Principal:
    key_id = secrets.parse_token_id(token, secrets.API_KEY_PREFIX)
    if key_id is None:
        raise UnauthenticatedError(INVALID)
    row = (await session.execute(text("select * from relata_api_key_lookup(:id)"),
                                 {"id": key_id})).first()
    if row is None or row.revoked or not secrets.digest_matches(token, row.secret_hash):
        raise UnauthenticatedError(INVALID)
    return Principal(workspace_id=row.workspace_id, kind="api_key", id=key_id,
                     role=Role.admin, scope=Scope(row.scope))


async def principal_for_user(session: AsyncSession, workspace_id: uuid.UUID,
                             user_id: uuid.UUID) -> Principal:
    await set_workspace(session, workspace_id)
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None or not user.is_active:
        raise UnauthenticatedError(INVALID)
    role = Role(user.role)
    teams = (await session.execute(
        select(Team.id).outerjoin(TeamMember, TeamMember.team_id == Team.id)
        .where(or_(Team.head_id == user_id, TeamMember.user_id == user_id)).distinct()
    )).scalars().all()
    team_ids = frozenset(teams)
    if role in (Role.owner, Role.admin):
        return Principal(workspace_id=workspace_id, kind="user", id=user_id, role=role,
                         team_ids=team_ids)
    settings = (await session.execute(select(Workspace.settings))).scalar_one()
    sees_team = role == Role.manager or bool(settings.get("agents_see_team"))
    visible = {user_id}
    if sees_team and team_ids:
        members = await session.execute(select(TeamMember.user_id)
                                        .where(TeamMember.team_id.in_(team_ids)))
        heads = await session.execute(select(Team.head_id).where(Team.id.in_(team_ids)))
        visible |= set(members.scalars()) | {h for h in heads.scalars() if h}
    return Principal(workspace_id=workspace_id, kind="user", id=user_id, role=role,
                     visible_owner_ids=frozenset(visible), sees_unowned=role == Role.manager,
                     team_ids=team_ids)


async def principal_for_access_token(session: AsyncSession, token: str,
                                     secret_key: str) -> Principal:
    claims = secrets.read_access_token(token, secret=secret_key)
    if claims is None:
        raise UnauthenticatedError(INVALID)
    workspace_id, user_id = claims
    return await principal_for_user(session, workspace_id, user_id)


async def _issue_tokens(session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID, *,
                        secret_key: str, access_minutes: int, refresh_days: int
                        ) -> dict[str, object]:
    now = clock.now()
    refresh_id = new_id()
    refresh = secrets.new_token(secrets.REFRESH_PREFIX, refresh_id)
    session.add(RefreshToken(workspace_id=workspace_id, id=refresh_id, user_id=user_id,
                             secret_hash=secrets.digest(refresh),
                             expires_at=now + timedelta(days=refresh_days)))
    await session.flush()
    access = secrets.issue_access_token(secret=secret_key, user_id=user_id,
                                        workspace_id=workspace_id, now=now,
                                        minutes=access_minutes)
    return {"access_token": access, "token_type": "bearer", "expires_in": access_minutes * 60,
            "refresh_token": refresh}


async def password_grant(session: AsyncSession, *, email: str, password: str,
                         workspace_id: uuid.UUID | None, secret_key: str,
                         access_minutes: int, refresh_days: int) -> dict[str, object]:
    rows = (await session.execute(text("select * from relata_user_login_lookup(:email)"),
                                  {"email": email.strip().lower()})).all()
    if workspace_id is not None:
        rows = [r for r in rows if r.workspace_id == workspace_id]
    matches = [r for r in rows if r.is_active and secrets.verify_password(password, r.password_hash)]
    if not rows:
        secrets.verify_password(password, None)
    if not matches:
        raise InvalidGrantError(INVALID)
    if len(matches) > 1:
        raise InvalidGrantError("this login belongs to several workspaces; "
                                "send workspace_id with the request")
    row = matches[0]
    await set_workspace(session, row.workspace_id)
    return await _issue_tokens(session, row.workspace_id, row.user_id, secret_key=secret_key,
                               access_minutes=access_minutes, refresh_days=refresh_days)


async def refresh_grant(session: AsyncSession, *, refresh_token: str, secret_key: str,
                        access_minutes: int, refresh_days: int) -> dict[str, object]:
    """Rotates the refresh token: the old one stops working."""
    token_id = secrets.parse_token_id(refresh_token, secrets.REFRESH_PREFIX)
    if token_id is None:
        raise InvalidGrantError(INVALID)
    row = (await session.execute(text("select * from relata_refresh_token_lookup(:id)"),
                                 {"id": token_id})).first()
    if (row is None or row.revoked or row.expires_at <= clock.now()
            or not secrets.digest_matches(refresh_token, row.secret_hash)):
        raise InvalidGrantError(INVALID)
    await set_workspace(session, row.workspace_id)
    stored = (await session.execute(select(RefreshToken).where(RefreshToken.id == token_id)
                                    .with_for_update())).scalar_one()
    if stored.revoked_at is not None:
        raise InvalidGrantError(INVALID)
    stored.revoked_at = clock.now()
    user = (await session.execute(select(User).where(User.id == row.user_id))).scalar_one_or_none()
    if user is None or not user.is_active:
        raise InvalidGrantError(INVALID)
    return await _issue_tokens(session, row.workspace_id, row.user_id, secret_key=secret_key,
                               access_minutes=access_minutes, refresh_days=refresh_days)
