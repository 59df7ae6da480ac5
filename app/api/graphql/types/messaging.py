"""GraphQL object and input types for templates, documents and messages."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from strawberry.scalars import JSON

from app.api.graphql.types.common import PageInfo
from app.domain.documents.models import Document as DocumentModel
from app.domain.documents.service import to_read as document_read
from app.domain.messages.models import Message as MessageModel
from app.domain.templates.models import Template as TemplateModel


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="An email, SMS or document template (sandboxed Jinja2)")
class Template:
    id: strawberry.ID
    kind: str = strawberry.field(description="email, sms or document")
    name: str
    subject: str | None
    body: str
    format: str | None = strawberry.field(description="Documents: html or text")
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, t: TemplateModel) -> Template:
        return cls(id=strawberry.ID(str(t.id)), kind=t.kind, name=t.name, subject=t.subject,
                   body=t.body, format=t.format, version=t.version, created_at=t.created_at,
                   updated_at=t.updated_at)


@strawberry.type
class TemplateEdge:
    cursor: str
    node: Template


@strawberry.type
class TemplateConnection:
    edges: list[TemplateEdge]
    page_info: PageInfo


@strawberry.type
class TemplatePreview:
    subject: str | None
    body: str
    variables: JSON = strawberry.field(description="What the template saw")


@strawberry.type(description="A document generated for a deal: HTML and PDF")
class Document:
    id: strawberry.ID
    deal_id: strawberry.ID
    template_id: strawberry.ID | None
    name: str
    html_size: int
    pdf_size: int
    html_url: str = strawberry.field(description="REST download of the HTML")
    pdf_url: str = strawberry.field(description="REST download of the PDF")
    created_at: datetime.datetime
    created_by: str

    @classmethod
    def of(cls, d: DocumentModel) -> Document:
        r = document_read(d)
        return cls(id=strawberry.ID(str(r.id)), deal_id=strawberry.ID(str(r.deal_id)),
                   template_id=_id(r.template_id), name=r.name, html_size=r.html_size,
                   pdf_size=r.pdf_size, html_url=r.html_url, pdf_url=r.pdf_url,
                   created_at=r.created_at, created_by=r.created_by)


@strawberry.type(description="An email or SMS and its delivery status")
class Message:
    id: strawberry.ID
    channel: str
    status: str = strawberry.field(description="scheduled, queued, sending, sent or failed")
    contact_id: strawberry.ID | None
    deal_id: strawberry.ID | None
    template_id: strawberry.ID | None
    to: str
    subject: str | None
    body: str
    document_ids: list[strawberry.ID]
    send_at: datetime.datetime | None
    attempts: int
    message_key: str
    provider: str | None
    provider_message_id: str | None
    last_error: str | None
    sent_at: datetime.datetime | None
    failed_at: datetime.datetime | None
    created_at: datetime.datetime
    version: int

    @classmethod
    def of(cls, m: MessageModel) -> Message:
        return cls(id=strawberry.ID(str(m.id)), channel=m.channel, status=m.status,
                   contact_id=_id(m.contact_id), deal_id=_id(m.deal_id),
                   template_id=_id(m.template_id), to=m.to, subject=m.subject, body=m.body,
                   document_ids=[strawberry.ID(str(i)) for i in m.document_ids],
                   send_at=m.send_at, attempts=m.attempts, message_key=m.message_key,
                   provider=m.provider, provider_message_id=m.provider_message_id,
                   last_error=m.last_error, sent_at=m.sent_at, failed_at=m.failed_at,
                   created_at=m.created_at, version=m.version)


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo


@strawberry.input(description="Fields of a template; on update, omitted fields stay.")
class TemplateInput:
    kind: str | None = strawberry.field(default=strawberry.UNSET,
                                        description="Create only: email, sms or document")
    name: str | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    format: str | None = strawberry.UNSET


@strawberry.input(description="An email or SMS to send now or at `sendAt`")
class SendMessageInput:
    channel: str
    contact_id: strawberry.ID | None = strawberry.UNSET
    to: str | None = strawberry.UNSET
    deal_id: strawberry.ID | None = strawberry.UNSET
    template_id: strawberry.ID | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    send_at: datetime.datetime | None = strawberry.UNSET
    document_ids: list[strawberry.ID] | None = strawberry.UNSET
    variables: JSON | None = strawberry.UNSET
