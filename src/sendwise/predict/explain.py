"""Explanations: global importance and each customer's top reasons, in words.

Contributions are in log-odds (tree SHAP from LightGBM, exact linear terms for the logistic
model). A customer's reasons are the three features that move their score the most, either way,
each said as a short phrase ("no order for 94 days") with the direction it pushes.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from sendwise.features.build import FEATURE_DOCS

WINDOW_NOUNS = {
    "orders": "order(s)",
    "revenue": "spent",
    "items": "item(s) bought",
    "product_views": "product view(s)",
    "add_to_cart": "add(s) to cart",
    "sessions": "visit(s)",
    "carts_abandoned": "abandoned cart(s)",
    "viewed_not_bought": "product(s) viewed, not bought",
}

PHRASES = {
    "recency_days": "no order for {v:.0f} days",
    "frequency": "{v:.0f} order(s) in all",
    "monetary": "{v:,.2f} spent in all",
    "avg_order_value": "average order {v:,.2f}",
    "tenure_days": "customer for {v:.0f} days",
    "ipt_mean_days": "orders every {v:.0f} days on average",
    "ipt_last_days": "{v:.0f} days between the last two orders",
    "refund_orders": "{v:.0f} refund(s)",
    "refund_value": "{v:,.2f} refunded",
    "distinct_products": "{v:.0f} different products bought",
    "distinct_categories": "{v:.0f} categories bought",
    "favourite_category_share": "{p:.0f}% of items in one category",
    "email_sends": "{v:.0f} emails sent",
    "email_delivered": "{v:.0f} emails delivered",
    "email_opens": "opened {v:.0f} email(s)",
    "email_clicks": "clicked {v:.0f} email(s)",
    "email_machine_opens": "{v:.0f} machine opens",
    "days_since_last_open": "no email opened for {v:.0f} days",
    "days_since_last_click": "no email clicked for {v:.0f} days",
    "open_rate": "opens {p:.0f}% of emails",
    "click_rate": "clicks {p:.0f}% of emails",
    "unsubscribed": "unsubscribed from email",
    "preferred_weekday": "most active on weekday {v:.0f}",
    "preferred_hour": "most active at {v:.0f}h",
    "days_since_last_activity": "no activity for {v:.0f} days",
    "btyd_frequency": "bought again on {v:.0f} day(s)",
    "btyd_recency": "last bought {v:.0f} days after the first order",
    "btyd_T": "first order {v:.0f} days ago",
    "btyd_monetary_value": "{v:,.2f} per repeat purchase",
}

MISSING = {
    "recency_days": "never ordered",
    "days_since_last_open": "never opened an email",
    "days_since_last_click": "never clicked an email",
    "days_since_last_activity": "no activity yet",
    "open_rate": "no email delivered yet",
    "click_rate": "no email delivered yet",
    "ipt_mean_days": "fewer than two orders",
    "ipt_last_days": "fewer than two orders",
    "avg_order_value": "never ordered",
}


def phrase(feature: str, value: float) -> str:
    """One feature's value said in words."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING.get(feature, f"{feature.replace('_', ' ')} unknown")
    if feature in PHRASES:
        if feature == "unsubscribed":
            return PHRASES[feature] if value else "subscribed to email"
        return PHRASES[feature].format(v=value, p=100 * value)
    stem, _, window = feature.rpartition("_")
    if window.endswith("d") and window[:-1].isdigit() and stem in WINDOW_NOUNS:
        days = window[:-1]
        if stem == "revenue":
            return f"{value:,.2f} spent in the last {days} days"
        return f"{value:.0f} {WINDOW_NOUNS[stem]} in the last {days} days"
    doc = FEATURE_DOCS.get(feature, feature.replace("_", " "))
    return f"{doc.rstrip('.')}: {value:g}"


def phrases(feature: str, values: np.ndarray) -> np.ndarray:
    """``phrase`` for many values of one feature: the distinct values are phrased once each
    (counts and rounded days repeat a lot), then looked up."""
    rounded = np.round(values.astype(np.float64), 2)
    uniq, inverse = np.unique(rounded, return_inverse=True)  # NaNs sort last and stay apart
    said = np.array([phrase(feature, float(v)) for v in uniq], dtype=object)
    return said[inverse.reshape(-1)]


def top_reasons(
    contributions: np.ndarray, frame: pd.DataFrame, features: list[str], k: int = 3,
    values: np.ndarray | None = None,
) -> list[list[str]]:  # fmt: skip
    """Each row's ``k`` strongest reasons, as 'phrase (raises)' or 'phrase (lowers)'.
    ``values``: ``frame[features]`` as a float matrix, when the caller already has it."""
    flat, offsets = reason_lists(contributions, frame, features, k, values)
    return [flat[a:b].tolist() for a, b in pairwise(offsets)]


def reason_lists(
    contributions: np.ndarray, frame: pd.DataFrame, features: list[str], k: int = 3,
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``top_reasons`` as one flat array of phrases and the offsets of each row's (row i:
    ``flat[offsets[i]:offsets[i + 1]]``), the layout of an Arrow list column: a million rows
    need no Python list per row."""
    order = strongest(contributions[:, : len(features)], k)
    if values is None:
        values = frame[features].astype("float64").to_numpy(na_value=np.nan)
    rows = np.arange(len(frame))[:, None]
    picked_values = values[rows, order]
    picked_signs = np.sign(contributions[rows, order])
    # Phrase feature by feature over all rows at once, then assemble the rows' lists.
    said = np.empty(order.shape, dtype=object)
    for j in np.unique(order):
        at = order == j
        said[at] = phrases(features[j], picked_values[at])
    direction = np.where(picked_signs > 0, " (raises)", " (lowers)").astype(object)
    keep = picked_signs != 0  # a feature that does not move the score is no reason
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return (said + direction)[keep], offsets


def strongest(per_feature: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` largest absolute values of each row, largest first, ties to the
    lower column: what a stable argsort of -|x| gives, by ``k`` passes of argmax (a full sort
    of a million rows took most of the time of the reasons)."""
    k = min(k, per_feature.shape[1])
    size = np.abs(per_feature)
    rows = np.arange(len(size))
    order = np.empty((len(size), k), dtype=np.int64)
    for i in range(k):
        order[:, i] = np.argmax(size, axis=1)  # the first of equal maxima, as a stable sort
        size[rows, order[:, i]] = -1.0
    return order


def global_importance(contributions: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Mean absolute contribution of each feature, largest first."""
    mean_abs = np.abs(contributions[:, : len(features)]).mean(axis=0)
    total = mean_abs.sum() or 1.0
    imp = pd.DataFrame(
        {"feature": features, "mean_abs_contribution": mean_abs, "share": mean_abs / total}
    )
    return imp.sort_values("mean_abs_contribution", ascending=False, ignore_index=True)
