"""Where a template failed while rendering: the file and line of the construct that raised.

The HTML and text parts run as one compiled source made of several files (the template, its
layout, blocks, slot variants) with CSS inlined, so the compiled line is not a line of any
file. The traceback gives the compiled line; the template code on it (``{{ ... }}`` or
``{% ... %}``) is then looked up in the files the template was made of, which gives the file
and line a template author can open. The subject and preheader are front-matter keys: their
line is the key's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jinja2 import TemplateError as JinjaError
from jinja2 import UndefinedError
from jinja2.sandbox import SecurityError

from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.flatten import CONSTRUCT

if TYPE_CHECKING:
    from sendwise.content.compiler import CompiledTemplate

PARTS = ("subject", "preheader", "html", "text")


def compiled_line(exc: BaseException) -> tuple[str | None, int | None]:
    """(template name or None for a compiled part, line) of the innermost template frame."""
    name, line, tb = None, None, exc.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            name, line = template.name, template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return name, line


def locate(compiled: CompiledTemplate, part: str, exc: BaseException) -> tuple[str, int | None]:
    """The (file, line) in the template's own files where ``exc`` was raised."""
    spec = compiled.spec
    if part in ("subject", "preheader"):
        return spec.name, spec.front_lines.get(part)
    name, line = compiled_line(exc)
    if name is not None:  # a template imported at render time: its own lines
        return name, line
    source = compiled.html_source if part == "html" else compiled.text_source
    lines = source.split("\n")
    if line is None or not 0 < line <= len(lines):
        return spec.name, None
    for construct in CONSTRUCT.findall(lines[line - 1]):
        for file, body in compiled.sources:
            at = body.find(construct)
            if at >= 0:
                return file, body.count("\n", 0, at) + 1
    return spec.name, None


def render_error(compiled: CompiledTemplate, part: str, exc: BaseException) -> TemplateError:
    """``exc``, raised while rendering ``part``, as a one-line TemplateError naming where."""
    file, line = locate(compiled, part, exc)
    if isinstance(exc, UnsafeTemplateError | TemplateError):
        kind = type(exc)
        message = exc.message
    elif isinstance(exc, SecurityError):
        kind, message = UnsafeTemplateError, str(exc)
    elif isinstance(exc, RecursionError):
        kind, message = UnsafeTemplateError, "calls or values nest too deep"
    elif isinstance(exc, MemoryError):
        kind, message = UnsafeTemplateError, "out of memory"
    elif isinstance(exc, UndefinedError):
        kind, message = TemplateError, f"{exc.message} (see `sendwise templates tokens`)"
    else:
        kind, message = TemplateError, f"cannot render: {exc}"
    where = "" if part == "html" else f"{part}: "
    return kind(f"{where}{message}", file=file, line=line)


RENDER_ERRORS = (
    TemplateError,
    JinjaError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    AssertionError,
    RecursionError,
    MemoryError,
)
"""What rendering a part may raise (a template's fault); anything else is a bug of ours."""
