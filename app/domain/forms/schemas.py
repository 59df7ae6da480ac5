"""Form definitions, their public view, and submissions: request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.domain.tasks.schemas import _no_nul

FieldType = Literal["text", "email", "phone", "textarea", "select", "checkbox", "hidden"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
# The longest value each type takes (a field may set a smaller max_length).
MAX_VALUE_LENGTH = {"text": 500, "email": 320, "phone": 40, "textarea": 5000, "select": 200,
                    "checkbox": 5, "hidden": 2000}
MAX_FIELDS = 50
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Keys a submission may carry besides the form's own fields.
CAPTURE_KEYS = (*UTM_KEYS, "referrer", "page_url", "submission_id")

FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$"), Field(
    description="What the submission's key is: lowercase letters, digits, `_`")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                  AfterValidator(_no_nul)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
Target = Annotated[str, StringConstraints(
    max_length=100, pattern=r"^(contact|deal)\.([a-z_]+|custom\.[a-z][a-z0-9_]{0,62})$"), Field(
    description="Where the value lands: `contact.first_name`, `contact.last_name`, "
                "`contact.middle_name`, `contact.full_name`, `contact.phone`, "
                "`contact.email`, `contact.custom.<key>`, `deal.title`, `deal.amount`, "
                "`deal.custom.<key>`", examples=["contact.phone"])]
Url = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$"),
                AfterValidator(_no_nul)]
Origin = Annotated[str, StringConstraints(min_length=1, max_length=300), Field(
    description="scheme://host[:port], e.g. https://okna.example", examples=[
        "https://okna.example"])]
SuccessMessage = Annotated[str, StringConstraints(min_length=1, max_length=1000),
                           AfterValidator(_no_nul)]
DEFAULT_SUCCESS = "Thank you! We will contact you shortly."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormFieldSpec(Strict):
    name: FieldName
    label: Label
    type: FieldType = "text"
    required: bool = False
    options: list[ShortText] = Field(default_factory=list, max_length=100,
                                     description="The choices of a select field")
    maps_to: Target | None = Field(default=None, description=(
        "The card or deal field the value fills; unmapped values are kept on the "
        "submission, the inbox item and the form.submitted event"))
    placeholder: ShortText | None = None
    max_length: int | None = Field(default=None, ge=1, le=5000, description=(
        "At most the type's own limit (text 500, textarea 5000, …)"))
    value: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)] | None \
        = Field(default=None, description="A hidden field's fixed value (a campaign name)")

    @model_validator(mode="after")
    def _consistent(self) -> FormFieldSpec:
        if self.type == "select" and not self.options:
            raise ValueError("a select field needs options")
        if self.type != "select" and self.options:
            raise ValueError("only a select field has options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be unique")
        if self.max_length is not None and self.max_length > MAX_VALUE_LENGTH[self.type]:
            raise ValueError(f"a {self.type} field takes at most "
                             f"{MAX_VALUE_LENGTH[self.type]} characters")
        if self.value is not None and self.type != "hidden":
            raise ValueError("only a hidden field has a fixed value")
        return self

    @property
    def limit(self) -> int:
        return self.max_length or MAX_VALUE_LENGTH[self.type]


class NoOwner(Strict):
    """Deals and new cards from the form have no owner (a rule may assign one)."""
    strategy: Literal["none"]


class FixedOwner(Strict):
    strategy: Literal["user"]
    user_id: uuid.UUID


class TeamRoundRobin(Strict):
    """The team's active members in turn (the same turns as the rules' round-robin)."""
    strategy: Literal["round_robin"]
    team_id: uuid.UUID


OwnerStrategy = Annotated[NoOwner | FixedOwner | TeamRoundRobin,
                          Field(discriminator="strategy")]


class FormFields(Strict):
    name: Label | None = None
    fields: list[FormFieldSpec] | None = Field(default=None, min_length=1,
                                               max_length=MAX_FIELDS)
    pipeline_id: uuid.UUID | None = Field(default=None, description=(
        "Where submissions become deals; none: only the card and a `new` inbox item"))
    stage_id: uuid.UUID | None = Field(default=None, description=(
        "Default: the pipeline's first open stage"))
    owner: OwnerStrategy | None = Field(default=None, description=(
        "Who gets the deal (and a new card): `none`, a `user`, or `round_robin` in a team"))
    allowed_origins: list[Origin] | None = Field(default=None, max_length=50, description=(
        "The sites whose pages may post the form from a browser (CORS); requests without an "
        "Origin (a server, curl) are always taken"))
    success_message: SuccessMessage | None = None
    redirect_url: Url | None = Field(default=None, description=(
        "Where the browser goes after a successful submission, instead of the message"))
    source: Annotated[str, StringConstraints(min_length=1, max_length=200),
                      AfterValidator(_no_nul)] | None = Field(default=None, description=(
        "The `source` of new cards and of deals (default `website`)"))
    honeypot_field: FieldName | None = Field(default=None, description=(
        "A hidden input people never fill; a submission that fills it is answered as a "
        "success and dropped (default `website`)"))
    submissions_per_minute: int | None = Field(default=None, ge=1, le=100_000, description=(
        "This form's limit across all senders (default: the server's "
        "RELATA_FORM_SUBMISSIONS_PER_FORM_PER_MINUTE)"))
    enabled: bool | None = None


class FormCreate(FormFields):
    name: Label
    fields: list[FormFieldSpec] = Field(min_length=1, max_length=MAX_FIELDS)
    owner: OwnerStrategy = Field(default_factory=lambda: NoOwner(strategy="none"))
    allowed_origins: list[Origin] = Field(default_factory=list, max_length=50)
    success_message: SuccessMessage = DEFAULT_SUCCESS
    source: Annotated[str, StringConstraints(min_length=1, max_length=200),
                      AfterValidator(_no_nul)] = "website"
    honeypot_field: FieldName = "website"
    enabled: bool = True


class FormUpdate(FormFields):
    """JSON merge-patch; `fields` and `allowed_origins` are replaced whole."""


class FormRead(BaseModel):
    id: uuid.UUID
    name: str
    form_key: str = Field(description="The public key in the form's URLs (not a secret)")
    fields: list[dict[str, Any]]
    pipeline_id: uuid.UUID | None
    stage_id: uuid.UUID | None
    owner: dict[str, Any]
    allowed_origins: list[str]
    success_message: str
    redirect_url: str | None
    source: str
    honeypot_field: str
    honeypot_count: int = Field(description="Submissions dropped because the honeypot was "
                                            "filled")
    submissions_per_minute: int | None
    enabled: bool
    submit_url: str = Field(description="POST submissions here (public)")
    embed_url: str = Field(description="`<script src=…>` this on a page (public)")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: str
    updated_by: str


class PublicField(BaseModel):
    name: str
    label: str
    type: str
    required: bool
    options: list[str]
    placeholder: str | None
    max_length: int
    value: str | None


class PublicForm(BaseModel):
    """What a browser needs to render and post the form; nothing about the workspace."""
    form_key: str
    name: str
    fields: list[PublicField]
    honeypot_field: str
    success_message: str
    redirect_url: str | None
    submit_url: str


class SubmissionAccepted(BaseModel):
    id: uuid.UUID = Field(description="The submission's id")
    status: Literal["received"] = "received"
    message: str = Field(description="The form's success message")
    redirect_url: str | None


class SubmissionRead(BaseModel):
    id: uuid.UUID
    form_id: uuid.UUID
    client_submission_id: str | None
    data: dict[str, Any] = Field(description="The values by field name")
    utm: dict[str, Any]
    referrer: str | None
    page_url: str | None
    origin: str | None
    ip: str | None
    user_agent: str | None
    contact_id: uuid.UUID | None
    contact_created: bool
    deal_id: uuid.UUID | None
    inbox_item_id: uuid.UUID | None
    created_at: datetime
