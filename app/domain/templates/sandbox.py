"""User-written templates rendered in Jinja2's immutable sandbox, within a time and size budget.

Templates are data a workspace writes (task titles in rules, email and SMS bodies,
documents), so they run in `ImmutableSandboxedEnvironment`: no attribute that reaches
Python internals, no mutation of the values passed in. On top of Jinja's sandbox:

- an attempt to reach a private attribute (`''.__class__`, `cycler.__init__`) is refused
  when the template is saved (`check_syntax` walks the parsed template) and raises while
  rendering, instead of Jinja's default of rendering it as empty;
- a render has a deadline (`RENDER_TIMEOUT_SECONDS`): a trace function on the template's own
  frames checks the clock on every line the template executes, so nested loops stop
  (docs/decisions/0018-template-render-budget.md);
- output is capped while it is produced, and the operators and filters that build large
  values in one step (`'x' * n`, `n ** m`, `center(n)`, `'%*s'`) refuse results past the cap.

A template that is malformed, tries to escape, or overruns is a `TemplateError` (a 422)."""

from __future__ import annotations

import functools
import operator
import re
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from markupsafe import Markup, escape

from app.domain.shared.errors import ValidationError

MAX_OUTPUT_CHARS = 200_000
MAX_SOURCE_CHARS = 100_000
RENDER_TIMEOUT_SECONDS = 1.0
MAX_INT_BITS = 4096  # about 1,200 decimal digits: any sum of money, no number that hangs
TEMPLATE_FILENAME = "<template>"  # what Jinja names the code compiled from a string


class TemplateError(ValidationError):
    title, type_slug = "Template error", "template"


class _Overrun(Exception):
    """Raised inside a render that went past its budget (time or size)."""


def _refuse_large(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_OUTPUT_CHARS:
        raise _Overrun(f"a value longer than {MAX_OUTPUT_CHARS} items")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Overrun("a number too large")
    return value


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int) \
                and len(seq) * max(count, 0) > MAX_OUTPUT_CHARS:
            raise _Overrun(f"a repetition longer than {MAX_OUTPUT_CHARS} items")
    if isinstance(left, int) and isinstance(right, int) \
            and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise _Overrun("a number too large")
    return left * right


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 \
            and right * left.bit_length() > MAX_INT_BITS:
        raise _Overrun("a number too large")
    return _refuse_large(left ** right)


# printf-style widths (`%*s`, `%999999999d`) and str.format widths (`{:>999999999}`).
_PRINTF_WIDTH = re.compile(r"%[#0 +\-]*(\*|\d{6,})|%[#0 +\-]*\d*\.(\*|\d{6,})")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*:[^{}]*(\d{6,}|\{)")


def _checked_format_string(fmt: Any) -> Any:
    if isinstance(fmt, str) and (_PRINTF_WIDTH.search(fmt) or _FORMAT_WIDTH.search(fmt)):
        raise _Overrun("a format width too large")
    return fmt


def _modulo(left: Any, right: Any) -> Any:
    return _refuse_large(_checked_format_string(left) % right)


def _precheck(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a filter or string-method call whose result would be huge before it is built:
    a width (`center(10**9)`), a separator or replacement multiplied by a count."""
    if name == "format":
        if args:
            _checked_format_string(args[0])
        return
    for value in (*args[1:], *kwargs.values()):
        if isinstance(value, int) and value > MAX_OUTPUT_CHARS:
            raise _Overrun(f"an argument larger than {MAX_OUTPUT_CHARS}")
    if name == "replace" and len(args) >= 3 and isinstance(args[0], str) \
            and isinstance(args[1], str) and isinstance(args[2], str) \
            and args[0].count(args[1]) * len(args[2]) > MAX_OUTPUT_CHARS:
        raise _Overrun(f"a replacement longer than {MAX_OUTPUT_CHARS} characters")


def _guarded_filter(name: str, filter_: Callable[..., Any]) -> Callable[..., Any]:
    passes_context = hasattr(filter_, "jinja_pass_arg")  # context/env/eval_ctx comes first

    @functools.wraps(filter_)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        own = args[1:] if passes_context else args
        if name == "join" and own:
            items = list(own[0])
            separator = own[1] if len(own) > 1 else kwargs.get("d", "")
            if isinstance(separator, str) and len(separator) * len(items) > MAX_OUTPUT_CHARS:
                raise _Overrun(f"a join longer than {MAX_OUTPUT_CHARS} characters")
            args = (*args[:len(args) - len(own)], items, *own[1:])
        else:
            _precheck(name, own, kwargs)
        return _refuse_large(filter_(*args, **kwargs))
    return guarded


class _CappedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past the cap (doubling a string in a loop)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _refuse_large(value))


class _CappedCodeGenerator(CodeGenerator):
    """`a ~ b` compiles to a join that refuses results past the cap (Jinja's own `str_join`
    cannot be intercepted like the arithmetic operators)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.capped_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _TemplateSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CappedCodeGenerator

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.binop_table.update({
            "*": _multiply, "**": _power, "%": _modulo,
            "+": lambda left, right: _refuse_large(operator.add(left, right))})
        self.globals["namespace"] = _CappedNamespace
        del self.globals["lipsum"]  # lipsum(10**6): seconds of untraced work, no use here
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}

    def capped_concat(self, values: tuple[Any, ...]) -> str:
        parts = [escape(v) if self.autoescape else str(v) for v in values]
        if sum(map(len, parts)) > MAX_OUTPUT_CHARS:
            raise _Overrun(f"a text longer than {MAX_OUTPUT_CHARS} characters")
        return Markup("").join(parts) if self.autoescape else "".join(parts)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # '{:>999999999}'.format(x): refused before it is built
            _checked_format_string(value.__self__)
        return wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of "
                            f"{type(obj).__name__!r} object is unsafe")

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):  # 'x'.center(10**9), 'x'.ljust(…), ','.join(…)
            name = getattr(obj, "__name__", "")
            if name == "join" and args:
                items = list(args[0])
                if len(owner) * len(items) > MAX_OUTPUT_CHARS:
                    raise _Overrun(f"a join longer than {MAX_OUTPUT_CHARS} characters")
                args = (items, *args[1:])
            else:
                _precheck(name, (owner, *args), kwargs)
        return _refuse_large(super().call(context, obj, *args, **kwargs))


