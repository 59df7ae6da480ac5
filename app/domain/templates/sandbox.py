"""User-written templates rendered in Jinja2's immutable sandbox.

Templates are data a workspace writes (task titles in rules, email and SMS bodies,
documents), so they run in `ImmutableSandboxedEnvironment`: no attribute that reaches
Python internals, no mutation of the values passed in. A template that is malformed or tries
to escape the sandbox is a `TemplateError` (a 422)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.domain.shared.errors import ValidationError

MAX_OUTPUT_CHARS = 200_000


class TemplateError(ValidationError):
    title, type_slug = "Template error", "template"


_lenient = ImmutableSandboxedEnvironment(undefined=Undefined, autoescape=False)
_strict = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def check_syntax(source: str, loc: list[str | int]) -> None:
    """Refuse a template that does not parse, pointing at `loc`."""
    try:
        _strict.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}",
                            errors=[{"loc": loc, "msg": str(exc.message),
                                     "type": "template_syntax"}]) from exc


def render_text(source: str, variables: Mapping[str, Any], *, strict: bool = False,
                loc: list[str | int] | None = None) -> str:
    """Render `source` with `variables`; a missing variable renders empty unless `strict`."""
    env = _strict if strict else _lenient
    try:
        out = env.from_string(source).render(dict(variables))
    except SecurityError as exc:
        raise TemplateError(f"the template tried to leave the sandbox: {exc}",
                            errors=[{"loc": loc or ["template"], "msg": str(exc),
                                     "type": "template_security"}]) from exc
    except JinjaError as exc:
        raise TemplateError(f"the template could not be rendered: {exc}",
                            errors=[{"loc": loc or ["template"], "msg": str(exc),
                                     "type": "template_render"}]) from exc
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateError(f"the rendered text exceeds {MAX_OUTPUT_CHARS} characters",
                            errors=[{"loc": loc or ["template"], "msg": "output too large",
                                     "type": "template_output_cap"}])
    return out
