"""Words for clusters: each centroid compared with the population, as a marketer would say it.

A centroid in standardised space is already "compared with the population": each coordinate is
the cluster's mean in standard deviations from everyone's. A feature more than ``THRESHOLD``
standard deviations away earns a word:

- recency (``recency_days``): "recent" / "lapsed"
- frequency (``frequency``): "frequent" / "one-off"
- basket (``avg_order_value``): "high basket" / "low basket"
- browsing (``product_views_90d`` or ``sessions_90d``): "browses a lot" / "rarely browses"
- carts (``carts_abandoned_90d`` or ``_30d``): "abandons carts"
- breadth (``distinct_categories``): "buys across categories"
- email (``open_rate``): "engaged with email" / "rarely opens email"
- "mostly <Category>" when at least ``CATEGORY_SHARE`` of the cluster shares a
  ``favourite_category``

A cluster in which most customers have not ordered (``frequency`` 0) is "no orders yet" instead
of the recency, frequency and basket words, which would describe imputed values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["CATEGORY_SHARE", "THRESHOLD", "describe_clusters"]

THRESHOLD = 0.5
"""Standard deviations between a centroid and the population mean that earn a word."""

CATEGORY_SHARE = 0.4
"""Share of a cluster with the same favourite_category that earns "mostly <Category>"."""

_WORDS: tuple[tuple[tuple[str, ...], str, str, bool], ...] = (
    # features (the first present is used), word when high, word when low (or none), whether
    # the word is about orders (left out for clusters that mostly have none)
    (("recency_days",), "lapsed", "recent", True),
    (("frequency",), "frequent", "one-off", True),
    (("avg_order_value",), "high basket", "low basket", True),
    (("product_views_90d", "sessions_90d"), "browses a lot", "rarely browses", False),
    (("carts_abandoned_90d", "carts_abandoned_30d"), "abandons carts", "", False),
    (("distinct_categories",), "buys across categories", "", True),
    (("open_rate",), "engaged with email", "rarely opens email", False),
)


def _words(z: Mapping[str, float], buyers: float | None) -> list[str]:
    words = []
    no_orders = buyers is not None and buyers < 0.5
    if no_orders:
        words.append("no orders yet")
    for features, high, low, about_orders in _WORDS:
        present = [f for f in features if f in z]
        if not present or (about_orders and no_orders):
            continue
        value = z[present[0]]
        if value > THRESHOLD:
            words.append(high)
        elif value < -THRESHOLD and low:
            words.append(low)
    return words


def describe_clusters(
    df: pd.DataFrame, labels: np.ndarray, center_z: Mapping[str, np.ndarray]
) -> dict[int, str]:
    """A short description per cluster, e.g. "recent, frequent, low basket, mostly Home".

    ``center_z`` maps a feature to its centroid coordinate (standardised) for every cluster.
    Two clusters that would read the same get their number appended, so each text is unique.
    """
    k = len(next(iter(center_z.values())))
    labels = np.asarray(labels)
    out: dict[int, str] = {}
    for c in range(k):
        members = labels == c
        buyers = None
        if "frequency" in df.columns:
            freq = df["frequency"].to_numpy(dtype="float64", na_value=0.0)[members]
            buyers = float((freq >= 1).mean()) if len(freq) else None
        words = _words({f: float(v[c]) for f, v in center_z.items()}, buyers)
        if "favourite_category" in df.columns and members.any():
            counts = df["favourite_category"][members].value_counts(dropna=True)
            shares = counts / members.sum()  # of the whole cluster, nulls included
            if len(shares) and shares.iloc[0] >= CATEGORY_SHARE:
                words.append(f"mostly {shares.index[0]}")
        out[c] = ", ".join(words) or "typical customers"
    seen = Counter(out.values())
    return {c: text if seen[text] == 1 else f"{text} (cluster {c})" for c, text in out.items()}