_ENVIRONMENTS = {(strict, html): _TemplateSandbox(
    undefined=StrictUndefined if strict else Undefined, autoescape=html)
    for strict in (False, True) for html in (False, True)}
_strict = _ENVIRONMENTS[True, False]


def _error(detail: str, loc: list[str | int] | None, msg: str, type_: str) -> TemplateError:
    return TemplateError(detail, errors=[{"loc": loc or ["template"], "msg": msg,
                                          "type": type_}])


def _private_names(tree: nodes.Template) -> list[tuple[int, str]]:
    """Attributes and keys a template names that start with `_` (the way out of any sandbox:
    `__class__`, `__globals__`, `__init__`), with their line numbers."""
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args \
                and isinstance(node.args[0], nodes.Const):
            name = node.args[0].value
        if isinstance(name, str) and name.startswith("_"):
            found.append((node.lineno, name))
    return found


def check_syntax(source: str, loc: list[str | int]) -> None:
    """Refuse a template that does not parse or reaches for private attributes, at `loc`."""
    if len(source) > MAX_SOURCE_CHARS:
        raise _error(f"the template exceeds {MAX_SOURCE_CHARS} characters", loc,
                     "template too long", "template_too_long")
    try:
        tree = _strict.parse(source)
    except TemplateSyntaxError as exc:
        raise _error(f"template syntax error on line {exc.lineno}: {exc.message}", loc,
                     str(exc.message), "template_syntax") from exc
    private = _private_names(tree)
    if private:
        line, name = private[0]
        raise _error(f"the template tried to leave the sandbox: {name!r} on line {line} "
                     "(names starting with '_' are not available in templates)", loc,
                     f"access to {name!r} is not allowed", "template_security")


class _Deadline:
    """A trace function for the template's frames only: every line the template executes
    checks the clock. Jinja's own helpers and filters run untraced (each is bounded)."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def on_call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != TEMPLATE_FILENAME:
            return None
        self.on_line(frame, event, arg)
        return self.on_line

    def on_line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > self.deadline:
            raise _Overrun(f"the render took longer than {RENDER_TIMEOUT_SECONDS:g} s")
        return self.on_line


@functools.lru_cache(maxsize=1024)
def _compiled(strict: bool, html: bool, source: str) -> Any:
    """A rule's title renders for every event: compile each source once per process."""
    return _ENVIRONMENTS[strict, html].from_string(source)


def _render_within_budget(strict: bool, html: bool, source: str,
                          variables: dict[str, Any]) -> str:
    template = _compiled(strict, html, source)
    previous = sys.gettrace()
    sys.settrace(_Deadline(RENDER_TIMEOUT_SECONDS).on_call)
    try:
        parts, size = [], 0
        for part in template.generate(variables):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise _Overrun(f"the rendered text exceeds {MAX_OUTPUT_CHARS} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        sys.settrace(previous)


def render_text(source: str, variables: Mapping[str, Any], *, strict: bool = False,
                loc: list[str | int] | None = None, html: bool = False) -> str:
    """Render `source` with `variables`; a missing variable renders empty unless `strict`.
    `html` escapes the values (documents): a contact named `<script>` stays text."""
    try:
        return _render_within_budget(strict, html, source, dict(variables))
    except SecurityError as exc:
        raise _error(f"the template tried to leave the sandbox: {exc}", loc, str(exc),
                     "template_security") from exc
    except _Overrun as exc:
        raise _error(f"the template overran its budget: {exc}", loc, str(exc),
                     "template_budget") from exc
    except TemplateSyntaxError as exc:
        raise _error(f"template syntax error on line {exc.lineno}: {exc.message}", loc,
                     str(exc.message), "template_syntax") from exc
    except JinjaError as exc:
        raise _error(f"the template could not be rendered: {exc}", loc, str(exc),
                     "template_render") from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError,
            MemoryError) as exc:  # `{{ 1 / 0 }}`, `{{ 'a' + 1 }}`, a macro calling itself
        raise _error(f"the template could not be rendered: {exc}", loc, str(exc),
                     "template_render") from exc
