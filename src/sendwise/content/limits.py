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
from collections.abc import Iterable, Mapping
from itertools import chain
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


def reset_budget(tokens: Iterable[Any] = ()) -> None:
    """Give the current thread fresh budgets; called before each message. ``tokens``: the
    message's data (the values of its context), whose sizes :func:`size` may keep for the
    message (see :func:`_memo`)."""
    loop_budget()[0] = MAX_LOOP_ITEMS
    _budget.depth = 0
    _budget.sizes = {id(v): (v, -1) for v in tokens if type(v) in _PLAIN}


def loop_budget() -> list[int]:
    """The loop iterations left to this thread's message, in a cell a loop holds while it runs
    (one decrement per item rather than a thread-local read and write)."""
    try:
        return _budget.loops
    except AttributeError:
        _budget.loops = [MAX_LOOP_ITEMS]
        return _budget.loops


def _memo() -> dict[int, tuple[Any, int]]:
    """The message's token containers by id, each with its value (so that the id cannot be
    reused by another object while it is kept) and its size once measured (-1 before). Only
    tokens are kept: they live as long as the message anyway, where keeping every value a
    template measured would keep its temporaries alive (a loop building a large list each
    time would hold them all)."""
    try:
        return _budget.sizes
    except AttributeError:
        _budget.sizes = {}
        return _budget.sizes


def spend_loop_item() -> None:
    left = loop_budget()
    left[0] -= 1
    if left[0] < 0:
        raise too_many_loops()


def too_many_loops() -> UnsafeTemplateError:
    return UnsafeTemplateError(f"loops ran more than {MAX_LOOP_ITEMS:,} times in one message")


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


_CONTAINERS = (list, tuple, set, frozenset, Mapping, Namespace)
_PLAIN = frozenset({list, tuple, dict})
"""Containers a template cannot change (the sandbox is immutable): a token's size is kept for
the message (:func:`_memo`) unless it holds a Namespace."""
_SMALL_TYPES = frozenset({bool, float, type(None)})
_STRS = (str, bytes)


def size(value: Any, limit: int = MAX_VALUE, *, indent: int = 0) -> int:
    """Characters ``value`` takes as text (containers through their items), at least ``limit
    + 1`` when it is larger; raises when containers nest deeper than :data:`MAX_DEPTH`.
    ``indent``: characters added per item and level of nesting (JSON with an indent)."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is int:
        return value.bit_length() // 3 + 1
    if kind in _SMALL_TYPES:
        return 8
    if isinstance(value, _STRS):
        return len(value)
    if isinstance(value, TemplateModule):
        return sum(map(len, value._body_stream))
    if isinstance(value, Context) or not isinstance(value, _CONTAINERS):
        return 8  # a template's Context is a Mapping, but not a value it built
    if indent == 0 and kind in _PLAIN:
        memo = _memo()
        known = memo.get(id(value))
        if known is not None and known[0] is value:
            if known[1] >= 0:
                return known[1]
            mutable: list[bool] = [False]
            total = _container(value, 0, limit, 0, mutable)
            if not mutable[0] and total <= limit:  # counted in full
                memo[id(value)] = (value, total)
            return total
    return _container(value, 0, limit, indent, [True])


def _container(item: Any, depth: int, limit: int, indent: int, mutable: list[bool]) -> int:
    """Size of one container (at ``depth``) and what it holds; stops counting past ``limit``."""
    if depth >= MAX_DEPTH:
        raise UnsafeTemplateError(f"values nest more than {MAX_DEPTH} deep")
    if isinstance(item, Namespace):
        mutable[0] = True  # ``{% set ns.x = ... %}`` changes it after it was measured
        item = item._Namespace__attrs
    total = 2 + (2 + depth * indent) * len(item)
    children = (
        chain.from_iterable(item.items())  # keys and values
        if type(item) is dict or isinstance(item, Mapping)
        else item
    )
    for child in children:
        kind = type(child)
        if kind is str:
            total += len(child) + 4
        elif kind is int:
            total += child.bit_length() // 3 + 3
        elif kind in _SMALL_TYPES:
            total += 8
        elif isinstance(child, _STRS):
            total += len(child) + 4
        elif isinstance(child, int) and not isinstance(child, bool):
            total += child.bit_length() // 3 + 3
        elif isinstance(child, TemplateModule):
            total += sum(map(len, child._body_stream))
        elif isinstance(child, _CONTAINERS) and not isinstance(child, Context):
            total += _container(child, depth + 1, limit - total, indent, mutable)
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
