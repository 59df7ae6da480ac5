"""The template sandbox: rendering, escapes refused, and the time and size budget."""

from __future__ import annotations

import time

import pytest

from app.domain.templates import sandbox
from app.domain.templates.sandbox import TemplateError, check_syntax, render_text

CONTACT = {"contact": {"first_name": "Ivan", "tags": ["vip"]},
           "deal": {"line_items": [{"name": "Window", "total": "15000.00"},
                                   {"name": "Sill", "total": "2000.00"}]}}


def _error_type(exc: pytest.ExceptionInfo[TemplateError]) -> str:
    return str(exc.value.errors[0]["type"])


def test_renders_variables_loops_and_filters() -> None:
    source = ("Hello {{ contact.first_name|upper }}! "
              "{% for item in deal.line_items %}{{ item.name }}={{ item.total }};{% endfor %}"
              "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
              "{% endfor %} n={{ ns.n }} {{ '%05d'|format(42) }} {{ 'a' ~ 'b' }}"
              " {{ contact.tags|join(', ') }} {{ 'x' * 3 }} {{ 2 ** 10 }}")
    assert render_text(source, CONTACT) == (
        "Hello IVAN! Window=15000.00;Sill=2000.00; n=3 00042 ab vip xxx 1024")


def test_a_missing_variable_is_empty_unless_strict() -> None:
    assert render_text("Hi {{ contact.nickname }}!", CONTACT) == "Hi !"
    with pytest.raises(TemplateError) as exc:
        render_text("Hi {{ nobody.name }}", {}, strict=True, loc=["body"])
    assert exc.value.errors[0]["loc"] == ["body"] and exc.value.status == 422


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ joiner.__init__.__globals__['os'] }}",
])
def test_reaching_for_internals_is_refused_on_save_and_on_render(source: str) -> None:
    with pytest.raises(TemplateError) as saved:
        check_syntax(source, ["body"])
    assert _error_type(saved) == "template_security"
    assert saved.value.errors[0]["loc"] == ["body"]
    with pytest.raises(TemplateError) as rendered:
        render_text(source, {})
    assert _error_type(rendered) == "template_security"


def test_a_dynamically_built_private_name_is_refused_when_rendered() -> None:
    source = "{{ ''|attr('_' ~ '_class__') }}"
    check_syntax(source, ["body"])  # nothing to see statically
    with pytest.raises(TemplateError) as exc:
        render_text(source, {})
    assert _error_type(exc) == "template_security"


def test_lipsum_is_not_available() -> None:
    with pytest.raises(TemplateError):  # lipsum(10**6) would be seconds of untraced work
        render_text("{{ lipsum(1000000) }}", {}, strict=True)


def test_the_immutable_sandbox_does_not_mutate_the_variables() -> None:
    with pytest.raises(TemplateError):
        render_text("{{ contact.tags.append('hacked') }}", CONTACT)
    assert CONTACT["contact"]["tags"] == ["vip"]


def test_a_syntax_error_points_at_its_location() -> None:
    with pytest.raises(TemplateError) as exc:
        check_syntax("Hello {{ contact.name ", ["body", "subject"])
    assert _error_type(exc) == "template_syntax"
    assert exc.value.errors[0]["loc"] == ["body", "subject"]
    assert "line 1" in exc.value.detail


@pytest.mark.parametrize("source", [
    "{% for i in range(10**9) %}{% endfor %}",
    "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% for i in range(100000) %}{% endfor %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
])
def test_a_runaway_render_is_stopped(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "RENDER_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(TemplateError) as exc:
        render_text(source, {})
    assert time.monotonic() - started < 2.0
    assert _error_type(exc) in ("template_budget", "template_render")


def test_the_timeout_budget_is_reported() -> None:
    source = "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateError) as exc:
        render_text(source, {}, loc=["body"])
    assert _error_type(exc) == "template_budget" and "longer than" in exc.value.detail
    assert time.monotonic() - started < sandbox.RENDER_TIMEOUT_SECONDS + 1.0


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ '%1000000000s'|format('x') }}",
    "{{ '%*s' % (1000000000, 'x') }}",
    "{{ '{:>1000000000}'.format('x') }}",
    "{{ range(100000)|join('y' * 100000) }}",
    "{{ ('a' * 100000)|replace('a', 'b' * 1000) }}",
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}"),
    "{% set a = 'x' * 150000 %}{% set b = a ~ a %}{{ b|length }}",
    "{% for i in range(100000) %}{{ 'abcdefghij' }}{% endfor %}",
])
def test_values_and_output_past_the_cap_are_refused(source: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render_text(source, {})
    assert _error_type(exc) == "template_budget"


@pytest.mark.parametrize("source", ["{{ 1 / 0 }}", "{{ 'a' + 1 }}", "{{ range(1, 2, 0) }}",
                                    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"])
def test_a_template_that_fails_is_a_422_not_a_crash(source: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render_text(source, {})
    assert exc.value.status == 422


def test_the_trace_function_of_the_caller_is_restored() -> None:
    import sys

    before = sys.gettrace()
    render_text("{% for i in range(10) %}{{ i }}{% endfor %}", {})
    assert sys.gettrace() is before
