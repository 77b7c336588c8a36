"""Compiling once: flattening, CSS inlining, MJML, the derived text part, and the CLI commands."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from sendwise.content.flatten import protect, restore
from sendwise.content.render import Renderer, preview
from sendwise.delivery.mime import build_mime, compose

FOOTER = '<a href="{{ links.unsubscribe }}">Unsubscribe</a>'
MJML = """\
+++
subject = "Hello {{ customer.first_name or 'there' }}"
mjml = true
+++
<mjml>
  <mj-head><mj-style inline="inline">.lead { color: #ff0000; }</mj-style></mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text><p class="lead">Hi {{ customer.first_name or "there" }}</p></mj-text>
        <mj-text>{% for p in recommendations %}<a href="{{ p.url }}">{{ p.name }}</a> {% endfor %}
        <a href="{{ links.unsubscribe }}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def test_protect_keeps_code_in_tables_and_attributes() -> None:
    source = '<table>{% for r in rows %}<tr><td class="{{ r.k }}">{{ r.v }}</td></tr>{% endfor %}'
    protected, kept = protect(source + "</table>")
    assert "{{" not in protected and "{%" not in protected
    assert 'class="swj1x"' in protected and "<!--swj0-->" in protected
    assert restore(protected, kept, "t") == source + "</table>"


def test_css_is_inlined_once_at_compile_time(project) -> None:
    settings, _ = project
    renderer = Renderer(settings)
    compiled = renderer.template("newsletter.html")
    assert "<style>" in compiled.html_source  # only the @media rules stay in a style tag
    assert 'class="card" style="' in compiled.html_source
    assert "{% for product in row %}" in compiled.html_source  # per-customer code kept as is
    assert renderer.template("newsletter.html") is compiled  # cached, not compiled again


def test_mjml_templates_compile_once_and_render(project) -> None:
    settings, _ = project
    renderer = Renderer(settings)
    (settings.path("templates") / "mj.html").write_text(MJML, encoding="utf-8")
    compiled = renderer.template("mj.html")
    assert "<mj-" not in compiled.html_source and "mj-column-per-100" in compiled.html_source
    message = preview(renderer, "mj.html")
    assert "Hi Alex" in message.html and "color: #ff0000" in message.html
    assert "Linen Throw" in message.html and "Linen Throw" in message.text
    parsed = email.message_from_bytes(
        _eml(message, to="a@b.c", sender="s@b.c"), policy=policy.default
    )
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_hand_written_text_part(project) -> None:
    settings, _ = project
    folder = settings.path("templates")
    (folder / "hand.html").write_text(
        f'+++\nsubject = "x"\ntext = "hand.txt"\n+++\n<p>HTML</p>{FOOTER}', encoding="utf-8"
    )
    (folder / "hand.txt").write_text(
        "Hello {{ customer.first_name }} <b>\nStop: {{ links.unsubscribe }}\n", encoding="utf-8"
    )
    message = preview(Renderer(settings), "hand.html")
    assert (
        message.text
        == "Hello Alex <b>\nStop: " + message.html.split('href="')[1].split('"')[0] + "\n"
    )


def _eml(message, *, to: str, sender: str) -> bytes:
    links = {"unsubscribe": "https://shop.example/u"}
    return build_mime(compose(message, key="k1", to=to, sender=sender, links=links))


def test_long_lines_are_quoted_printable_and_non_ascii_headers_are_encoded() -> None:
    from sendwise.content.message import RenderedEmail

    message = RenderedEmail("Grüße, Zoë", "p", "<p>" + "é" * 2000 + "</p>", "plain ascii\n")
    raw = _eml(message, to="zoë@example.com", sender="Shop <s@example.com>")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw and b"7bit" in raw
    assert max(map(len, raw.split(b"\r\n"))) <= 998
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Grüße, Zoë"
    assert parsed.get_body(("html",)).get_content() == message.html


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "sendwise.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_cli_render_customer_segment_preview_and_tokens(tmp_path: Path) -> None:
    from content_shop import build_shop

    settings, wh, _ = build_shop(tmp_path / "shop", customers=60, seed=4)
    one = wh.table("profile").customer_id.to_pyarrow().to_pylist()[0]
    wh.close()
    p = ["-p", str(settings.project)]
    shown = run("render", "welcome.html", "--customer", one, *p)
    assert shown.returncode == 0, shown.stderr
    assert "subject:" in shown.stdout and "Unsubscribe (https://" in shown.stdout
    out = tmp_path / "one.html"
    assert run("render", "welcome.html", "--customer", one, "--out", str(out), *p).returncode == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    folder = tmp_path / "inactive"
    batch = run("render", "win-back.html", "--segment", "Inactive", "--out", str(folder), *p)
    assert batch.returncode == 0, batch.stderr
    files = sorted(folder.glob("*.eml"))
    assert files and f"wrote {len(files)} .eml file(s)" in batch.stdout
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["To"].endswith("@example.com")
    pre = run("render", "newsletter.html", "--preview", "--set", "p_purchase=0.1", *p)
    assert "{'offer': 'reengage'}" in pre.stdout
    tokens = run("templates", "tokens", *p)
    assert "scores.p_purchase" in tokens.stdout and "profile.favourite_category" in tokens.stdout
    variants = run("templates", "variants", "newsletter.html", *p)
    assert "generic" in variants.stdout and "60" in variants.stdout
    missing = run("render", "welcome.html", "--customer", "NOPE", *p)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    unknown = run("render", "nope.html", "--preview", *p)
    assert unknown.returncode == 1 and "no template 'nope.html'" in unknown.stderr


def test_code_in_a_style_value_works_and_a_bare_one_is_refused_clearly(project) -> None:
    from sendwise.content.errors import TemplateError

    settings, _ = project
    renderer = Renderer(settings)
    folder = settings.path("templates")
    body = '<p class="x" style="color: {{ shop.currency and \'#123456\' }}">Hi</p>' + FOOTER
    (folder / "style.html").write_text('+++\nsubject = "x"\n+++\n' + body, encoding="utf-8")
    assert "color: #123456" in preview(renderer, "style.html").html
    bad = '<style>.x { margin: 0; }</style><p class="x" style="color: red; {{ shop.name }}">Hi</p>'
    bad += FOOTER
    (folder / "bad.html").write_text('+++\nsubject = "x"\n+++\n' + bad, encoding="utf-8")
    with pytest.raises(TemplateError, match="not a whole declaration"):
        renderer.template("bad.html")
