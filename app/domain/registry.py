"""Imports every table so SQLModel.metadata is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from app.domain.activities.models import Activity  # noqa: F401
from app.domain.automations.models import RoundRobinTurn, Rule, RuleRun, ScheduledAction  # noqa: F401
from app.domain.companies.models import Company  # noqa: F401
from app.domain.contacts.models import Contact, ContactIdentity  # noqa: F401
from app.domain.customfields.models import CustomFieldDefinition  # noqa: F401
from app.domain.deals.models import Deal, DealContact, StageInterval  # noqa: F401
from app.domain.documents.models import Document  # noqa: F401
from app.domain.forms.models import Form, FormSubmission  # noqa: F401
from app.domain.imports.models import ImportJob, ImportRecord, ImportRejection  # noqa: F401
from app.domain.inbound_email.models import EmailMessage  # noqa: F401
from app.domain.inbox.models import InboundMessage, InboxItem  # noqa: F401
from app.domain.integrations.models import Integration  # noqa: F401
from app.domain.messages.models import Message  # noqa: F401
from app.domain.notifications.models import Notification  # noqa: F401
from app.domain.outbox.models import Event  # noqa: F401
from app.domain.pipelines.models import Pipeline, Stage  # noqa: F401
from app.domain.tasks.models import Task  # noqa: F401
from app.domain.templates.models import Template  # noqa: F401
from app.domain.webhooks.models import (  # noqa: F401
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.domain.workspaces.models import (  # noqa: F401
    ApiKey,
    RefreshToken,
    Team,
    TeamMember,
    User,
    Workspace,
)

metadata = SQLModel.metadata
