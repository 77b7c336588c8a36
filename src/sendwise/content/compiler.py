"""Compile a template once: flatten, (MJML), inline CSS, derive the text part, compile Jinja.

Per message only the compiled Jinja templates run (see :mod:`.render`); nothing here is repeated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import css_inline
from jinja2 import Template, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.flatten import TemplateLoader, flatten, protect, restore
from sendwise.content.htmltext import html_to_text
from sendwise.content.sandbox import make_environment
from sendwise.content.spec import TemplateSpec, inside

logger = logging.getLogger(__name__)
STARTERS = Path(__file__).parent / "starters"
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class CompiledTemplate:
    spec: TemplateSpec
    subject: Template
    preheader: Template
    html: Template
    text: Template
    html_source: str
    """The compiled HTML template source (CSS inlined), for debugging and lint."""
    text_source: str
    sources: tuple[tuple[str, str], ...] = ()
    """(file name, body) of every file the template was made of, to name the file and line
    of an error at render time (see :mod:`.failures`)."""


def environments(folders: list[Path]) -> tuple[ImmutableSandboxedEnvironment, ...]:
    """(HTML environment with autoescape, text environment) reading these folders."""
    loader = TemplateLoader(folders)
    return make_environment(html=True, loader=loader), make_environment(html=False, loader=loader)


def compile_template(
    spec: TemplateSpec,
    folders: list[Path],
    envs: tuple[ImmutableSandboxedEnvironment, ...] | None = None,
) -> CompiledTemplate:
    """Compile ``spec`` (read from one of ``folders``); raises TemplateError with file:line."""
    html_env, text_env = envs or environments(folders)
    seen: dict[str, str] = {spec.name: spec.body}
    flat = flatten(folders, spec.name, spec.body, spec.slots, seen)
    protected, kept = protect(flat)
    if spec.mjml:
        protected = _mjml(protected, spec.name)
    try:
        inlined = _INLINER.inline(protected)
    except ValueError as exc:
        msg = f"cannot inline CSS ({exc}); in a style attribute, template code can only be a"
        msg += ' value, e.g. style="color: {{ c }}", not a whole declaration'
        raise TemplateError(msg, file=spec.name) from None
    html_source = restore(inlined, kept, spec.name)
    if spec.text == "auto":
        text_source = restore(html_to_text(inlined, kept), kept, spec.name, strict=False)
    else:
        text_source = _hand_written_text(folders, spec, seen)
    return CompiledTemplate(
        spec=spec,
        subject=_compile(text_env, spec.subject, spec, "subject"),
        preheader=_compile(text_env, spec.preheader, spec, "preheader"),
        html=_compile(html_env, html_source, spec, "HTML"),
        text=_compile(text_env, text_source, spec, "text part"),
        html_source=html_source,
        text_source=text_source,
        sources=tuple(seen.items()),
    )


def _hand_written_text(folders: list[Path], spec: TemplateSpec, seen: dict[str, str]) -> str:
    path = next((f / spec.text for f in folders if inside([f], f / spec.text)), None)
    if path is None or ".." in Path(spec.text).parts:
        msg = f"text part {spec.text!r} not found beside the template"
        raise TemplateError(
            msg, file=spec.name, line=spec.front_lines.get("text"), code="no-text-part"
        )
    body = path.read_text(encoding="utf-8")
    seen[spec.text] = body
    return flatten(folders, spec.text, body, spec.slots, seen)


def _mjml(source: str, name: str) -> str:
    import mjml

    try:
        return mjml.mjml2html(source)
    except Exception as exc:  # MRML raises its own error types
        raise TemplateError(f"MJML: {exc}", file=name) from None


def _compile(
    env: ImmutableSandboxedEnvironment, source: str, spec: TemplateSpec, part: str
) -> Template:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        line = spec.front_lines.get(part)  # the subject's or preheader's line in the file
        raise TemplateError(f"{part}: {exc.message}", file=spec.name, line=line) from None
    except (RecursionError, MemoryError):
        msg = f"{part}: expressions nest too deep to compile"
        raise UnsafeTemplateError(msg, file=spec.name, line=spec.front_lines.get(part)) from None
