"""Document request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DocumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: uuid.UUID = Field(description="A template of kind `document`")


class DocumentRead(BaseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    template_id: uuid.UUID | None
    name: str
    html_size: int = Field(description="Characters of the rendered HTML")
    pdf_size: int = Field(description="Bytes of the PDF")
    html_url: str = Field(description="Download the HTML")
    pdf_url: str = Field(description="Download the PDF")
    created_at: datetime
    created_by: str
