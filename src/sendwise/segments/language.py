"""The rule language: a boolean expression over a features table, compiled to an Ibis expression.

Marketers write ``product_views_30d > 5 and orders_30d == 0``; the warehouse runs it. The text is
parsed by ``ast.parse(mode="eval")`` and only a whitelist of node types is compiled, straight to
Ibis (never ``eval``, never SQL text), so a rule can read fields and nothing else; values such
as ``"x'; DROP TABLE customer; --"`` are Ibis literals, quoted by the SQL compiler.

Grammar: ``and`` / ``or`` / ``not`` / parentheses; ``== != < <= > >=`` (chains allowed); ``in`` /
``not in`` a list of constants; ``is null`` / ``is not null``; ``+ - * /`` between numbers
(dividing by zero gives null); constants: numbers, "text" or 'text', ``true`` / ``false``.
Keywords are case-insensitive (``AND``, ``NULL``); field names are not.

Nulls: a comparison involving a null is **false**, never null, and a boolean field used as a
condition reads null as false. So ``x != 1`` and ``x not in [...]`` are false when ``x`` is
null, while ``not (x == 1)`` is true; test for missing values with ``x is null``.
"""

from __future__ import annotations

import ast
import difflib
import functools
import operator
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from sendwise.segments._lexicon import ARITH, COMPARE, OPERATORS, REFUSED, Typed, kind_of, normalise
from sendwise.segments.errors import RuleError, RuleErrorKind

MAX_RULE_LENGTH = 4000
"""Longer rules are refused: no segment needs more, and it bounds parser work on hostile text."""


