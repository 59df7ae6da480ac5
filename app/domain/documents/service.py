"""Documents: an offer or a contract rendered for a deal from a document template.

The template sees the deal's variables (record_variables: buyer, company, line items,
amount, stage, owner) plus the deal's tasks (`tasks`, newest first) and `task_data`, the
data of its completed tasks merged oldest to newest — the measurer's sizes, say. The HTML
and its PDF are kept in PostgreSQL (small, transactional, backed up with the rest); the
list and metadata reads never load the content. Whoever can see the deal sees its documents."""

from __future__ import annotations

import asyncio
import html as html_lib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.domain.deals.models import Deal
from app.domain.documents.models import Document
from app.domain.documents.pdf import html_to_pdf
from app.domain.documents.schemas import DocumentRead
from app.domain.outbox.service import record_event
from app.domain.shared import records
from app.domain.shared.errors import NotFoundError
from app.domain.shared.principal import Principal
from app.domain.tasks.models import Task
from app.domain.templates.sandbox import render_text
from app.domain.templates.service import require_template
from app.domain.templates.variables import record_variables

_METADATA_ONLY = (defer(Document.html), defer(Document.pdf))
MAX_DEAL_TASKS = 50


def to_read(document: Document) -> DocumentRead:
    base = f"/api/v1/documents/{document.id}/content"
    return DocumentRead(id=document.id, deal_id=document.deal_id,
                        template_id=document.template_id, name=document.name,
                        html_size=document.html_size, pdf_size=document.pdf_size,
                        html_url=f"{base}?format=html", pdf_url=f"{base}?format=pdf",
                        created_at=document.created_at, created_by=document.created_by)


async def _task_variables(session: AsyncSession, deal_id: uuid.UUID) -> dict[str, Any]:
    tasks = list((await session.execute(
        select(Task).where(Task.deal_id == deal_id, Task.deleted_at.is_(None))
        .order_by(Task.created_at.desc(), Task.id.desc()).limit(MAX_DEAL_TASKS))).scalars())
    merged: dict[str, Any] = {}
    for task in sorted((t for t in tasks if t.status == "done"),
                       key=lambda t: (t.completed_at or t.created_at, t.id)):
        merged.update(task.data)
    return {"tasks": [records.snapshot(t) for t in tasks], "task_data": merged}


def _as_html(text: str, format_: str | None, title: str) -> str:
    if format_ == "text":
        return f"<pre>{html_lib.escape(text)}</pre>"
    return text if "<html" in text.lower() else \
        f"<html><head><meta charset=\"utf-8\"><title>{html_lib.escape(title)}</title></head>" \
        f"<body>{text}</body></html>"


async def generate_document(session: AsyncSession, principal: Principal, *,
                            deal_id: uuid.UUID, template_id: uuid.UUID) -> Document:
    """Render the template for the deal to HTML and PDF, store both, record
    `document.generated` on the deal. 404 for a deal you cannot see, 422 for a template
    that is not a live document template or does not render."""
    principal.require_write()
    deal = await records.get_visible(session, Deal, principal, deal_id)
    template = await require_template(session, principal, template_id, ("document",),
                                      ["body", "template_id"])
    variables = await record_variables(session, principal, deal_id=deal.id)
    if "task" in template.body:  # only then: `tasks`, `task_data`
        variables.update(await _task_variables(session, deal.id))
    name = f"{template.name} — {deal.title}"
    rendered = render_text(template.body, variables, loc=["template", "body"],
                           html=template.format != "text")
    html = _as_html(rendered, template.format, name)
    pdf = await asyncio.to_thread(html_to_pdf, html, title=name)
    document = Document(workspace_id=principal.workspace_id, deal_id=deal.id,
                        template_id=template.id, name=name, html=html, pdf=pdf,
                        html_size=len(html), pdf_size=len(pdf), created_by=principal.actor,
                        updated_by=principal.actor)
    session.add(document)
    await session.flush()
    await record_event(session, principal, type="document.generated", entity_type="deal",
                       entity_id=deal.id, after={
                           "document_id": str(document.id), "template_id": str(template.id),
                           "name": name, "pdf_size": document.pdf_size})
    return document


async def get_document(session: AsyncSession, principal: Principal, document_id: uuid.UUID,
                       *, with_content: bool = False) -> Document:
    """A document of a deal the caller can see (404 otherwise)."""
    query = select(Document).where(Document.id == document_id, Document.deleted_at.is_(None))
    if not with_content:
        query = query.options(*_METADATA_ONLY)
    document = (await session.execute(query)).scalar_one_or_none()
    if document is None:
        raise NotFoundError(f"document {document_id} not found")
    try:
        await records.get_visible(session, Deal, principal, document.deal_id)
    except NotFoundError:
        raise NotFoundError(f"document {document_id} not found") from None
    return document


async def documents_by_ids(session: AsyncSession, principal: Principal,
                           ids: list[uuid.UUID]) -> list[Document]:
    """Documents with content, in the order asked (attachments); each must be visible."""
    return [await get_document(session, principal, i, with_content=True) for i in ids]


async def list_deal_documents(session: AsyncSession, principal: Principal,
                              deal_id: uuid.UUID) -> list[Document]:
    """The deal's documents, newest first (a deal has few)."""
    await records.get_visible(session, Deal, principal, deal_id)
    return list((await session.execute(
        select(Document).options(*_METADATA_ONLY)
        .where(Document.deal_id == deal_id, Document.deleted_at.is_(None))
        .order_by(Document.created_at.desc(), Document.id.desc()).limit(200))).scalars())
