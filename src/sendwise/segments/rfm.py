"""RFM: recency, frequency and monetary scores 1..5 and the classic named RFM segments.

Scores are quintiles over the *buyers* (customers with ``frequency >= 1``), computed in the
warehouse with one window function each, so they scale with it:

    score = ceil(5 * cume_dist())

``cume_dist`` is the share of buyers at or before this one in the ordering (its ties included), so
tied values always share a score and the result does not depend on row order. R orders by
``recency_days`` *descending* (the most recent buyers get cume_dist 1, hence R = 5), F by
``frequency`` and M by ``monetary`` ascending; a null value ranks lowest. Ties sit at the *top*
of the scores they span: when 60% of buyers ordered exactly once, cume_dist is 0.6 for all of
them, so they all get F = 3 and no buyer gets F = 1 or 2. ``ties="bottom"`` puts them at the
bottom instead (score = 6 - ceil(5 * cume_dist()) over the reversed ordering: F = 1 for all
of them), which is what the segment names assume; see docs/segments.md. Customers without an
order get null scores and the segment "No purchase yet".

Segments (``RFM_SEGMENTS``) are rules of :mod:`sendwise.segments.language` over ``r_score``,
``f_score`` and ``m_score``, tried in order; the first that holds names the customer:

    =====================  ==================================================
    Champions              r_score >= 4 and f_score >= 4 and m_score >= 4
    Can't Lose Them        r_score <= 1 and f_score >= 4 and m_score >= 4
    At Risk                r_score <= 2 and f_score >= 3 and m_score >= 3
    Loyal                  r_score >= 3 and f_score >= 3 and m_score >= 3
    New                    r_score >= 4 and f_score <= 1
    Promising              r_score >= 3 and f_score <= 1
    Potential Loyalist     r_score >= 3 and f_score >= 2
    Need Attention         r_score == 2 and f_score >= 2 and m_score >= 2
    About to Sleep         r_score == 2
    Hibernating            r_score <= 1 and f_score >= 2 and m_score >= 2
    Lost                   r_score <= 1
    =====================  ==================================================

Every combination of scores 1..5 is named by one of them ("Other", the fallback, is reached
only by custom tables that leave gaps).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import ibis
import ibis.expr.types as ir

from sendwise.segments.errors import SegmentError
from sendwise.segments.language import compile_rule

__all__ = ["NO_PURCHASE", "OTHER", "RFM_SEGMENTS", "rfm_scores", "rfm_segment"]

logger = logging.getLogger(__name__)

RFM_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("Champions", "r_score >= 4 and f_score >= 4 and m_score >= 4"),
    ("Can't Lose Them", "r_score <= 1 and f_score >= 4 and m_score >= 4"),
    ("At Risk", "r_score <= 2 and f_score >= 3 and m_score >= 3"),
    ("Loyal", "r_score >= 3 and f_score >= 3 and m_score >= 3"),
    ("New", "r_score >= 4 and f_score <= 1"),
    ("Promising", "r_score >= 3 and f_score <= 1"),
    ("Potential Loyalist", "r_score >= 3 and f_score >= 2"),
    ("Need Attention", "r_score == 2 and f_score >= 2 and m_score >= 2"),
    ("About to Sleep", "r_score == 2"),
    ("Hibernating", "r_score <= 1 and f_score >= 2 and m_score >= 2"),
    ("Lost", "r_score <= 1"),
)
"""(name, rule) pairs, first match wins; the table of the module docstring and docs/segments.md."""

NO_PURCHASE = "No purchase yet"
"""The segment of customers without a completed order (their scores are null)."""

OTHER = "Other"
"""The segment of a buyer no rule of the table names."""

Ties = Literal["top", "bottom"]

_NEEDED = ("customer_id", "recency_days", "frequency", "monetary")


def _quintile(
    key: ir.Value, buyer: ir.BooleanValue, *, descending: bool, ties: Ties
) -> ir.IntegerValue:
    """ceil(5 * cume_dist) over the buyers, in exact integer arithmetic.

    cume_dist is (buyers at or below) / buyers; recovering both counts as integers avoids a
    float such as 5 * 0.2 landing a hair above 1 and moving a quintile boundary.
    """
    if ties == "bottom":  # rank the other way round, then turn the scores over
        descending = not descending
    order = ibis.desc(key, nulls_first=True) if descending else ibis.asc(key, nulls_first=True)
    if ties == "bottom":  # ... keeping nulls lowest
        order = ibis.desc(key) if descending else ibis.asc(key)
    share = ibis.cume_dist().over(ibis.window(group_by=buyer, order_by=order))
    n = buyer.count().over(ibis.window(group_by=buyer))
    at_or_below = (share * n).round().cast("int64")
    score = (at_or_below * 5 + n - 1) // n
    score = 6 - score if ties == "bottom" else score
    return ibis.ifelse(buyer, score.cast("int64"), ibis.null("int64"))


def rfm_scores(
    features: ir.Table,
    segments: Sequence[tuple[str, str]] = RFM_SEGMENTS,
    *,
    ties: Ties = "top",
) -> ir.Table:
    """``customer_id, r_score, f_score, m_score, rfm_score, rfm_segment`` for every customer.

    ``rfm_score`` is the three digits ("545"), null without an order. ``segments`` replaces the
    named-segment table (rules over r_score, f_score, m_score; first match wins). ``ties``:
    whether tied buyers share the highest ("top", the default) or the lowest score of the
    quintiles their values span.
    """
    if ties not in ("top", "bottom"):
        raise SegmentError(f"ties must be 'top' or 'bottom', not {ties!r}", name="rfm")
    missing = [c for c in _NEEDED if c not in features.schema()]
    if missing:
        raise SegmentError(f"RFM needs the columns {', '.join(missing)}", name="rfm")
    t = features
    buyer = (t.frequency >= 1).fill_null(False)
    scored = t.select(
        t.customer_id,
        r_score=_quintile(t.recency_days, buyer, descending=True, ties=ties),
        f_score=_quintile(t.frequency, buyer, descending=False, ties=ties),
        m_score=_quintile(t.monetary, buyer, descending=False, ties=ties),
    )
    digits = [scored[c].cast("string") for c in ("r_score", "f_score", "m_score")]
    scored = scored.mutate(rfm_score=digits[0] + digits[1] + digits[2])
    return scored.mutate(rfm_segment=rfm_segment(scored, segments))


def rfm_segment(
    scored: ir.Table, segments: Sequence[tuple[str, str]] = RFM_SEGMENTS
) -> ir.StringValue:
    """The segment name of each row of a table with ``r_score, f_score, m_score``.

    The first rule of ``segments`` that holds names the row; "Other" when none does and
    "No purchase yet" when ``r_score`` is null. Works on scores computed elsewhere too.
    """
    branches = [(compile_rule(scored, rule), name) for name, rule in segments]
    named = ibis.cases(*branches, else_=OTHER) if branches else ibis.literal(OTHER)
    logger.debug("naming RFM segments with %d rules", len(branches))
    return ibis.ifelse(scored.r_score.isnull(), NO_PURCHASE, named).cast("string")
