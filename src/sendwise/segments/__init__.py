"""Segments: who is in which audience.

Three ways to group the customers of a features table (one row per customer):

- :mod:`.rules`: named rules such as ``orders_30d > 3`` in a small, safe rule language
  (:mod:`.language`), compiled to Ibis and run in the warehouse; a customer may be in many.
- :mod:`.rfm`: recency / frequency / monetary quintile scores and the classic named RFM
  segments, one per customer.
- :mod:`.clusters`: k-means clusters of behaviour, each described in a marketer's words
  (:mod:`.describe`).

See docs/segments.md. The clustering names are imported on first use: scikit-learn takes
seconds to import, and rules and RFM do not need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sendwise.segments.errors import RuleError, SegmentError
from sendwise.segments.rfm import NO_PURCHASE, RFM_SEGMENTS, rfm_scores, rfm_segment
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
    "DEFAULT_FEATURES",
    "NO_PURCHASE",
    "RFM_SEGMENTS",
    "CustomerClusters",
    "RuleError",
    "RuleSegment",
    "SegmentError",
    "apply_segments",
    "cluster_customers",
    "compile_rule",
    "rfm_scores",
    "rfm_segment",
    "segment_sizes",
    "validate_rule",
]

if TYPE_CHECKING:
    from sendwise.segments.clusters import DEFAULT_FEATURES, CustomerClusters, cluster_customers

_LAZY = {"DEFAULT_FEATURES", "CustomerClusters", "cluster_customers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("sendwise.segments.clusters"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
