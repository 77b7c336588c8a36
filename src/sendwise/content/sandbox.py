"""The two Jinja environments templates run in: sandboxed, immutable, with budgets.

Jinja's ImmutableSandboxedEnvironment already refuses attributes that start with ``_``, internal
attributes of functions, frames and generators, and calls that mutate lists or dicts. It does
not bound memory or recursion; on top of it (docs/adr/0058):

- every value a template builds is bounded before it is built (:mod:`.limits`): ``+``, ``*``,
  ``**`` and ``%`` are intercepted, ``~`` and every block of output (macros, ``set`` blocks,
  ``filter`` blocks, ``caller()``, ``super()``) join through a size check, every filter and
  ``str`` method is checked (:mod:`.safe_filters`), and a message part stops at
  :data:`~.limits.MAX_OUTPUT` characters while it is rendered;
- no unsafe constant is computed while compiling: the folding of constant output (which ran
  ``'a'|center(1000000000)`` inside ``templates check``) is off, and Jinja's optimizer folds
  only through the bounded filters and operators, which refuse before they build;
- every ``{% for %}`` loop draws from one budget of iterations per message, and calls (macros,
  ``caller()``, recursive loops) nest at most :data:`~.limits.MAX_DEPTH` deep;
- the globals are only ``range`` (bounded), ``dict`` and ``namespace``: no ``cycler``,
  ``joiner`` or ``lipsum`` whose internals earlier escapes went through;
- ``None`` prints as an empty string, and unknown names raise at once (StrictUndefined), while a
  known token whose value is missing is ``None`` so that ``{{ x or "fallback" }}`` works.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator
from jinja2.filters import FILTERS
from jinja2.nodes import Impossible
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import Namespace

from sendwise.content.errors import UnsafeTemplateError
from sendwise.content.limits import (
    MAX_INT_BITS,
    MAX_LOOP_ITEMS,
    MAX_OUTPUT,
    MAX_VALUE,
    check,
    enter_call,
    format_size,
    leave_call,
    loop_budget,
    percent_size,
    reset_budget,
    size,
    too_large,
    too_many_loops,
)
from sendwise.content.live import live_rec_image, live_rec_link
from sendwise.content.safe_filters import bounded, check_str_method

GUARD = "_sw_bounded"


def _bounded(iterable: Iterable[Any]) -> Iterator[Any]:
    left = loop_budget()  # shared by every loop of the message
    for item in iterable:
        left[0] -= 1
        if left[0] < 0:
            raise too_many_loops()
        yield item


def _range(*args: int) -> range:
    try:
        return safe_range(*args)
    except OverflowError as exc:
        raise UnsafeTemplateError(str(exc)) from None


def _joined(join: Any, limit: int, what: str) -> Any:
    def bounded_join(parts: Iterable[Any]) -> Any:
        parts = parts if isinstance(parts, list | tuple) else list(parts)
        total = 0
        for part in parts:
            total += len(part) if type(part) is str else size(part)
            if total > limit:
                raise too_large(what, limit)
        return join(parts)

    return bounded_join


_concat = _joined("".join, MAX_OUTPUT, "a block of output")
_str_join = _joined(str_join, MAX_VALUE, "~")
_markup_join = _joined(markup_join, MAX_VALUE, "~")


class _BoundedTemplate(Template):
    """A compiled template whose ``~`` joins through a size check."""

    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> Template:
        namespace.update(str_join=_str_join, markup_join=_markup_join)
        return super()._from_namespace(environment, namespace, globals)


class _NoFolding(CodeGenerator):
    """Folds only literal text into the compiled code, never a filter or an operator."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData) or (
            isinstance(node, nodes.Const) and isinstance(node.value, str)
        ):
            return super()._output_child_to_const(node, frame, finalize)
        raise Impossible()


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _NoFolding
    template_class = _BoundedTemplate
    concat = staticmethod(_concat)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if _power_bits(left, right) > MAX_INT_BITS:
                raise UnsafeTemplateError(f"power too large: ** {right}")
            return left**right
        if operator == "%":
            if isinstance(left, str) and percent_size(left, right) > MAX_VALUE:
                raise too_large("%")
            return check(left % right, "%")
        if operator == "+":
            if not _number(left) and size(left) + size(right) > MAX_VALUE:
                raise too_large("+")
            return left + right
        if _number(left) and _number(right):
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise UnsafeTemplateError("* would build an integer over 100,000 bits")
            return left * right
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(times, int)
                and not _number(seq)
                and size(seq) * max(times, 0) > MAX_VALUE
            ):
                raise too_large("*")
        return left * right

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        method = isinstance(__obj, types.BuiltinMethodType | types.MethodType)
        if method and isinstance(getattr(__obj, "__self__", None), str):
            args = check_str_method(__obj, args, kwargs)
        for arg in (*args, *kwargs.values()):
            check(arg, "a call's argument")
        enter_call()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            leave_call()
        return check(result, "a call")

    def wrap_str_format(self, value: Any) -> Any:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text, is_map = value.__self__, value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_map and len(args) == 1 and not kwargs:
                estimate = format_size(text, (), args[0])
            else:
                estimate = format_size(text, args, kwargs)
            if estimate > MAX_VALUE:
                raise too_large("format")
            return check(wrapper(*args, **kwargs), "format")

        return bounded_format

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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, str)


def _power_bits(left: Any, right: Any) -> float:
    """Roughly how many bits ``left ** right`` has (0 when it cannot be large)."""
    if not _number(left) or not _number(right):
        return 0
    if abs(left) <= 1 or right <= 0:
        return 0
    return right * math.log2(abs(left))


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if type(value) is str:
        return value
    return check(value, "a printed value")


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
        optimized=True,  # folds only through the bounded filters; output folding is off
    )
    env.globals.clear()
    env.globals.update(range=_range, dict=dict, namespace=Namespace)
    env.globals.update(live_rec_link=live_rec_link, live_rec_image=live_rec_image)
    env.filters = {name: bounded(name, f) for name, f in FILTERS.items()}
    env.filters[GUARD] = _bounded
    env.filters["money"] = money
    return env


def money(value: Any, currency: str = "") -> str:
    """A price as text: ``19.9|money("EUR")`` -> ``EUR 19.90``; empty for a missing price."""
    if value is None or isinstance(value, bool):
        return ""
    try:
        amount = f"{float(value):,.2f}"
    except (TypeError, ValueError, OverflowError):
        return ""
    return f"{currency[:100]} {amount}" if currency else amount


__all__ = ["MAX_LOOP_ITEMS", "SecurityError", "make_environment", "money", "reset_budget"]
