"""``sendwise templates check``: the problems that break an email, each with file and line.

Checks: syntax and compile errors, unknown tokens (against the live profile schema), no
unsubscribe link, no text part, a slot without a default variant or with a bad rule, images
without alt text, and HTML over 102 KB for the made-up customer (Gmail clips larger messages).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from jinja2 import TemplateSyntaxError, nodes

from sendwise.content.data import PRODUCT_FIELDS, SCORES
from sendwise.content.errors import TemplateError
from sendwise.content.spec import TemplateSpec, inside, split_front_matter
from sendwise.content.tokens import known_fields, profile_schema
from sendwise.errors import InputError

GMAIL_CLIP = 102 * 1024
BUILTINS = {"range", "dict", "namespace", "slot", "super", "loop", "caller", "varargs", "kwargs"}
IMG = re.compile(r"<(?:img|mj-image)\b[^>]*>", re.I | re.S)
ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
UNSUBSCRIBE = re.compile(r"""href\s*=\s*["']\{\{-?\s*links\.unsubscribe\b""")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}: {self.message}"


class _Tokens:
    """Walks a Jinja AST and reports names and attributes that are not tokens."""

    def __init__(self, fields: dict[str, set[str] | None], file: str) -> None:
        self.fields, self.file = fields, file
        self.problems: list[Problem] = []

    def report(self, node: nodes.Node, msg: str) -> None:
        self.problems.append(Problem(self.file, node.lineno, "unknown-token", msg))

    def walk(self, node: nodes.Node, scope: dict[str, str]) -> None:
        if isinstance(node, nodes.For):
            self.walk(node.iter, scope)
            item = _item_kind(node.iter, scope)
            inner = {**scope, **dict.fromkeys(_targets(node.target), item)}
            for child in (*node.body, *node.else_, *([node.test] if node.test else [])):
                self.walk(child, inner)
            return
        if isinstance(node, nodes.Macro | nodes.CallBlock):
            args = getattr(node, "args", [])
            names = [a.name for a in args] + ([node.name] if isinstance(node, nodes.Macro) else [])
            scope[getattr(node, "name", "")] = "any"
            inner = {**scope, **dict.fromkeys(names, "any")}
            for child in node.body:
                self.walk(child, inner)
            return
        if isinstance(node, nodes.Assign | nodes.AssignBlock | nodes.With):
            for target in [getattr(node, "target", None), *getattr(node, "targets", [])]:
                if target is not None:
                    scope.update(dict.fromkeys(_targets(target), "any"))
        if isinstance(node, nodes.Import | nodes.FromImport):
            names = [node.target] if isinstance(node, nodes.Import) else node.names
            for n in names:
                scope[n if isinstance(n, str) else n[-1]] = "any"
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            self.attribute(node, node.node.name, scope)
        if isinstance(node, nodes.Name) and node.ctx == "load":
            self.name(node, scope)
        for child in node.iter_child_nodes():
            self.walk(child, scope)

    def name(self, node: nodes.Name, scope: dict[str, str]) -> None:
        if node.name in scope or node.name in self.fields or node.name in BUILTINS:
            return
        close = difflib.get_close_matches(node.name, list(self.fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.report(node, f"unknown token {node.name!r}{hint}")

    def attribute(self, node: nodes.Getattr, root: str, scope: dict[str, str]) -> None:
        if root in scope:
            allowed: Any = set(PRODUCT_FIELDS) if scope[root] == "product" else None
        else:
            allowed = self.fields.get(root)
        if allowed is None or node.attr in allowed:
            return
        close = difflib.get_close_matches(node.attr, sorted(allowed), n=1)
        hint = f"; did you mean '{root}.{close[0]}'?" if close else ""
        self.report(node, f"unknown token '{root}.{node.attr}'{hint}")


def _targets(node: nodes.Node) -> list[str]:
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Tuple):
        return [n for item in node.items for n in _targets(item)]
    return []


def _item_kind(iterable: nodes.Node, scope: dict[str, str]) -> str:
    """What a loop over ``iterable`` yields: a product, a list of products, or anything."""
    if isinstance(iterable, nodes.Filter) and iterable.name in ("batch", "slice"):
        return (
            "products" if _item_kind(cast(nodes.Node, iterable.node), scope) == "product" else "any"
        )
    if isinstance(iterable, nodes.Filter) and iterable.node is not None:
        return _item_kind(iterable.node, scope)  # sort, selectattr, ...: same items
    if isinstance(iterable, nodes.Name):
        if iterable.name == "recommendations":
            return "product"
        if scope.get(iterable.name) == "products":
            return "product"
    return "any"


def _referenced(tree: nodes.Template) -> list[str]:
    out = []
    node: Any
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        if isinstance(node.template, nodes.Const) and isinstance(node.template.value, str):
            out.append(node.template.value)
    return out


def lint_template(renderer: Any, name: str) -> list[Problem]:
    """Every problem of template ``name`` and the files it uses, sorted by file and line."""
    from sendwise.content.render import preview

    problems: list[Problem] = []
    shown = _shown_path(renderer, name)
    try:
        compiled = renderer.template(name)
    except TemplateError as exc:
        line = exc.line or 1
        file = _shown_path(renderer, exc.file) if exc.file else shown
        return [Problem(file, line, exc.code, exc.message)]
    spec: TemplateSpec = compiled.spec
    schema = profile_schema(renderer.wh)
    fields = known_fields(schema, spec.slots)
    problems += _file_problems(renderer, name, spec.body, fields, seen=set())
    for key in ("subject", "preheader"):
        walker = _Tokens(fields, shown)
        walker.walk(renderer._envs[1].parse(getattr(spec, key)), {})
        line = spec.front_lines.get(key, 1)
        problems += [Problem(p.file, line, p.code, f"{key}: {p.message}") for p in walker.problems]
    for slot in spec.slots.values():
        line = spec.front_lines.get(slot.name, 1)
        if slot.default is None:
            msg = f"slot {slot.name!r} has no default variant (a variant without a rule)"
            problems.append(Problem(shown, line, "no-default-variant", msg))
        if len([v for v in slot.variants if v.rule is None]) > 1:
            msg = f"slot {slot.name!r} has more than one variant without a rule"
            problems.append(Problem(shown, line, "no-default-variant", msg))
        for v in slot.variants:
            problems += _file_problems(renderer, v.block, None, fields, seen=set())
            if v.rule is not None:
                problems += _rule_problems(v.rule, schema, shown, line, f"{slot.name}/{v.name}")
    if not UNSUBSCRIBE.search(compiled.html_source):
        msg = 'no unsubscribe link: put <a href="{{ links.unsubscribe }}"> in the footer'
        problems.append(Problem(shown, 1, "no-unsubscribe", msg))
    words = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", compiled.text_source, flags=re.S)
    if not re.search(r"[^\W\d_]{2,}", words):
        msg = "no text part: the HTML has no text (only images?) and no text file is given"
        problems.append(Problem(shown, spec.front_lines.get("text", 1), "no-text-part", msg))
    problems += _size_problems(renderer, name, shown, preview)
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.code))


