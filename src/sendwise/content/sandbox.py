"""The two Jinja environments templates run in: sandboxed, immutable, with budgets.

Jinja's ImmutableSandboxedEnvironment already refuses attributes that start with ``_``, internal
attributes of functions, frames and generators, and calls that mutate lists or dicts. On top of it:

- every ``{% for %}`` loop draws from one budget of iterations per message (``MAX_LOOP_ITEMS``),
  so nested loops over ``range(100000)`` stop instead of running for hours;
- ``*`` and ``**`` refuse results larger than ``MAX_SEQUENCE`` items or digits;
- the globals are only ``range`` (bounded), ``dict`` and ``namespace``: no ``cycler``,
  ``joiner`` or ``lipsum`` whose internals earlier escapes went through;
- ``None`` prints as an empty string, and unknown names raise at once (StrictUndefined), while a
  known token whose value is missing is ``None`` so that ``{{ x or "fallback" }}`` works.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range

from sendwise.content.errors import UnsafeTemplateError

MAX_LOOP_ITEMS = 10_000
"""Loop iterations one message may run in all its loops together."""
MAX_SEQUENCE = 10_000
"""Largest string or list ``*`` may build, and the most digits a ``**`` power may have."""
GUARD = "_sw_bounded"

_budget = threading.local()


def reset_budget() -> None:
    """Give the current thread a fresh loop budget; called before each message."""
    _budget.left = MAX_LOOP_ITEMS


def _bounded(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        left = getattr(_budget, "left", MAX_LOOP_ITEMS) - 1
        if left < 0:
            raise UnsafeTemplateError(f"loops ran more than {MAX_LOOP_ITEMS} times in one message")
        _budget.left = left
        yield item


def _range(*args: int) -> range:
    try:
        return safe_range(*args)
    except OverflowError as exc:
        raise UnsafeTemplateError(str(exc)) from None


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if _power_digits(left, right) > MAX_SEQUENCE:
                raise UnsafeTemplateError(f"power too large: ** {right}")
            return left**right
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if sized and len(seq) * times > MAX_SEQUENCE:
                raise UnsafeTemplateError(f"* would build more than {MAX_SEQUENCE} items")
        return left * right

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Tokens are plain dicts of data: read the key first, skipping the failed getattr and
        # its exception that Jinja would try before it (a third of the render time).
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):  # every loop draws from the message's budget
            loop.iter = nodes.Filter(loop.iter, GUARD, [], [], None, None, lineno=loop.lineno)
        return tree


def _power_digits(left: Any, right: Any) -> float:
    """Roughly how many digits ``left ** right`` has (0 when it cannot be large)."""
    if not isinstance(left, int | float) or not isinstance(right, int | float):
        return 0
    if abs(left) <= 1 or right <= 0:
        return 0
    return right * math.log10(abs(left))


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def make_environment(*, html: bool, loader: Any = None) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment; ``html`` turns autoescaping on (the HTML part)."""
    env = _Sandbox(
        autoescape=html,
        undefined=StrictUndefined,
        finalize=_finalize,
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=0,
    )
    env.globals.clear()
    env.globals.update(range=_range, dict=dict)
    from jinja2.utils import Namespace

    env.globals["namespace"] = Namespace
    env.filters[GUARD] = _bounded
    env.filters["money"] = money
    return env


def money(value: Any, currency: str = "") -> str:
    """A price as text: ``19.9|money("EUR")`` -> ``EUR 19.90``; empty for a missing price."""
    if value is None or isinstance(value, bool):
        return ""
    try:
        amount = f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return ""
    return f"{currency} {amount}" if currency else amount


__all__ = ["MAX_LOOP_ITEMS", "SecurityError", "make_environment", "money", "reset_budget"]
