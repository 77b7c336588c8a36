"""Defect 4 of issue 13, as a class: no template can make a render use unbounded memory, recurse
into a traceback, or read a file outside the templates folder.

Hostile templates render in a separate process whose address space is capped (RLIMIT_AS, see
hostile_worker.py): a template that escaped the budgets would die there with a MemoryError (a
"crash"), not take the machine down. Each example of the issue has its own assertion, and a
hypothesis fuzz composes random templates from every operation that can build a large value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_templates import templates
from sendwise.config import init_project, load_settings
from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.limits import MAX_OUTPUT
from sendwise.content.lint import lint_template
from sendwise.content.render import Renderer, preview

WORKER = Path(__file__).with_name("hostile_worker.py")
CAP_MB = 400
FRONT = '+++\nsubject = "Hi"\n+++\n'
FOOTER = '<a href="{{ links.unsubscribe }}">Unsubscribe</a>'
BODY_LINE = 4  # FRONT takes three lines

ISSUE_EXAMPLES = {
    # `~` doubling in a loop: 15 iterations of 10,000 characters make 327 M characters
    "concat-doubling": "{% set ns = namespace(s='x' * 10000) %}{% for i in range(15) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "plus-doubling": "{% set ns = namespace(s='x' * 10000) %}{% for i in range(15) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "replace": "{{ ('x' * 10000)|replace('x', 'y' * 10000)|length }}",
    "replace-empty": "{{ ('x' * 100000)|replace('', 'y' * 1000)|length }}",
    "indent": "{{ ('\\n' * 100000)|indent(10000, true, true)|length }}",
    "center": "{{ 'a'|center(1000000000)|length }}",
    "center-method": "{{ 'a'.center(1000000000)|length }}",
    "percent-width": "{{ ('%1000000000s' % 'a')|length }}",
    "format-filter": "{{ ('%1000000000s'|format('a'))|length }}",
    "str-format-width": "{{ '{:1000000000}'.format('a')|length }}",
    "star-string": "{{ ('a' * 1000000000)|length }}",
    "join": "{{ range(100000)|join('x' * 100000)|length }}",
    "join-method": "{{ ('x' * 100000).join(range(100000)|map('string'))|length }}",
    "wordwrap": "{{ ('a ' * 400000)|wordwrap(1, wrapstring='x' * 1000)|length }}",
    "list-repetition": "{{ (['x' * 100000] * 100000)|string|length }}",
    "list-doubling": "{% set ns = namespace(l=['x' * 100000]) %}{% for i in range(20) %}"
    "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|join|length }}",
    "range": "{{ range(10**10)|list|length }}",
    "batch-fill": "{{ [1]|batch(1000000000, 'x')|list|length }}",
    "loop-output": "{% set b = 'x' * 900000 %}{% for i in range(10000) %}{{ b }}{% endfor %}",
    "set-block": "{% set b = 'x' * 900000 %}{% set out %}{% for i in range(10000) %}{{ b }}"
    "{% endfor %}{% endset %}{{ out|length }}",
    "macro-output": "{% macro m() %}{% for i in range(10000) %}{{ 'x' * 900000 }}{% endfor %}"
    "{% endmacro %}{{ m()|length }}",
    "integer-squaring": "{% set ns = namespace(n=3) %}{% for i in range(40) %}"
    "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
    "self-recursive-macro": "{% macro m(x) %}{{ m(x ~ 'a') }}{% endmacro %}{{ m('a') }}",
    "recursive-loop": "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
}


def _render_in_worker(project: Path, bodies: list[str]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(WORKER), str(project), str(CAP_MB)],
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(bodies), done.stderr[-2000:]
    return results


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "shop"
    init_project(folder)
    return folder


@pytest.fixture(scope="module")
def issue_results(project_dir: Path) -> dict[str, dict]:
    names = list(ISSUE_EXAMPLES)
    results = _render_in_worker(project_dir, [ISSUE_EXAMPLES[n] for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("example", list(ISSUE_EXAMPLES))
def test_each_issue_example_is_refused_with_file_and_line(
    issue_results: dict[str, dict], example: str
) -> None:
    index = list(ISSUE_EXAMPLES).index(example)
    result = issue_results[example]
    assert "crash" not in result, result  # a MemoryError or RecursionError traceback
    assert result.get("error") == "UnsafeTemplateError", result
    assert result["message"].startswith(f"hostile_{index}.html:{BODY_LINE}: "), result
    assert result["seconds"] < 10


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies=st.lists(templates(), min_size=40, max_size=40))
def test_random_hostile_templates_end_cleanly_under_a_memory_cap(
    project_dir: Path, bodies: list[str]
) -> None:
    for body, result in zip(bodies, _render_in_worker(project_dir, bodies), strict=True):
        assert "crash" not in result, (body, result)
        if "ok" in result:  # rendered: then within the output budget of its parts
            assert result["ok"] <= 2 * MAX_OUTPUT, body
        else:
            assert result["error"] in ("TemplateError", "UnsafeTemplateError"), result
            assert result["message"].startswith("hostile_"), result  # names the template
        assert result["seconds"] < 10, (body, result)


# -- compile time, recursion through files, files outside the folder -----------------------
@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    folder = tmp_path / "shop"
    init_project(folder)
    return Renderer(load_settings(folder))


def write(renderer: Renderer, name: str, body: str, front: bool = True) -> str:
    path = renderer.folders[0] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((FRONT + body + FOOTER) if front else body, encoding="utf-8")
    return name


def test_constants_are_not_computed_while_compiling_or_checking(renderer: Renderer) -> None:
    name = write(renderer, "const.html", "{{ 'a'|center(1000000000) }}{{ '%999999999s' % 'a' }}")
    started = time.perf_counter()
    compiled = renderer.template(name)
    problems = lint_template(renderer, name)  # `sendwise templates check`
    assert time.perf_counter() - started < 5
    assert "center(1000000000)" in compiled.html_source  # kept as code, not folded
    assert [p.code for p in problems] == ["render"]
    assert "wider than 10,000" in problems[0].message
    with pytest.raises(UnsafeTemplateError, match=r"^const\.html:4: center width"):
        preview(renderer, name)


@pytest.mark.parametrize(
    "files",
    [
        {"self.html": '{% include "self.html" %}'},
        {"a.html": '{% include "blocks/b.html" %}', "blocks/b.html": '{% include "a.html" %}'},
        {"ext.html": '{% extends "ext.html" %}'},
        {
            "fan.html": '{% include "blocks/f1.html" %}',
            "blocks/f1.html": '{% include "blocks/f2.html" %}' * 20,
            "blocks/f2.html": '{% include "blocks/f3.html" %}' * 20,
            "blocks/f3.html": "x" * 20,
        },
    ],
)
def test_templates_including_themselves_end_in_a_template_error(
    renderer: Renderer, files: dict[str, str]
) -> None:
    first = next(iter(files))
    for i, (name, body) in enumerate(files.items()):
        write(renderer, name, body, front=i == 0)
    with pytest.raises(UnsafeTemplateError, match=r"include|nest"):
        preview(renderer, first)


def test_an_import_of_itself_ends_in_a_template_error(renderer: Renderer) -> None:
    write(renderer, "imp.html", '{% import "blocks/m.html" as m %}{{ m.f() }}')
    write(
        renderer,
        "blocks/m.html",
        '{% import "blocks/m.html" as m %}{% macro f() %}x{% endmacro %}',
        front=False,
    )
    with pytest.raises(TemplateError):
        preview(renderer, "imp.html")


@pytest.mark.parametrize("how", ["file", "folder", "dotdot-folder"])
def test_a_symlink_cannot_read_a_file_outside_the_templates_folder(
    renderer: Renderer, tmp_path: Path, how: str
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    folder = renderer.folders[0]
    if how == "file":
        (folder / "blocks").mkdir(parents=True, exist_ok=True)
        (folder / "blocks" / "evil.html").symlink_to(secret)
        include = "blocks/evil.html"
    elif how == "folder":
        (folder / "linked").symlink_to(secret.parent, target_is_directory=True)
        include = "linked/secret.txt"
    else:
        include = "../../outside/secret.txt"
    write(renderer, "sym.html", f'{{% include "{include}" %}}')
    with pytest.raises(TemplateError) as caught:
        preview(renderer, "sym.html")
    assert "TOP-SECRET" not in str(caught.value)
    # the link as a template of its own is refused too (render and `templates check`)
    (folder / "direct.html").symlink_to(secret)
    with pytest.raises(TemplateError, match="outside the templates folder"):
        renderer.template("direct.html")


def test_a_link_inside_the_templates_folder_still_works(renderer: Renderer) -> None:
    write(renderer, "blocks/real.html", "REAL-BLOCK", front=False)
    (renderer.folders[0] / "blocks" / "alias.html").symlink_to("real.html")
    write(renderer, "uses.html", '{% include "blocks/alias.html" %}')
    assert "REAL-BLOCK" in preview(renderer, "uses.html").html


def test_an_ordinary_template_is_unchanged(renderer: Renderer) -> None:
    body = (
        "{% set ns = namespace(s='') %}{% for p in recommendations %}"
        "{% set ns.s = ns.s ~ p.name ~ ', ' %}{% endfor %}{{ ns.s|trim|truncate(200) }}"
        "{{ '%.2f'|format(3.14159) }} {{ '{:>8}'.format('ok') }} {{ 'ab'|center(6) }}"
        "{{ [1, 2, 3]|join('-') }} {{ ('a' * 3) + 'b' }} {{ 2 ** 10 }} {{ range(3)|sum }}"
    )
    html = preview(renderer, write(renderer, "ok.html", body)).html
    assert "3.14" in html and "      ok" in html and "  ab  " in html
    assert "1-2-3" in html and "aaab" in html and "1024" in html
