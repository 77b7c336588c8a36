"""Jinja's filters and ``str`` methods with their results bounded before they are built.

Every filter is wrapped: its arguments must be within :data:`~.limits.MAX_VALUE` (as text), the
filters whose result can grow beyond their input (``center``, ``indent``, ``replace``, ``join``,
``format``, ``wordwrap``, ``urlize``, ``sum``, ``batch``, ``slice``, ``tojson``) first estimate
the result from their arguments and refuse what would be too large, and every result is
checked again. Filters whose result is at most a few times their input (``escape``, ``string``,
``upper``...) need only the first and last checks. The same estimates guard the ``str``
methods a template can call (``'a'.center(10**9)``, ``'-'.join(...)``, ``replace``...).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

from jinja2.filters import make_attrgetter

from sendwise.content.errors import UnsafeTemplateError
from sendwise.content.limits import (
    MAX_VALUE,
    MAX_WIDTH,
    check,
    check_width,
    percent_size,
    size,
    too_large,
)


def _items(value: Any, what: str) -> list[Any]:
    """An iterable as a list of at most MAX_VALUE items."""
    if isinstance(value, str):
        return list(value[: MAX_VALUE + 1])
    items = list(islice(value, MAX_VALUE + 1)) if isinstance(value, Iterable) else [value]
    if len(items) > MAX_VALUE:
        raise too_large(what)
    return items


def _replace_size(s: Any, old: Any, new: Any, count: Any) -> int:
    text, old, new = str(s), str(old), str(new)
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _center(a: dict) -> int:
    check_width(a["width"], "center width")
    return max(size(a["value"]), a["width"] if isinstance(a["width"], int) else 0)


def _indent(a: dict) -> int:
    width = a["width"]
    if isinstance(width, int):
        check_width(width, "indent width")
        width = width if width > 0 else 0
    else:
        width = len(str(width))
    text = str(a["s"])
    return len(text) + (text.count("\n") + 1) * width


def _replace(a: dict) -> int:
    return _replace_size(a["s"], a["old"], a["new"], a.get("count"))


def _format(a: dict) -> int:
    return percent_size(str(a["value"]), a["kwargs"] or a["args"])


def _wordwrap(a: dict) -> int:
    text = str(a["s"])
    wrap = a["wrapstring"] or "\n"
    width = a["width"] if isinstance(a["width"], int) and a["width"] > 0 else 1
    lines = len(text) // width + text.count(" ") + text.count("\n") + 1
    return len(text) + min(lines, len(text) + 1) * len(str(wrap))


def _urlize(a: dict) -> int:
    text = str(a["value"])
    extra = len(str(a.get("target") or "")) + len(str(a.get("rel") or "")) + 80
    return 2 * len(text) + (len(text) // 4 + 1) * extra


def _tojson(a: dict) -> int:
    indent = a.get("indent")
    width = len(indent) if isinstance(indent, str) else indent or 0
    if width > 16:
        raise UnsafeTemplateError(f"tojson indent {width} is wider than 16")
    return size(a["value"], MAX_VALUE, indent=width + 1)


def _batch(a: dict) -> int:
    check_width(a["linecount"], "batch size")
    return 0


def _slice(a: dict) -> int:
    check_width(a["slices"], "slice count")
    return 0


ESTIMATES: dict[str, Callable[[dict], int]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "format": _format,
    "wordwrap": _wordwrap,
    "urlize": _urlize,
    "tojson": _tojson,
    "batch": _batch,
    "slice": _slice,
}


def _join(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = _items(value, "join")
        shown = items
        if attribute is not None:
            shown = list(map(make_attrgetter(eval_ctx.environment, attribute), items))
        total = sum(size(x) for x in shown) + len(str(d)) * max(0, len(items) - 1)
        if total > MAX_VALUE:
            raise too_large("join")
        return check(original(eval_ctx, items, d, attribute), "join")

    return join


def _sum(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = _items(iterable, "sum")
        shown = items
        if attribute is not None:
            shown = list(map(make_attrgetter(environment, attribute), items))
        if sum(size(x) for x in shown) + size(start) > MAX_VALUE:
            raise too_large("sum")
        return check(original(environment, items, attribute, start), "sum")

    return sum_


def _binder(function: Callable[..., Any]) -> Callable[[tuple, dict], dict[str, Any]]:
    """``(args, kwargs) -> {parameter: value}`` with defaults applied, as
    ``inspect.Signature.bind`` gives; positional calls of plain parameters (the usual filter
    call) without its cost."""
    signature = inspect.signature(function)
    params = signature.parameters.values()
    names = tuple(p.name for p in params)
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)

    def arguments(args: tuple, kwargs: dict) -> dict[str, Any]:
        if plain and not kwargs and len(names) - len(defaults) <= len(args) <= len(names):
            return {**defaults, **dict(zip(names, args, strict=False))}
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    return arguments


def bounded(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The filter ``original`` with its arguments and result checked (see the docstring)."""
    if name == "join":
        return _join(original)
    if name == "sum":
        return _sum(original)
    estimate = ESTIMATES.get(name)
    arguments = _binder(original) if estimate else None
    label = f"the filter {name}"

    @functools.wraps(original)
    def safe(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            check(arg, label)
        for arg in kwargs.values():
            check(arg, label)
        if (
            arguments is not None
            and estimate is not None
            and estimate(arguments(args, kwargs)) > MAX_VALUE
        ):
            raise too_large(label)
        return check(original(*args, **kwargs), label)

    return safe


# -- str methods -----------------------------------------------------------------------------
_REFUSED = {"translate", "maketrans", "expandtabs"}


def check_str_method(method: Any, args: tuple, kwargs: Mapping[str, Any]) -> tuple:
    """The arguments for a call of a ``str`` method (an iterable to join as a list), or an
    UnsafeTemplateError when the call would build more than MAX_VALUE characters."""
    name, text = method.__name__, method.__self__
    if name in _REFUSED:
        raise UnsafeTemplateError(f"str.{name} is not available in templates")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        check_width(args[0], f"{name} width")
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if _replace_size(text, args[0], args[1], count) > MAX_VALUE:
            raise too_large("replace")
    elif name == "join" and args:
        items = _items(args[0], "join")
        if sum(size(x) for x in items) + len(text) * max(0, len(items) - 1) > MAX_VALUE:
            raise too_large("join")
        return (items, *args[1:])
    return args


__all__ = ["MAX_WIDTH", "bounded", "check_str_method"]
