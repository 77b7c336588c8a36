"""Segments: who is in which audience.

Three ways to group customers of a features table (one row per customer):

- :mod:`.rules`: named rules such as ``orders_30d > 3``, compiled to Ibis and run in the
  warehouse; a customer may be in many rule segments.
- :mod:`.rfm`: recency / frequency / monetary quintile scores and the classic named RFM
  segments, a partition of the customers.
- :mod:`.clusters`: k-means clusters of behaviour, each described in a marketer's words.
"""

from sendwise.segments.errors import RuleError, SegmentError
from sendwise.segments.rules import (
    BUILTIN_SEGMENTS,
    RuleSegment,
    apply_segments,
    compile_rule,
    segment_sizes,
    validate_rule,
)

__all__ = [
    "BUILTIN_SEGMENTS",
    "RuleError",
    "RuleSegment",
    "SegmentError",
    "apply_segments",
    "compile_rule",
    "segment_sizes",
    "validate_rule",
]
