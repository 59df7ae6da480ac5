"""GraphQL for website form definitions: the same services as REST /api/v1/forms.

`fields` and `owner` are the same JSON documents REST takes and returns, checked by the
same pydantic models. Submitting a form is public and HTTP-only
(POST /api/v1/forms/{form_key}/submissions): a website has no GraphQL client."""

from __future__ import annotations

import datetime
from typing import Annotated

import strawberry
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
from app.api.graphql.types.common import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PageInfo,
    PreconditionFailedError,
    ValidationError,
)
from app.api.graphql.types.records import input_to_dict
from app.domain.forms import service
from app.domain.forms.schemas import FormCreate, FormRead, FormUpdate
from app.domain.shared.errors import NotFoundError as DomainNotFound
from app.domain.shared.listing import row_cursor


@strawberry.type(description="A website form: its fields and where each lands, the stage its "
                             "deals start in, the owner strategy and the allowed origins "
                             "(docs/integrations/forms.md).")
class Form:
    id: strawberry.ID
    name: str
    form_key: str = strawberry.field(description="The public key in the form's URLs")
    fields: JSON
    pipeline_id: strawberry.ID | None
    stage_id: strawberry.ID | None
    owner: JSON
    allowed_origins: list[str]
    success_message: str
    redirect_url: str | None
    source: str
    honeypot_field: str
    honeypot_count: int
    submissions_per_minute: int | None
    enabled: bool
    submit_url: str
    embed_url: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    created_by: str
    updated_by: str

    @classmethod
    def of(cls, f: FormRead) -> Form:
        return cls(id=strawberry.ID(str(f.id)), name=f.name, form_key=f.form_key,
                   fields=f.fields,
                   pipeline_id=strawberry.ID(str(f.pipeline_id)) if f.pipeline_id else None,
                   stage_id=strawberry.ID(str(f.stage_id)) if f.stage_id else None,
                   owner=f.owner, allowed_origins=f.allowed_origins,
                   success_message=f.success_message, redirect_url=f.redirect_url,
                   source=f.source, honeypot_field=f.honeypot_field,
                   honeypot_count=f.honeypot_count,
                   submissions_per_minute=f.submissions_per_minute, enabled=f.enabled,
                   submit_url=f.submit_url, embed_url=f.embed_url, version=f.version,
                   created_at=f.created_at, updated_at=f.updated_at, created_by=f.created_by,
                   updated_by=f.updated_by)


@strawberry.type
class FormEdge:
    cursor: str
    node: Form


@strawberry.type
class FormConnection:
    edges: list[FormEdge]
    page_info: PageInfo


@strawberry.input(description="A form as REST's body; `fields` and `owner` are its JSON.")
class FormInput:
    name: str | None = strawberry.UNSET
    fields: JSON | None = strawberry.UNSET
    pipeline_id: strawberry.ID | None = strawberry.UNSET
    stage_id: strawberry.ID | None = strawberry.UNSET
    owner: JSON | None = strawberry.UNSET
    allowed_origins: list[str] | None = strawberry.UNSET
    success_message: str | None = strawberry.UNSET
    redirect_url: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    honeypot_field: str | None = strawberry.UNSET
    submissions_per_minute: int | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET


@strawberry.type
class FormsQuery:
    @strawberry.field(description="The workspace's forms (`filter` as REST's list filters).")
    async def forms(self, info: strawberry.Info, first: int = 50, after: str | None = None,
                    filter: JSON | None = None, sort: str | None = None) -> FormConnection:
        async with info.context.db_lock:
            rows, next_cursor = await service.list_forms(
                info.context.session, info.context.principal,
                conditions=await filter_conditions(info.context.session, service.LIST_SPEC, filter),
                page=page_of(first, after, sort))
        edges = [FormEdge(cursor=row_cursor(service.LIST_SPEC, sort, row),
                          node=Form.of(service.to_read(row))) for row in rows]
        return FormConnection(edges=edges, page_info=page_info(edges, next_cursor))

    @strawberry.field(description="A form; null when there is none with this id here.")
    async def form(self, info: strawberry.Info, id: strawberry.ID) -> Form | None:
        async with info.context.db_lock:
            try:
                row = await service.get_form(info.context.session, info.context.principal,
                                             parse_id(id, "form"))
            except DomainNotFound:
                return None
        return Form.of(service.to_read(row))


FormResult = Annotated[Form | ValidationError | ConflictError | NotFoundError
                       | PreconditionFailedError | ForbiddenError, strawberry.union("FormResult")]


def _forget(info: strawberry.Info, form_key: str) -> None:
    """As REST does: this process reads the changed form again on its next public request."""
    from app.api.rest.form_public import forget

    request = getattr(info.context, "request", None)
    if request is not None:
        forget(request.app, form_key)


@strawberry.type
class FormsMutation:
    @strawberry.mutation(description="Create a form (owners and admins).")
    async def create_form(self, info: strawberry.Info, input: FormInput) -> FormResult:
        async def run() -> Form:
            form = await service.create_form(info.context.session, info.context.principal,
                                             FormCreate.model_validate(input_to_dict(input)))
            return Form.of(service.to_read(form))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="Merge-patch a form; `version` refuses a lost update.")
    async def update_form(self, info: strawberry.Info, id: strawberry.ID, input: FormInput,
                          version: int | None = None) -> FormResult:
        async def run() -> Form:
            form = await service.update_form(info.context.session, info.context.principal,
                                             parse_id(id, "form"),
                                             FormUpdate.model_validate(input_to_dict(input)),
                                             expected_version=version)
            _forget(info, form.form_key)
            return Form.of(service.to_read(form))
        return await in_savepoint(info, run)

    @strawberry.mutation(description="A new public key: the old embed code stops working.")
    async def rotate_form_key(self, info: strawberry.Info, id: strawberry.ID,
                              version: int | None = None) -> FormResult:
        async def run() -> Form:
            form_id = parse_id(id, "form")
            old = (await service.get_form(info.context.session, info.context.principal,
                                          form_id)).form_key
            form = await service.rotate_key(info.context.session, info.context.principal,
                                            form_id, expected_version=version)
            _forget(info, old)
            return Form.of(service.to_read(form))
        return await in_savepoint(info, run, body=None)

    @strawberry.mutation(description="Soft-delete a form: its public URLs answer 404.")
    async def delete_form(self, info: strawberry.Info, id: strawberry.ID,
                          version: int | None = None) -> DeleteResult:
        async def run() -> DeleteSuccess:
            form = await service.delete_form(info.context.session, info.context.principal,
                                             parse_id(id, "form"), expected_version=version)
            _forget(info, form.form_key)
            return DeleteSuccess(id=id)
        return await in_savepoint(info, run, body=None)


QUERY_TYPES: list[type] = [FormsQuery]
MUTATION_TYPES: list[type] = [FormsMutation]
