"""The vocabulary of the rule language: its keywords, operators, the constructs it refuses and
the kinds of values it knows. Kept apart from the compiler so the whitelist reads in one place.
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from dataclasses import dataclass
from typing import Any

KEYWORDS = {w.lower(): w for w in ("and", "or", "not", "in", "is", "None", "True", "False")}
KEYWORDS["null"] = "None"  # same length as "None": replacing keeps every column position
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt}
COMPARE |= {ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
REFUSED = {
    ast.Call: "a function call",
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "a subscript (a[b])",
    ast.Lambda: "lambda",
    ast.IfExp: "an if-else expression",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an := assignment",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "a comprehension"),
}
OPERATORS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&"}
OPERATORS |= {ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}


@dataclass(frozen=True)
class Typed:
    """A compiled operand: its Ibis expression, its kind and the field it is, if it is one."""

    expr: Any
    kind: str  # "bool", "number", "string", "time" or "null"
    field: str | None = None
    dtype: str | None = None

    def what(self) -> str:
        return f"field {self.field!r} ({self.dtype})" if self.field else f"a {self.kind} value"


def kind_of(dtype: Any) -> str:
    if dtype.is_boolean():
        return "bool"
    if dtype.is_numeric():
        return "number"
    if dtype.is_string():
        return "string"
    return "time" if dtype.is_temporal() else str(dtype)


def normalise(text: str) -> str:
    """Keywords in any case (``AND``, ``NULL``, ``True``) respelled as Python's, in place."""
    chars = list(text)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            word = KEYWORDS.get(tok.string.lower()) if tok.type == tokenize.NAME else None
            if word and word != tok.string:
                col = tok.start[1]
                chars[col : col + len(word)] = word
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse reports the problem, with its position
    return "".join(chars)
