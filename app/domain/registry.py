"""Imports every table so SQLModel.metadata is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from app.domain.companies.models import Company  # noqa: F401
from app.domain.contacts.models import Contact, ContactIdentity  # noqa: F401
from app.domain.customfields.models import CustomFieldDefinition  # noqa: F401
from app.domain.outbox.models import Event  # noqa: F401
from app.domain.workspaces.models import (  # noqa: F401
    ApiKey,
    RefreshToken,
    Team,
    TeamMember,
    User,
    Workspace,
)

metadata = SQLModel.metadata