def _rule_problems(
    rule: str, schema: dict[str, str] | None, shown: str, line: int, where: str
) -> list[Problem]:
    """A rule checked against the live profile schema, or (not built yet) its field names
    against the profile columns sendwise builds."""
    from sendwise.segments.errors import RuleError
    from sendwise.segments.language import validate_rule

    if schema is not None:
        full = {**{k: v for k, v in SCORES.items() if k not in schema}, **schema}
        try:
            validate_rule({k: v for k, v in full.items() if "array" not in v}, rule)
        except RuleError as exc:
            return [Problem(shown, line, "bad-rule", f"slot {where}: {exc}")]
        return []
    known = set(static_profile_columns())
    unknown = sorted(_rule_fields_of(rule) - known)
    if not unknown:
        return []
    close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return [Problem(shown, line, "bad-rule", f"slot {where}: unknown field {unknown[0]!r}{hint}")]


def _rule_fields_of(rule: str) -> set[str]:
    import ast

    from sendwise.segments._lexicon import normalise

    try:
        tree = ast.parse(normalise(rule), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def static_profile_columns() -> list[str]:
    """The columns ``build_profiles`` writes (features, identity, RFM, segments) and the scores."""
    from sendwise.features.build import feature_columns
    from sendwise.profiles.build import IDENTITY
    from sendwise.segments.rules import BUILTIN_SEGMENTS

    rfm = ["r_score", "f_score", "m_score", "rfm_score", "rfm_segment", "segments", "cluster"]
    segs = [s.column for s in BUILTIN_SEGMENTS]
    return [*feature_columns(), *IDENTITY, *rfm, "cluster_description", *segs, *SCORES]


def _size_problems(renderer: Any, name: str, shown: str, preview: Any) -> list[Problem]:
    try:
        html = preview(renderer, name).html
    except InputError as exc:
        return [Problem(shown, getattr(exc, "line", None) or 1, "render", str(exc))]
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP:
        msg = f"HTML is {size / 1024:.0f} KB for the preview customer; Gmail clips over 102 KB"
        return [Problem(shown, 1, "too-large", msg)]
    return []


def _file_problems(renderer: Any, name: str, body: str | None, fields: dict, seen: set) -> list:
    if name in seen:
        return []
    seen.add(name)
    shown = _shown_path(renderer, name)
    if body is None:
        path = _find(renderer, name)
        if path is None:
            return [Problem(shown, 1, "error", f"no template file {name!r}")]
        _, body, _ = split_front_matter(path.read_text(encoding="utf-8"), name)
    problems = []
    for m in IMG.finditer(body):
        alt = ALT.search(m.group(0))
        if alt is None or not (alt.group(1) or alt.group(2) or "").strip():
            line = body.count("\n", 0, m.start()) + 1
            problems.append(Problem(shown, line, "img-no-alt", "image without alt text"))
    try:
        tree = renderer._envs[0].parse(body)
    except TemplateSyntaxError as exc:
        return [*problems, Problem(shown, exc.lineno, "error", exc.message or "syntax error")]
    walker = _Tokens(fields, shown)
    walker.walk(tree, {})
    problems += walker.problems
    for ref in _referenced(tree):
        problems += _file_problems(renderer, ref, None, fields, seen)
    return problems


def _find(renderer: Any, name: str) -> Path | None:
    return next((f / name for f in renderer.folders if inside([f], f / name)), None)


def _shown_path(renderer: Any, name: str) -> str:
    path = _find(renderer, name)
    if path is None:
        return name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
