"""REST: documents of a deal — generate from a template, list, metadata, download."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status

from app.api.deps import Ctx
from app.api.rest.common import ListResponse
from app.domain.documents import service
from app.domain.documents.schemas import DocumentCreate, DocumentRead

router = APIRouter(tags=["documents"])


@router.post("/api/v1/deals/{deal_id}/documents", status_code=status.HTTP_201_CREATED,
             response_model=DocumentRead)
async def generate_document(deal_id: uuid.UUID, body: DocumentCreate, ctx: Ctx,
                            response: Response) -> DocumentRead:
    """Render a `document` template (an offer, a contract) for the deal: the HTML and a
    PDF, stored with the deal and shown on its timeline (`document.generated`)."""
    document = await service.generate_document(ctx.session, ctx.principal, deal_id=deal_id,
                                               template_id=body.template_id)
    response.headers["Location"] = f"/api/v1/documents/{document.id}"
    return service.to_read(document)


@router.get("/api/v1/deals/{deal_id}/documents", response_model=ListResponse[DocumentRead])
async def list_deal_documents(deal_id: uuid.UUID, ctx: Ctx) -> ListResponse[DocumentRead]:
    """The deal's documents, newest first."""
    documents = await service.list_deal_documents(ctx.session, ctx.principal, deal_id)
    return ListResponse(data=[service.to_read(d) for d in documents], next_cursor=None)


@router.get("/api/v1/documents/{document_id}", response_model=DocumentRead)
async def get_document(document_id: uuid.UUID, ctx: Ctx) -> DocumentRead:
    return service.to_read(await service.get_document(ctx.session, ctx.principal, document_id))


@router.get("/api/v1/documents/{document_id}/content",
            responses={200: {"content": {"application/pdf": {}, "text/html": {}},
                             "description": "The PDF or the HTML"}})
async def document_content(
    document_id: uuid.UUID, ctx: Ctx,
    format: Annotated[Literal["pdf", "html"], Query(description="pdf (default) or html")]
    = "pdf",
) -> Response:
    """Download the document as a PDF or as HTML."""
    document = await service.get_document(ctx.session, ctx.principal, document_id,
                                          with_content=True)
    filename = quote(f"{document.name}.{format}")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
               "X-Content-Type-Options": "nosniff"}
    if format == "html":
        # Served as a download with a locked-down CSP: a template's HTML never runs as
        # part of this origin.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return Response(document.html, media_type="text/html; charset=utf-8", headers=headers)
    return Response(document.pdf, media_type="application/pdf", headers=headers)
