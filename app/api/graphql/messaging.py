"""GraphQL for templates, documents and messages: the same services as REST."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from strawberry.scalars import JSON

from app.api.graphql.common import (
    DeleteResult,
    DeleteSuccess,
    filter_conditions,
    in_savepoint,
    page_info,
    page_of,
    parse_id,
)
from app.api.graphql.loaders import register_loader
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.messaging import (
    Document,
    Message,
    MessageConnection,
    MessageEdge,
    SendMessageInput,
    Template,
    TemplateConnection,
    TemplateEdge,
    TemplateInput,
    TemplatePreview,
)
from app.api.graphql.types.records import input_to_dict
from app.domain.documents import service as documents
from app.domain.documents.models import Document as DocumentModel
from app.domain.messages import service as messages
from app.domain.messages.schemas import MessageCreate
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor
from app.domain.shared.principal import Principal
from app.domain.templates import service as templates
from app.domain.templates.schemas import PreviewContext, TemplateCreate, TemplateUpdate


async def _deal_documents(session: AsyncSession, principal: Principal,
                          deal_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Documents of deals already resolved (so visible), newest first, in one query."""
    rows = (await session.execute(
        select(DocumentModel).options(defer(DocumentModel.html), defer(DocumentModel.pdf))
        .where(DocumentModel.deal_id.in_(deal_ids), DocumentModel.deleted_at.is_(None))
        .order_by(DocumentModel.created_at.desc(), DocumentModel.id.desc()))).scalars()
    found: dict[uuid.UUID, list[Any]] = {i: [] for i in deal_ids}
    for row in rows:
        found[row.deal_id].append(row)
    return found


register_loader("deal_documents", _deal_documents)


@strawberry.type
class MessagingQuery:
    @strawberry.field(description="One template by id; null when it does not exist.")
    async def template(self, info: strawberry.Info, id: strawberry.ID) -> Template | None:
        async with info.context.db_lock:
            try:
                return Template.of(await templates.get_template(
                    info.context.session, info.context.principal, parse_id(id, "template")))
            except DomainNotFound:
                return None

    @strawberry.field(description="Templates, newest first. `filter` as in the REST search "
                                  "JSON (e.g. {\"field\": \"kind\", \"op\": \"eq\", "
                                  "\"value\": \"email\"}).")
    async def templates(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                        filter: JSON | None = None) -> TemplateConnection:
        async with info.context.db_lock:
            rows, next_cursor = await templates.list_templates(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, templates.LIST_SPEC, filter),
                page=page_of(first, after, None))
        edges = [TemplateEdge(cursor=row_cursor(templates.LIST_SPEC, None, t),
                              node=Template.of(t)) for t in rows]
        return TemplateConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="One message by id; null when it does not exist or is not "
                                  "visible to you.")
    async def message(self, info: strawberry.Info, id: strawberry.ID) -> Message | None:
        async with info.context.db_lock:
            try:
                return Message.of(await messages.get_message(
                    info.context.session, info.context.principal, parse_id(id, "message")))
            except DomainNotFound:
                return None

    @strawberry.field(description="Emails and SMS, newest first, with their delivery status.")
    async def messages(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                       filter: JSON | None = None) -> MessageConnection:
        async with info.context.db_lock:
            rows, next_cursor = await messages.list_messages(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, messages.LIST_SPEC, filter),
                page=page_of(first, after, None))
        edges = [MessageEdge(cursor=row_cursor(messages.LIST_SPEC, None, m),
                             node=Message.of(m)) for m in rows]
        return MessageConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="One document by id; null when it does not exist or its "
                                  "deal is not visible to you.")
    async def document(self, info: strawberry.Info, id: strawberry.ID) -> Document | None:
        async with info.context.db_lock:
            try:
                return Document.of(await documents.get_document(
                    info.context.session, info.context.principal, parse_id(id, "document")))
            except DomainNotFound:
                return None


