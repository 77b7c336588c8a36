"""Rule segments: named conditions over the features table, evaluated in the warehouse.

A :class:`RuleSegment` is a name and a rule in the language of :mod:`sendwise.segments.language`
(``orders_30d > 3``). :func:`apply_segments` gives every customer one boolean column per segment
plus the names matched; :func:`segment_sizes` counts members. Both are Ibis expressions, so they
run on whichever backend holds the features table, and a customer belongs to any number of
segments (segments are overlapping audiences, not a partition; see :mod:`.rfm` for one).

Built-in segments (``BUILTIN_SEGMENTS``):

- **Frequent Buyers**: ``orders_30d > 3``
- **Browsed but Not Purchased**: ``product_views_30d > 5 and orders_30d == 0``
- **Inactive**: ``days_since_last_activity > 60 or days_since_last_activity is null``; a
  customer with no recorded activity at all is inactive too: nothing of theirs happened in the
  last 60 days, and a win-back campaign is the message that fits them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from sendwise.segments.errors import SegmentError
from sendwise.segments.language import compile_rule, validate_rule

__all__ = [
    "BUILTIN_SEGMENTS",
    "SEPARATOR",
    "RuleSegment",
    "apply_segments",
    "compile_rule",
    "segment_sizes",
    "validate_rule",
]

logger = logging.getLogger(__name__)

SEPARATOR = "; "
"""Between the names in the ``segments`` column of :func:`apply_segments`."""


@dataclass(frozen=True)
class RuleSegment:
    """A named audience: the customers for whom ``rule`` is true."""

    name: str
    rule: str
    description: str = ""

    @property
    def column(self) -> str:
        """The segment's column in :func:`apply_segments`: ``seg_`` and the name's slug."""
        return "seg_" + re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


BUILTIN_SEGMENTS: tuple[RuleSegment, ...] = (
    RuleSegment(
        "Frequent Buyers",
        "orders_30d > 3",
        "More than three completed orders in the last 30 days.",
    ),
    RuleSegment(
        "Browsed but Not Purchased",
        "product_views_30d > 5 and orders_30d == 0",
        "More than five product views in the last 30 days and no order in that time.",
    ),
    RuleSegment(
        "Inactive",
        "days_since_last_activity > 60 or days_since_last_activity is null",
        "No activity (order, session, email open or click) for more than 60 days, or never.",
    ),
)


def _compiled(table: ir.Table, segments: Sequence[RuleSegment]) -> dict[str, ir.BooleanValue]:
    """Each segment's rule compiled, keyed by column; names and columns must be unique."""
    if not segments:
        raise SegmentError("no segments given")
    out: dict[str, ir.BooleanValue] = {}
    names: set[str] = set()
    for seg in segments:
        if seg.column == "seg_":
            raise SegmentError(f"segment name {seg.name!r} has no letters or digits", name=seg.name)
        if seg.name in names or seg.column in out:
            msg = f"two segments are named {seg.name!r} (or differ only in punctuation or case)"
            raise SegmentError(msg, name=seg.name)
        names.add(seg.name)
        out[seg.column] = compile_rule(table, seg.rule)
    return out


def apply_segments(table: ir.Table, segments: Sequence[RuleSegment]) -> ir.Table:
    """``customer_id``, one boolean column per segment and ``segments``, the names matched.

    ``segments`` joins the names matched with ``"; "`` in the order given, ``""`` when none.
    Raises :class:`RuleError` for a rule that does not compile, :class:`SegmentError` for
    duplicate names.
    """
    if "customer_id" not in table.schema():
        raise SegmentError("the features table has no customer_id column")
    conditions = _compiled(table, segments)
    joined: ir.StringValue = ibis.literal("", type="string")
    for seg in segments:
        name = ibis.literal(SEPARATOR + seg.name, type="string")
        joined = joined + ibis.ifelse(conditions[seg.column], name, ibis.literal("", "string"))
    width = len(SEPARATOR)
    names = ibis.ifelse(joined == "", joined, joined.substr(width))
    logger.debug("applying %d segments", len(segments))
    return table.select(table.customer_id, **conditions, segments=names)


def segment_sizes(table: ir.Table, segments: Sequence[RuleSegment]) -> dict[str, int]:
    """How many customers each segment holds, by segment name, in one warehouse query."""
    conditions = _compiled(table, segments)
    counts = table.aggregate(**{c: e.cast("int64").sum() for c, e in conditions.items()})
    row = counts.to_pyarrow().to_pylist()[0]
    return {seg.name: int(row[seg.column] or 0) for seg in segments}