class _Compiler:
    def __init__(self, table: ir.Table, rule: str) -> None:
        self.table, self.rule = table, rule
        self.schema = table.schema()
        self.lead = len(rule) - len(rule.lstrip())
        self.source = normalise(rule.strip().replace("\n", " ").replace("\r", " "))

    def fail(self, msg: str, kind: RuleErrorKind, node: Any = None, **fields: Any) -> RuleError:
        pos = None
        if node is not None and hasattr(node, "col_offset"):
            prefix = self.source.encode()[: node.col_offset]  # ast offsets count UTF-8 bytes
            pos = self.lead + len(prefix.decode(errors="ignore")) + 1
        return RuleError(msg, rule=self.rule, kind=kind, position=pos, **fields)

    def compile(self) -> ir.BooleanValue:
        if not self.source:
            raise RuleError("empty rule", rule=self.rule, kind="syntax", position=1)
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            offset = exc.offset if exc.offset and exc.offset <= len(self.source) else None
            at = self.source[offset - 1] if offset else ""
            hint = "; use == to compare" if at == "=" and exc.msg == "invalid syntax" else ""
            msg = f"syntax error: {exc.msg}{hint}" if offset else "syntax error: incomplete rule"
            pos = self.lead + (offset or len(self.source) + 1)
            raise RuleError(msg, rule=self.rule, kind="syntax", position=pos) from None
        return self.condition(tree.body, "a rule")

    def condition(self, node: ast.AST, context: str) -> ir.BooleanValue:
        typed = self.visit(node)
        if typed.kind != "bool":
            hint = f"; compare it, e.g. {typed.field} > 0" if typed.kind == "number" else ""
            msg = f"{context} needs a condition (true or false), but {typed.what()} is not{hint}"
            raise self.fail(msg, "type", node, field=typed.field)
        return typed.expr.fill_null(False) if typed.field else typed.expr

    def visit(self, node: ast.AST) -> Typed:
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            parts = [self.condition(v, f"`{word}`") for v in node.values]
            combine = operator.and_ if word == "and" else operator.or_
            return Typed(functools.reduce(combine, parts), "bool")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return Typed(~self.condition(node.operand, "`not`"), "bool")
            inner = self.number(node.operand, "a sign")
            return Typed(-inner.expr if isinstance(node.op, ast.USub) else inner.expr, "number")
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.field(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node)
        if isinstance(node, ast.List | ast.Tuple):
            raise self.fail("a list is only allowed after `in` / `not in`", "forbidden", node)
        what = REFUSED.get(type(node), f"{type(node).__name__} syntax")
        raise self.fail(f"{what} is not allowed in a rule", "forbidden", node)

    def field(self, node: ast.Name) -> Typed:
        name = node.id
        if name not in self.schema:
            fields = list(self.schema.names)
            folded = [f for f in fields if f.lower() == name.lower()]
            close = folded or difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            suggestion = close[0] if close else None
            msg = f"unknown field {name!r}{hint}"
            raise self.fail(msg, "unknown_field", node, field=name, suggestion=suggestion)
        dtype = self.schema[name]
        return Typed(self.table[name], kind_of(dtype), field=name, dtype=str(dtype))

    def constant(self, node: ast.Constant) -> Typed:
        value = node.value
        if value is None:
            return Typed(None, "null")
        if isinstance(value, bool):
            return Typed(ibis.literal(value), "bool")
        if isinstance(value, int | float):  # an int too big for int64 is read as a float
            value = float(value) if isinstance(value, int) and abs(value) >= 2**63 else value
            return Typed(ibis.literal(value), "number")
        if isinstance(value, str):
            return Typed(ibis.literal(value, type="string"), "string")
        raise self.fail(f"{type(value).__name__} constants are not allowed", "forbidden", node)

    def number(self, node: ast.AST, context: str) -> Typed:
        typed = self.visit(node)
        if typed.kind != "number":
            msg = f"{context} needs numbers, but {typed.what()} is not a number"
            raise self.fail(msg, "type", node, field=typed.field)
        return typed

    def arithmetic(self, node: ast.BinOp) -> Typed:
        if type(node.op) not in (*ARITH, ast.Div):
            msg = f"operator {OPERATORS.get(type(node.op))} is not allowed; rules may use + - * /"
            raise self.fail(msg, "forbidden", node)
        left = self.number(node.left, "arithmetic")
        right = self.number(node.right, "arithmetic")
        if isinstance(node.op, ast.Div):  # x / 0 is null (so false), not inf or NaN
            return Typed(left.expr / right.expr.nullif(0), "number")
        return Typed(ARITH[type(node.op)](left.expr, right.expr), "number")

    def compare(self, node: ast.Compare) -> Typed:
        left, result = node.left, None
        for op, right in zip(node.ops, node.comparators, strict=True):
            part = self.compare_pair(left, op, right)
            result = part if result is None else result & part
            left = right
        return Typed(result, "bool")

    def compare_pair(self, left_node: ast.AST, op: ast.cmpop, right_node: ast.AST) -> Any:
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right_node, ast.Constant) and right_node.value is None):
                raise self.fail("`is` only tests for null: x is null", "syntax", right_node)
            left = self.visit(left_node)
            if left.kind == "null":
                raise self.fail("`is null` needs a field on its left", "type", left_node)
            return left.expr.isnull() if isinstance(op, ast.Is) else left.expr.notnull()
        left = self.visit(left_node)
        if isinstance(op, ast.In | ast.NotIn):
            values = self.constants(right_node, left)
            hit = left.expr.isin(values) if isinstance(op, ast.In) else left.expr.notin(values)
            return hit.fill_null(False)
        right = self.visit(right_node)
        if "null" in (left.kind, right.kind):
            msg = "comparing with null is always false; write `x is null` or `x is not null`"
            raise self.fail(msg, "type", right_node if right.kind == "null" else left_node)
        left, right = self.as_time(left, right, left_node), self.as_time(right, left, right_node)
        if left.kind != right.kind:
            bad, node = (right, right_node) if right.field and not left.field else (left, left_node)
            other = left if bad is right else right
            msg = f"cannot compare {bad.what()} with {other.what()}"
            raise self.fail(msg, "type", node, field=bad.field or other.field)
        if left.kind == "bool" and type(op) not in (ast.Eq, ast.NotEq):
            msg = "true/false values have no order; use == or !="
            raise self.fail(msg, "type", left_node, field=left.field or right.field)
        return COMPARE[type(op)](left.expr, right.expr).fill_null(False)

    def as_time(self, typed: Typed, other: Typed, node: ast.AST) -> Typed:
        """A text constant compared with a time, read as an ISO time: ``as_of > "2024-05-01"``."""
        if typed.kind != "string" or other.kind != "time" or typed.field is not None:
            return typed
        try:
            when = datetime.fromisoformat(typed.expr.op().value)
        except ValueError:
            raise self.fail("not an ISO date or time", "type", node) from None
        return Typed(ibis.timestamp(when), "time")

    def constants(self, node: ast.AST, left: Typed) -> list[Any]:
        """The values of the list after ``in``: constants of the left side's kind."""
        if not isinstance(node, ast.List | ast.Tuple):
            raise self.fail('`in` needs a list of values, e.g. ["A", "B"]', "syntax", node)
        values = []
        for item in node.elts:
            sign = 1
            if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub | ast.UAdd):
                sign = -1 if isinstance(item.op, ast.USub) else 1
                item = item.operand
            value: Any = item.value if isinstance(item, ast.Constant) else None
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if is_number and left.kind == "number":
                values.append(sign * value)
            elif isinstance(value, str) and sign == 1 and left.kind == "string":
                values.append(value)
            else:
                what = "a field or expression" if value is None else repr(value)
                msg = f"cannot look for {what} in {left.what()}; list constants of its type"
                raise self.fail(msg, "type", item, field=left.field)
        return values


def compile_rule(table: ir.Table, text: str) -> ir.BooleanValue:
    """The rule ``text`` as a boolean Ibis expression over ``table`` (never null).

    Raises :class:`RuleError` naming the problem, its column and, for unknown fields, the
    closest known field.
    """
    if not isinstance(text, str):
        raise RuleError("a rule must be text", rule=repr(text), kind="syntax")
    if len(text) > MAX_RULE_LENGTH:
        msg = f"rule longer than {MAX_RULE_LENGTH} characters"
        raise RuleError(msg, rule=text, kind="forbidden")
    try:
        return _Compiler(table, text).compile()
    except (RecursionError, MemoryError):
        raise RuleError("rule is nested too deeply", rule=text, kind="forbidden") from None


def validate_rule(schema: ibis.Schema | dict[str, Any], text: str) -> None:
    """Raise :class:`RuleError` unless ``text`` compiles against a table of this ``schema``."""
    compile_rule(ibis.table(ibis.schema(schema), name="features"), text)
