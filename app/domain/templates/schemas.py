"""Template request and response shapes, and the preview request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.tasks.schemas import _no_nul, _storable_json

TemplateKind = Literal["email", "sms", "document"]
DocumentFormat = Literal["html", "text"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
Subject = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=100_000),
                 AfterValidator(_no_nul)]
Variables = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_storable_json)]


class TemplateFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    subject: Subject | None = Field(default=None, description="Emails only: the subject line "
                                    "(a template too)")
    body: Body | None = Field(default=None, description="Jinja2 (sandboxed): `{{ contact."
                              "first_name }}`, `{% for item in deal.line_items %}`")
    format: DocumentFormat | None = Field(default=None, description="Documents only: `html` "
                                          "(default) or `text` (shown preformatted)")


class TemplateCreate(TemplateFields):
    kind: TemplateKind
    name: Name
    body: Body


class TemplateUpdate(TemplateFields):
    """JSON merge-patch; the kind of a template is fixed."""


class TemplateRead(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    subject: str | None
    body: str
    format: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str


class PreviewContext(BaseModel):
    """Which records fill the variables — or the variables themselves."""

    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    variables: Variables | None = Field(
        default=None, description="Extra variables, merged over the records' (e.g. a "
                                  "`contact` object to try a template without a real card)")


class TemplatePreviewRequest(PreviewContext):
    kind: TemplateKind
    subject: Subject | None = None
    body: Body
    format: DocumentFormat | None = None


class TemplatePreview(BaseModel):
    subject: str | None = Field(description="The rendered subject (emails)")
    body: str = Field(description="The rendered body")
    variables: dict[str, Any] = Field(description="What the template saw")
