"""Who is acting: a user or an API key, inside one workspace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from app.domain.shared.errors import ForbiddenError


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    manager = "manager"
    agent = "agent"


class Scope(StrEnum):
    read = "read"
    read_write = "read_write"


@dataclass(frozen=True)
class Principal:
    workspace_id: uuid.UUID
    kind: str  # "user" | "api_key" | "system"
    id: uuid.UUID | None
    role: Role = Role.admin
    scope: Scope = Scope.read_write
    # Owner ids this principal may see; None means every record in the workspace.
    visible_owner_ids: frozenset[uuid.UUID] | None = None
    # Whether records without an owner are visible (leads waiting to be assigned).
    sees_unowned: bool = True
    team_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    # Set when a pipeline rule acts: the run whose actions cause the change, and how many
    # automation steps deep the chain already is (loop protection, DESIGN.md).
    cause_run_id: uuid.UUID | None = None
    depth: int = 0

    @cached_property  # a cached principal serves many requests, each naming its actor
    def actor(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.id if self.kind == "user" else None

    @property
    def fills_required_fields(self) -> bool:
        """Required custom fields bind people and API clients. A lead that arrives by
        itself — a web form, a call, an email — or a rule or sweep acting on a card is taken
        with what it carries; a person completes the card later."""
        return self.kind in ("user", "api_key")

    def require_write(self) -> None:
        if self.scope != Scope.read_write:
            raise ForbiddenError("this API key is read-only")

    def require_admin(self) -> None:
        if self.kind == "user" and self.role not in (Role.owner, Role.admin):
            raise ForbiddenError("only owners and admins may do this")
        self.require_write()

    def can_see_owner(self, owner_id: uuid.UUID | None) -> bool:
        if self.visible_owner_ids is None:
            return True
        if owner_id is None:
            return self.sees_unowned
        return owner_id in self.visible_owner_ids


def system_principal(workspace_id: uuid.UUID) -> Principal:
    return Principal(workspace_id=workspace_id, kind="system", id=None)


def rule_principal(workspace_id: uuid.UUID, rule_id: uuid.UUID, *, run_id: uuid.UUID,
                   depth: int) -> Principal:
    """A pipeline rule acting: it sees the whole workspace and its changes name the rule."""
    return Principal(workspace_id=workspace_id, kind="rule", id=rule_id, cause_run_id=run_id,
                     depth=depth)
