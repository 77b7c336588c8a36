"""Journey conditions in the segment rule language, checked by its compiler and evaluated here
on one customer's live profile (or one event's properties) in plain Python.

The rule compiler (:mod:`sendwise.segments.language`) builds Ibis expressions for the
warehouse; a journey decides one customer at a time, within milliseconds, so
:func:`evaluate` walks the same whitelisted syntax tree over a dict with the language's
null rules (a comparison with a missing value is false, ``x / 0`` is null, a missing boolean
is false). A rule is always validated by the compiler first (:func:`check`), so only trees it
accepts reach the evaluator; a property test compares the two on random rows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from sendwise.segments._lexicon import ARITH, COMPARE, normalise
from sendwise.segments.language import validate_rule

PROPERTIES = re.compile(r"\bproperties\.([A-Za-z_][A-Za-z0-9_]*)")
_IBIS = {"number": "float64", "string": "string", "bool": "boolean"}


def event_rule(text: str) -> str:
    """An event filter reads ``properties.price`` as the field ``price`` (the language has no
    attribute access): outside quoted text, ``properties.`` is dropped."""
    out, quote, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == quote:
                quote = ""
            i += 1
            continue
        if ch in "'\"":
            quote = ch
            out.append(ch)
            i += 1
            continue
        match = PROPERTIES.match(text, i) if text.startswith("properties.", i) else None
        if match and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            out.append(match.group(1))
            i = match.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def event_schema(rule: str) -> dict[str, str]:
    """Field types of an event filter, from what each field is compared with (a number:
    float64, true/false: boolean, else string): event properties have no fixed schema."""
    try:
        tree = ast.parse(normalise(rule.strip()), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    kinds: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            kinds.setdefault(node.id, "string")
        if isinstance(node, ast.Compare):
            for name_node in (node.left, *node.comparators):
                if not isinstance(name_node, ast.Name):
                    continue
                for other in (node.left, *node.comparators):
                    kind = _constant_kind(other)
                    if kind:
                        kinds[name_node.id] = kind
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                if isinstance(side, ast.Name):
                    kinds[side.id] = "number"
    for node in ast.walk(tree):  # a bare name used as a condition is a boolean
        if isinstance(node, ast.BoolOp | ast.UnaryOp):
            for sub in getattr(node, "values", [getattr(node, "operand", None)]):
                if isinstance(sub, ast.Name):
                    kinds[sub.id] = "bool"
    if isinstance(tree.body, ast.Name):
        kinds[tree.body.id] = "bool"
    return {k: _IBIS[v] for k, v in kinds.items()}


def _constant_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        return _constant_kind(node.elts[0])
    if not isinstance(node, ast.Constant) or node.value is None:
        return None
    if isinstance(node.value, bool):
        return "bool"
    return "number" if isinstance(node.value, int | float) else "string"


def check(schema: Mapping[str, str], rule: str) -> None:
    """RuleError unless ``rule`` compiles against ``schema`` (field -> Ibis type)."""
    validate_rule(dict(schema), rule)


@lru_cache(maxsize=1024)
def _tree(rule: str) -> ast.expr:
    return ast.parse(
        normalise(rule.strip().replace("\n", " ").replace("\r", " ")), mode="eval"
    ).body


def evaluate(rule: str, values: Mapping[str, Any]) -> bool:
    """The (validated) rule over ``values``; missing fields are null."""
    return _cond(_tree(rule), values)


def _cond(node: ast.AST, v: Mapping[str, Any]) -> bool:
    return _value(node, v) is True


def _value(node: ast.AST, v: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = (_cond(x, v) for x in node.values)
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return not _cond(node.operand, v)
        inner = _number(_value(node.operand, v))
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Name):
        value = v.get(node.id)
        return None if isinstance(value, float) and value != value else value  # NaN is null
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        a, b = _number(_value(node.left, v)), _number(_value(node.right, v))
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.Div):
            return None if b == 0 else a / b
        return ARITH[type(node.op)](a, b)
    if isinstance(node, ast.Compare):
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if not _pair(left, op, right, v):
                return False
            left = right
        return True
    return None


def _pair(left: ast.AST, op: ast.cmpop, right: ast.AST, v: Mapping[str, Any]) -> bool:
    a = _value(left, v)
    if isinstance(op, ast.Is | ast.IsNot):
        return (a is None) == isinstance(op, ast.Is)
    if isinstance(op, ast.In | ast.NotIn):
        if a is None:
            return False
        items = [_value(x, v) for x in getattr(right, "elts", [])]
        return (a in items) == isinstance(op, ast.In)
    b = _value(right, v)
    if a is None or b is None:
        return False
    a, b = _time(a, b), _time(b, a)
    try:
        return bool(COMPARE[type(op)](a, b))
    except TypeError:
        return False


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    return x if isinstance(x, int | float) else None


def _time(x: Any, other: Any) -> Any:
    if isinstance(x, str) and isinstance(other, datetime):
        try:
            return datetime.fromisoformat(x).replace(tzinfo=None)
        except ValueError:
            return x
    if isinstance(x, datetime):
        return x.replace(tzinfo=None)
    return x
