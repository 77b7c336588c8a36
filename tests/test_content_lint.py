"""`sendwise templates check`: each problem found, with its file and line, in deliberately
broken templates; the starter templates pass, with and without a built profile table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sendwise.content.lint import lint_template
from sendwise.content.render import Renderer
from sendwise.content.starters import NAMES

BROKEN = """\
+++
subject = "Hello {{ customer.firstname or 'you' }}"

[[slots.offer]]
name = "premium"
rule = "p_purchase > 0.8"
block = "blocks/offer-premium.html"
+++
<html><body>
<p>Hi {{ customer.frist_name }}</p>
<img src="{{ shop.logo_url or shop.url }}">
{% for product in recommendations %}
<a href="{{ product.url }}">{{ product.title }}</a>
{% endfor %}
{{ slot("offer") }}
<p>{{ shop.adress }} {{ profil.x }}</p>
</body></html>
"""


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def found(problems, code: str) -> list[tuple[str, int]]:
    return [(Path(p.file).name, p.line) for p in problems if p.code == code]


@pytest.fixture
def renderer(project) -> Renderer:
    settings, wh = project
    return Renderer(settings, wh)


def test_linter_finds_each_problem_with_file_and_line(renderer: Renderer) -> None:
    folder = renderer.folders[0]
    write(folder, "broken.html", BROKEN)
    problems = lint_template(renderer, "broken.html")
    unknown = {
        (Path(p.file).name, p.line, p.message) for p in problems if p.code == "unknown-token"
    }
    lines = sorted(line for _, line, _ in unknown)
    assert lines == [2, 10, 13, 16, 16]
    assert any("'customer.first_name'" in m for *_, m in unknown)  # the suggestion
    assert found(problems, "img-no-alt") == [("broken.html", 11)]
    assert found(problems, "no-default-variant") == [("broken.html", 4)]
    assert found(problems, "no-unsubscribe") == [("broken.html", 1)]


def test_linter_finds_a_missing_text_part_and_a_clipped_size(renderer: Renderer) -> None:
    folder = renderer.folders[0]
    footer = '<a href="{{ links.unsubscribe }}">Unsubscribe</a>'
    write(folder, "notext.html", f'+++\nsubject = "x"\ntext = "notext.txt"\n+++\n{footer}\n')
    assert found(lint_template(renderer, "notext.html"), "no-text-part") == [("notext.html", 3)]
    images = '+++\nsubject = "x"\n+++\n<img src="https://x/a.png" alt="A">' + footer.replace(
        "Unsubscribe", '<img src="https://x/u.png" alt="u">'
    )
    write(folder, "images.html", images)
    assert found(lint_template(renderer, "images.html"), "no-text-part") == [("images.html", 1)]
    big = '+++\nsubject = "x"\n+++\n' + "<p>" + "word " * 22_000 + "</p>\n" + footer
    write(folder, "big.html", big)
    assert found(lint_template(renderer, "big.html"), "too-large") == [("big.html", 1)]


def test_linter_reports_syntax_errors_and_bad_rules(renderer: Renderer) -> None:
    folder = renderer.folders[0]
    write(folder, "syntax.html", '+++\nsubject = "x"\n+++\n<p>\n{{ x + }}\n</p>\n')
    assert found(lint_template(renderer, "syntax.html"), "error") == [("syntax.html", 5)]
    write(folder, "subj.html", '+++\n\npreheader = "{{ x"\n+++\n<p>x</p>\n')
    assert found(lint_template(renderer, "subj.html"), "error") == [("subj.html", 3)]
    write(folder, "blocks/bad.html", "<p>\n\n{% if x %}</p>\n")
    write(folder, "uses.html", '+++\nsubject = "x"\n+++\n{% include "blocks/bad.html" %}\n')
    assert found(lint_template(renderer, "uses.html"), "error") == [("bad.html", 3)]
    rule = BROKEN.replace(
        'block = "blocks/offer-premium.html"\n+++',
        (
            'block = "blocks/offer-premium.html"\n\n[[slots.offer]]\nname = "d"\n'
            'block = "blocks/offer-generic.html"\n+++'
        ),
    ).replace("p_purchase > 0.8", "p_purchse > 0.8")
    write(folder, "rule.html", rule)
    messages = [p.message for p in lint_template(renderer, "rule.html")]
    assert any("unknown field 'p_purchse'" in m for m in messages)


@pytest.mark.parametrize("name", NAMES)
def test_starters_pass_without_profiles(renderer: Renderer, name: str) -> None:
    assert lint_template(renderer, name) == []


def test_starters_pass_on_a_built_shop_and_the_cli_exit_codes(tmp_path: Path) -> None:
    from content_shop import build_shop

    settings, wh, _ = build_shop(tmp_path / "shop", customers=40, seed=3)
    with wh:
        renderer = Renderer(settings, wh)
        for name in NAMES:
            assert lint_template(renderer, name) == [], name
    env = {**os.environ, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "sendwise.cli"]
    ok = subprocess.run(
        [*cli, "templates", "check", "-p", str(settings.project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{len(NAMES)} template(s) checked: no problems" in ok.stdout
    write(settings.path("templates"), "broken.html", BROKEN)
    bad = subprocess.run(
        [*cli, "templates", "check", "broken.html", "-p", str(settings.project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 1
    assert "broken.html:10: unknown-token" in bad.stdout
