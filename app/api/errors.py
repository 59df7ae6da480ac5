"""Every error becomes RFC 9457 application/problem+json, mapped in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.domain.shared.batch import problem_of
from app.domain.shared.errors import DomainError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://relata.dev/problems/"


class ProblemFieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "model": Problem,
            "content": {PROBLEM: {"schema": schema}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Malformed request"),
    401: _problem_doc("Unauthenticated"),
    403: _problem_doc("Forbidden"),
    404: _problem_doc("Not found, or not yours"),
    409: _problem_doc("Conflict, e.g. a duplicate card"),
    412: _problem_doc("If-Match does not match the current version"),
    413: _problem_doc("Payload too large"),
    422: _problem_doc("Validation failed"),
    429: _problem_doc("Rate limited; see Retry-After"),
}


def problem_response(status: int, title: str, detail: str, *, slug: str,
                     errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail,
            **({"errors": errors} if errors else {}), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p not in ("function-after",)]
        cleaned.append({"loc": loc, "msg": e.get("msg", ""), "type": e.get("type", "")})
    return cleaned


def domain_problem(exc: DomainError) -> JSONResponse:
    """A domain error's problem+json, with the headers it carries (Retry-After, ...)."""
    body = problem_of(exc)
    if not body["errors"]:
        body.pop("errors")
    headers = {**({"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}),
               **(exc.extra.get("headers") or {})}
    body.pop("headers", None)
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM, headers=headers)


def too_large_problem(detail: str) -> JSONResponse:
    return problem_response(413, "Payload too large", detail, slug="too-large")


def http_problem(exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own HTTP errors as problem+json; a 413 is the body cap
    (`middleware.BodyTooLarge`, for a chunked body)."""
    if exc.status_code == 413:
        return too_large_problem("the request body is larger than this endpoint accepts")
    titles = {400: "Malformed request", 404: "Not found", 405: "Method not allowed",
              401: "Unauthenticated", 415: "Unsupported media type"}
    return problem_response(exc.status_code, titles.get(exc.status_code, "Error"),
                            str(exc.detail), slug=f"http-{exc.status_code}",
                            headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_validation_errors(list(exc.errors()))
        malformed = any(e["type"] == "json_invalid" for e in errors)
        if malformed:
            return problem_response(400, "Malformed request", "the body is not valid JSON",
                                    slug="malformed", errors=errors)
        return problem_response(422, "Validation failed", "the request is not valid",
                                slug="validation", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem(exc)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """A value the database refuses (SQLSTATE class 22: a NUL character, a number out of
        range) is the client's input, not our failure; the transaction was rolled back."""
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith("22"):
            return problem_response(422, "Validation failed",
                                    "a value cannot be stored: it is out of range or holds a "
                                    "character that is not allowed (such as U+0000)",
                                    slug="validation")
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        import structlog

        structlog.get_logger("relata").exception("unhandled error", error=repr(exc))
        return problem_response(500, "Internal error", "something went wrong on our side",
                                slug="internal")
