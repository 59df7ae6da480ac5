from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain.customfields.validation import FIELD_TYPES

ObjectType = Literal["contact", "company", "deal"]
FieldType = Literal["text", "number", "money", "date", "datetime", "boolean", "select",
                    "multiselect", "phone", "email", "url", "user"]
assert set(FieldType.__args__) == set(FIELD_TYPES)  # type: ignore[attr-defined]


class CustomFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_type: ObjectType
    key: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=200)
    type: FieldType
    options: list[str] = Field(default_factory=list, max_length=500)
    required: bool = False

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError("key must be lowercase letters, digits and _ , starting with a letter")
        return value


class CustomFieldUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=200)
    options: list[str] | None = Field(default=None, max_length=500)
    required: bool | None = None


class CustomFieldRead(BaseModel):
    id: uuid.UUID
    object_type: str
    key: str
    label: str
    type: str
    options: list[str]
    required: bool
    version: int
    created_at: datetime
    updated_at: datetime