# Every result carries the same error types, so a client can select them all (ERRORS).
TemplateResult = Annotated[
    Template | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("TemplateResult")]
TemplatePreviewResult = Annotated[
    TemplatePreview | ValidationError | ConflictError | NotFoundError
    | PreconditionFailedError | ForbiddenError, strawberry.union("TemplatePreviewResult")]
MessageResult = Annotated[
    Message | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("MessageResult")]
DocumentResult = Annotated[
    Document | ValidationError | ConflictError | NotFoundError | PreconditionFailedError
    | ForbiddenError, strawberry.union("DocumentResult")]


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(description="Owners and admins. A syntax error or a reach for "
                                     "Python internals is a ValidationError at the part.")
    async def create_template(self, info: strawberry.Info,
                              input: TemplateInput) -> TemplateResult:
        async def run() -> Template:
            data = TemplateCreate.model_validate(input_to_dict(input))
            return Template.of(await templates.create_template(
                info.context.session, info.context.principal, data))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a template; `version` refuses a lost "
                                     "update.")
    async def update_template(self, info: strawberry.Info, id: strawberry.ID,
                              input: TemplateInput, version: int | None = None
                              ) -> TemplateResult:
        async def run() -> Template:
            data = TemplateUpdate.model_validate(input_to_dict(input))
            return Template.of(await templates.update_template(
                info.context.session, info.context.principal, parse_id(id, "template"), data,
                expected_version=version))
        return await in_savepoint(info, run)

    @strawberry.mutation
    async def delete_template(self, info: strawberry.Info, id: strawberry.ID,
                              version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            await templates.delete_template(info.context.session, info.context.principal,
                                            parse_id(id, "template"), expected_version=version)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Render a saved template with a card's variables; "
                                     "nothing is written.")
    async def preview_template(self, info: strawberry.Info, id: strawberry.ID,
                               contact_id: strawberry.ID | None = None,
                               deal_id: strawberry.ID | None = None,
                               company_id: strawberry.ID | None = None,
                               variables: JSON | None = None) -> TemplatePreviewResult:
        async def run() -> TemplatePreview:
            template = await templates.get_template(
                info.context.session, info.context.principal, parse_id(id, "template"))
            context = PreviewContext.model_validate({
                "contact_id": contact_id, "deal_id": deal_id, "company_id": company_id,
                "variables": variables})
            shown = await templates.preview(
                info.context.session, info.context.principal, kind=template.kind,
                subject=template.subject, body=template.body, format_=template.format,
                context=context, loc=["template"])
            return TemplatePreview(subject=shown.subject, body=shown.body,
                                   variables=shown.variables)
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Queue an email or SMS (sent by the worker within "
                                     "seconds, or at `sendAt`).")
    async def send_message(self, info: strawberry.Info,
                           input: SendMessageInput) -> MessageResult:
        async def run() -> Message:
            data = MessageCreate.model_validate(input_to_dict(input))
            return Message.of(await messages.queue_message(
                info.context.session, info.context.principal, channel=data.channel,
                contact_id=data.contact_id, to=data.to, template_id=data.template_id,
                subject=data.subject, body=data.body, deal_id=data.deal_id,
                send_at=data.send_at, document_ids=data.document_ids,
                variables_from={"variables": data.variables} if data.variables else None))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Render a document template for the deal to HTML and "
                                     "PDF.")
    async def generate_document(self, info: strawberry.Info, deal_id: strawberry.ID,
                                template_id: strawberry.ID) -> DocumentResult:
        async def run() -> Document:
            return Document.of(await documents.generate_document(
                info.context.session, info.context.principal,
                deal_id=parse_id(deal_id, "dealId"),
                template_id=parse_id(template_id, "templateId")))
        return await in_savepoint(info, run, body=None)


QUERY_TYPES: list[type] = [MessagingQuery]
MUTATION_TYPES: list[type] = [MessagingMutation]
