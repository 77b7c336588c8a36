"""Resolve a template's structure once: inheritance, includes and slots become one source.

Anything that is the same for every customer is done once per template, not per message: CSS is
inlined and MJML compiled on the whole email, so the email must first be one document. A
*structural* Jinja pass does that: in every file, each construct except ``extends``, ``block``,
``include``, ``super()`` and ``slot("name")`` is wrapped in ``{% raw %}`` so it passes through
untouched; rendering the template then yields the flattened source, whose remaining constructs
are the per-customer ones. A slot expands to an ``if`` chain over ``slots.NAME`` whose branches
are the variants' blocks, so their markup is inlined too.

``protect`` / ``restore`` then hide the per-customer constructs from the HTML parsers: an HTML
comment in content (kept in place, even between table rows) and a plain word inside a tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from sendwise.content.errors import TemplateError, UnsafeTemplateError
from sendwise.content.sandbox import make_environment, reset_budget
from sendwise.content.spec import Slot, inside, split_front_matter

CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
STRUCTURAL_TAG = re.compile(r"\{%[-+]?\s*(extends|block|endblock|include)\b")
STRUCTURAL_EXPR = re.compile(r"\{\{[-+]?\s*(super\(\)|slot\(\s*[\"'][\w-]+[\"']\s*\))\s*[-+]?\}\}")
PLACEHOLDER = re.compile(r"<!--swj(\d+)-->|&lt;!--swj(\d+)--&gt;|swj(\d+)x(?:=\"\")?")


MAX_LOADS = 200
"""Most template files one template may read while its structure is resolved: a file that
includes or extends itself (or two that include each other) stops here with a clear error."""


class TemplateLoader(FileSystemLoader):
    """Files from the project's templates folder, then the shipped starters; front matter
    blanked. Paths with ``..`` are not found (Jinja's own check), nor a file whose real path
    (symlinks resolved) is outside these folders. ``seen`` collects the files read."""

    def __init__(
        self,
        folders: list[Path],
        wrap: Callable[[str], str] | None = None,
        seen: dict[str, str] | None = None,
    ) -> None:
        super().__init__([str(f) for f in folders], followlinks=False)
        self.folders, self.wrap, self.loads = folders, wrap, 0
        self.seen = seen if seen is not None else {}

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
        self.loads += 1
        if self.wrap is not None and self.loads > MAX_LOADS:
            msg = f"more than {MAX_LOADS} includes (does a template include or extend itself?)"
            raise UnsafeTemplateError(msg, file=template)
        source, filename, uptodate = super().get_source(environment, template)
        if not inside(self.folders, Path(filename)):
            raise TemplateNotFound(template)
        _, body, _ = split_front_matter(source, template)
        self.seen.setdefault(template, body)
        if self.wrap is None:
            return body, filename, uptodate
        environment.parse(body, name=template)  # syntax errors with this file's line numbers
        return self.wrap(body), filename, uptodate


def pass_through(source: str) -> str:
    """Every non-structural construct wrapped in ``{% raw %}`` (structural pass input)."""

    def wrap(m: re.Match[str]) -> str:
        text = m.group(0)
        if text.startswith("{#"):
            return ""
        if STRUCTURAL_TAG.match(text) or STRUCTURAL_EXPR.fullmatch(text):
            return text
        return "{% raw %}" + text + "{% endraw %}"

    return CONSTRUCT.sub(wrap, source)


def flatten(
    folders: list[Path],
    name: str,
    body: str,
    slots: dict[str, Slot],
    seen: dict[str, str] | None = None,
) -> str:
    """The template's whole source with its structure resolved (see the module docstring);
    ``seen`` collects the files read (name -> body)."""
    env = make_environment(html=False, loader=TemplateLoader(folders, pass_through, seen))

    def slot(slot_name: str) -> str:
        chosen = slots.get(slot_name)
        if chosen is None:
            raise TemplateError(f"slot({slot_name!r}) is not declared in the front matter")
        branches = []
        for variant in chosen.ruled:
            inner = env.get_template(variant.block).render()
            branches.append((f'slots.{slot_name} == "{variant.name}"', inner))
        default = chosen.default
        out = "".join(
            f"{{% {'if' if i == 0 else 'elif'} {cond} %}}{inner}"
            for i, (cond, inner) in enumerate(branches)
        )
        fallback = env.get_template(default.block).render() if default else ""
        return (
            out
            + ("{% else %}" if branches else "")
            + fallback
            + ("{% endif %}" if branches else "")
        )

    env.globals["slot"] = slot
    reset_budget()
    try:
        env.parse(body, name=name)
        return env.from_string(pass_through(body)).render()
    except TemplateNotFound as exc:
        msg = f"no template file {exc.name!r} in the templates folder (a name in quotes is needed)"
        raise TemplateError(msg, file=name) from None
    except TemplateSyntaxError as exc:
        msg = exc.message or "syntax error"
        raise TemplateError(msg, file=exc.name or name, line=exc.lineno) from None
    except SecurityError as exc:
        raise UnsafeTemplateError(str(exc), file=name) from None
    except UndefinedError as exc:
        msg = f"{exc.message}; include and extends need a file name in quotes"
        raise TemplateError(msg, file=name) from None
    except RecursionError:
        msg = "includes, extends or blocks nest too deep (does a template include itself?)"
        raise UnsafeTemplateError(msg, file=name) from None


def protect(source: str) -> tuple[str, list[str]]:
    """Replace each construct with a placeholder that HTML parsers keep where it is."""
    kept: list[str] = []
    out: list[str] = []
    in_tag, quote, pos = False, "", 0
    for m in CONSTRUCT.finditer(source):
        text = source[pos : m.start()]
        for ch in text:  # is the construct inside a tag (<a href="{{ url }}">)?
            if quote:
                quote = "" if ch == quote else quote
            elif in_tag:
                if ch in "\"'":
                    quote = ch
                elif ch == ">":
                    in_tag = False
            elif ch == "<":
                in_tag = True
        if in_tag and text.endswith("<"):
            in_tag = False  # "<{{ x }}" is text, not a tag
        out.append(text)
        out.append(f"swj{len(kept)}x" if in_tag else f"<!--swj{len(kept)}-->")
        kept.append(m.group(0))
        pos = m.end()
    out.append(source[pos:])
    return "".join(out), kept


def restore(html: str, kept: list[str], name: str, *, strict: bool = True) -> str:
    seen: set[int] = set()

    def back(m: re.Match[str]) -> str:
        index = int(next(g for g in m.groups() if g is not None))
        seen.add(index)
        return kept[index]

    out = PLACEHOLDER.sub(back, html)
    lost = [kept[i] for i in range(len(kept)) if i not in seen]
    if lost and strict:
        msg = f"template code where HTML drops it (e.g. inside <style>): {lost[0][:60]!r}"
        raise TemplateError(msg, file=name)
    return out
