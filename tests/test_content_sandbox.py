"""Hostile templates are refused or contained: no files, no os, no Python internals, no endless
loops or giant strings; and what customers typed (a first name with <script>) is escaped."""

from __future__ import annotations

import time

import pytest

from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.render import Renderer, preview
from sendwise.content.sample import sample_tokens

FRONT = '+++\nsubject = "Hi"\n+++\n'
FOOTER = '<a href="{{ links.unsubscribe }}">Unsubscribe</a>'

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ (range|attr('__globals__')) }}",
    "{{ customer.__class__.__base__.__subclasses__() }}",
    "{{ customer|attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ recommendations.__class__ }}",
    "{{ config }}",
    "{{ request.application.__globals__ }}",
    "{{ dict.__subclasses__() }}",
    "{% set x = customer.update({'first_name': 'x'}) %}{{ x }}",
    "{% set x = segments.append('x') %}{{ x }}",
    "{{ customer.clear() }}",
]
BOMBS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set r = range(100000)|list %}{% for a in r %}{% for b in r %}.{% endfor %}{% endfor %}",
    "{% for i in range(10**12) %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ ['x'] * 100000000 }}",
    "{{ (2 ** 64) ** 1000 }}",
    "{{ 2 ** 100000 }}",
]
FILES = [
    '{% include "/etc/passwd" %}',
    '{% include "../../../../../../etc/passwd" %}',
    '{% extends "/etc/hostname" %}',
    '{% import "/etc/passwd" as p %}{{ p }}',
    '{% from "../sendwise.toml" import x %}{{ x }}',
]


def write(renderer: Renderer, name: str, body: str) -> str:
    folder = renderer.folders[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(FRONT + body + FOOTER, encoding="utf-8")
    renderer._compiled.pop(name, None)
    return name


@pytest.fixture
def renderer(project) -> Renderer:
    settings, _ = project
    return Renderer(settings)


@pytest.mark.parametrize("payload", ESCAPES + BOMBS + FILES)
def test_hostile_templates_are_refused(renderer: Renderer, payload: str) -> None:
    name = write(renderer, "hostile.html", payload)
    started = time.perf_counter()
    with pytest.raises(TemplateError) as caught:
        preview(renderer, name)
    assert time.perf_counter() - started < 5  # contained, not left running
    text = str(caught.value)
    assert "root:" not in text and "<module 'os'" not in text


@pytest.mark.parametrize("payload", BOMBS[:5])
def test_budgets_are_unsafe_template_errors(renderer: Renderer, payload: str) -> None:
    name = write(renderer, "bomb.html", payload)
    with pytest.raises(UnsafeTemplateError):
        preview(renderer, name)


def test_hostile_subject_is_refused(renderer: Renderer) -> None:
    folder = renderer.folders[0]
    (folder / "subj.html").write_text(
        "+++\nsubject = \"{{ ''.__class__.__mro__ }}\"\n+++\n" + FOOTER, encoding="utf-8"
    )
    with pytest.raises(UnsafeTemplateError):
        preview(renderer, "subj.html")


def test_customer_text_is_escaped_in_html_and_kept_plain_in_text(renderer: Renderer) -> None:
    hostile = '<script>alert("x")</script>'
    tokens = sample_tokens(renderer.settings, {}, overrides={"first_name": hostile})
    tokens["recommendations"][0] = {**tokens["recommendations"][0], "name": "<img src=x onerror=1>"}
    tokens["slots"] = {"offer": "premium"}
    message = renderer.render_context("newsletter.html", tokens, renderer.default_links("C1"))
    assert "<script>" not in message.html and "onerror=1>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
    assert hostile in message.text  # a text part is never interpreted as HTML
    assert "\n" not in message.subject


def test_a_normal_template_still_renders(renderer: Renderer) -> None:
    body = "{% for p in recommendations %}{{ p.name }} {% endfor %}{{ range(3)|list }}"
    name = write(renderer, "fine.html", body)
    shown = preview(renderer, name)
    assert "Linen Throw" in shown.html and "[0, 1, 2]" in shown.html
