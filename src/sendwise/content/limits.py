"""The budgets of one message's render, and how big a value is.

A template may build any value only through an operation the sandbox controls (a filter, a
method call, a binary operator, ``~``, a loop, a macro, a block of output); each operation
checks before it builds that its result stays under :data:`MAX_VALUE` characters or items, and
the whole message under :data:`MAX_OUTPUT`. :func:`size` is how many characters a value takes
when printed (containers counted through their items, so a list of a thousand references to one
large string is as large as its text would be); it stops counting past the limit, so checking a
huge value costs no more than checking a small one.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Mapping
from typing import Any

from jinja2.environment import TemplateModule
from jinja2.runtime import Context
from jinja2.utils import Namespace

from sendwise.content.errors import UnsafeTemplateError

MAX_LOOP_ITEMS = 10_000
"""Loop iterations one message may run in all its loops together."""
MAX_VALUE = 1_000_000
"""Most characters (or items) one value a template builds may hold."""
MAX_OUTPUT = 2_000_000
"""Most characters one part (subject, HTML, text) of a message may have while it renders."""
MAX_WIDTH = 10_000
"""Largest width, padding or precision a filter or a format may be asked for."""
MAX_DEPTH = 50
"""Deepest nesting of calls (macros, ``caller()``, recursive loops) and of containers."""
MAX_INT_BITS = 100_000
"""Largest integer ``*`` or ``**`` may build (about 30,000 digits)."""

_budget = threading.local()


def reset_budget() -> None:
    """Give the current thread fresh budgets; called before each message."""
    _budget.left = MAX_LOOP_ITEMS
    _budget.depth = 0


def spend_loop_item() -> None:
    left = getattr(_budget, "left", MAX_LOOP_ITEMS) - 1
    if left < 0:
        raise UnsafeTemplateError(f"loops ran more than {MAX_LOOP_ITEMS:,} times in one message")
    _budget.left = left


def enter_call() -> None:
    depth = getattr(_budget, "depth", 0) + 1
    if depth > MAX_DEPTH:
        _budget.depth = 0
        msg = f"calls nest more than {MAX_DEPTH} deep (a macro or loop that calls itself?)"
        raise UnsafeTemplateError(msg)
    _budget.depth = depth


def leave_call() -> None:
    _budget.depth = max(0, getattr(_budget, "depth", 1) - 1)


def too_large(what: str, limit: int = MAX_VALUE) -> UnsafeTemplateError:
    return UnsafeTemplateError(f"{what} would build more than {limit:,} characters or items")


_SMALL = (bool, float, type(None))
_CONTAINERS = (list, tuple, set, frozenset, Mapping, Namespace)


def size(value: Any, limit: int = MAX_VALUE, *, indent: int = 0) -> int:
    """Characters ``value`` takes as text (containers through their items), at least ``limit
    + 1`` when it is larger; raises when containers nest deeper than :data:`MAX_DEPTH`.
    ``indent``: characters added per item and level of nesting (JSON with an indent)."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is int:
        return value.bit_length() // 3 + 1
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, TemplateModule):
        return sum(map(len, value._body_stream))
    if isinstance(value, (*_SMALL, Context)) or not isinstance(value, _CONTAINERS):
        return 8  # a template's Context is a Mapping, but not a value it built
    total, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 4
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 3
        elif isinstance(item, TemplateModule):
            total += sum(map(len, item._body_stream))
        elif isinstance(item, _CONTAINERS) and not isinstance(item, Context):
            if depth >= MAX_DEPTH:
                raise UnsafeTemplateError(f"values nest more than {MAX_DEPTH} deep")
            if isinstance(item, Namespace):
                item = item._Namespace__attrs
            total += 2 + (2 + depth * indent) * len(item)
            children = (x for kv in item.items() for x in kv) if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
        else:
            total += 8
        if total > limit:
            return total
    return total


def check(value: Any, what: str, limit: int = MAX_VALUE) -> Any:
    """``value`` when its :func:`size` is within ``limit``, else an UnsafeTemplateError."""
    if size(value, limit) > limit:
        raise too_large(what, limit)
    return value


def check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and not isinstance(width, bool) and abs(width) > MAX_WIDTH:
        raise UnsafeTemplateError(f"{what} {width:,} is wider than {MAX_WIDTH:,}")


# -- printf-style (%) and str.format estimates --------------------------------------------
_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def percent_size(fmt: str, args: Any) -> int:
    """An upper bound of the length of ``fmt % args``; raises on ``*`` or huge widths."""
    total, position = len(fmt), 0
    positional = args if isinstance(args, tuple) else (args,)
    for m in _PERCENT.finditer(fmt):
        key, width, precision, conversion = m.groups()
        if conversion == "%":
            continue
        if width == "*" or precision == "*":
            raise UnsafeTemplateError("a format width or precision from the arguments (*)")
        for number in (width, precision):
            if number:
                check_width(int(number), "a format width of")
        if key is not None and isinstance(args, Mapping):
            arg = args.get(key)
        else:
            arg = positional[position] if position < len(positional) else None
            position += 1
        total += max(int(width or 0), int(precision or 0), size(arg)) + 8
    return total


_FORMATTER = string.Formatter()


def format_size(fmt: str, args: tuple, kwargs: Mapping[str, Any]) -> int:
    """An upper bound of the length of ``fmt.format(*args, **kwargs)``; raises on huge widths
    or widths taken from the arguments (``{:{w}}``)."""
    total, auto = len(fmt), 0
    for _, field, spec, _ in _FORMATTER.parse(fmt):
        if field is None:
            continue
        if spec and "{" in spec:
            raise UnsafeTemplateError("a format width from the arguments ({:{w}})")
        for number in re.findall(r"\d+", spec or ""):
            check_width(int(number), "a format width of")
        head = re.split(r"[.\[]", field, maxsplit=1)[0]
        if head == "":
            arg, auto = (args[auto] if auto < len(args) else None), auto + 1
        elif head.isdigit():
            arg = args[int(head)] if int(head) < len(args) else None
        else:
            arg = kwargs.get(head)
        widths = [int(n) for n in re.findall(r"\d+", spec or "")]
        total += max([size(arg), *widths]) + 8
    return total
