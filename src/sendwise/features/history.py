"""Order-history features that depend on the prediction window: regularity, trend, season.

``history_features(source, as_of, window_days)`` gives one row per customer with a completed
order before ``as_of`` (the others have no history: their values are null or 0 after the join).
Like every feature, only orders strictly before ``as_of`` are read. ``window_days`` is the
model's horizon h, so that "the previous window" and "the same window a year earlier" have the
length of the window being predicted.

- Regularity, between purchase days (orders on one calendar day are one visit):
  ``gap_std_days`` (spread of the days between consecutive purchase days, null below three),
  ``recency_over_gap`` (days since the last order over the mean gap: above 1 the customer is
  "due"; null below two purchase days).
- Trend: ``orders_window`` and ``orders_prev_window`` (orders in [as_of - h, as_of) and
  [as_of - 2h, as_of - h)), ``revenue_window``, ``revenue_prev_window``, ``orders_trend``
  ((orders_window + 1) / (orders_prev_window + 1)), ``orders_decay_30`` and ``orders_decay_90``
  (orders weighted by exp(-age / 30 or 90 days)).
- Season: ``orders_year_ago`` and ``revenue_year_ago``, the orders in [as_of - 365, as_of - 365
  + h), the window being predicted one year earlier; null when the shop's history does not reach
  back a year (its first order is after as_of - 365 days), so "no data" is not read as "no order".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import ibis
from ibis.expr.types import Table

from sendwise.features.common import as_timestamp, days_between, lit_ts
from sendwise.features.orders import order_values

YEAR_DAYS = 365

HISTORY_DOCS: dict[str, str] = {
    "gap_std_days": "Standard deviation of the days between purchase days (three or more).",
    "recency_over_gap": "Days since the last order over the mean days between purchase days.",
    "orders_window": "Orders in the last h days (h: the model's horizon).",
    "orders_prev_window": "Orders in the h days before those.",
    "revenue_window": "Revenue in the last h days.",
    "revenue_prev_window": "Revenue in the h days before those.",
    "orders_trend": "(orders_window + 1) / (orders_prev_window + 1).",
    "orders_decay_30": "Orders weighted by exp(-age in days / 30).",
    "orders_decay_90": "Orders weighted by exp(-age in days / 90).",
    "orders_year_ago": "Orders in the h days that started a year before as_of (null: no year).",
    "revenue_year_ago": "Revenue in those days (null: the history does not reach a year back).",
}
HISTORY_FEATURES = tuple(HISTORY_DOCS)


def history_features(source: Any, as_of: datetime | date | str, window_days: int) -> Table:
    """The window features of every customer with an order before ``as_of`` (Ibis, not run)."""
    from sendwise.features.build import table_reader

    as_of = as_timestamp(as_of)
    h = timedelta(days=window_days)
    values = order_values(table_reader(source), as_of)
    done = values.filter((values.status == "completed") & values.customer_id.notnull())
    shop_first = values.ordered_at.min()
    ts = done.ordered_at
    age = days_between(as_of, ts)
    year = as_of - timedelta(days=YEAR_DAYS)
    in_window = ts >= lit_ts(as_of - h)
    in_prev = (ts >= lit_ts(as_of - 2 * h)) & (ts < lit_ts(as_of - h))
    in_year = (ts >= lit_ts(year)) & (ts < lit_ts(year + h))
    per = done.group_by("customer_id").aggregate(
        _last=ts.max(),
        orders_window=done.count(where=in_window),
        orders_prev_window=done.count(where=in_prev),
        revenue_window=done.value.sum(where=in_window).fill_null(0.0),
        revenue_prev_window=done.value.sum(where=in_prev).fill_null(0.0),
        orders_decay_30=(-age / 30.0).exp().sum(),
        orders_decay_90=(-age / 90.0).exp().sum(),
        _year_orders=done.count(where=in_year),
        _year_revenue=done.value.sum(where=in_year).fill_null(0.0),
    )
    # Regularity is measured between purchase days: orders minutes apart are one visit.
    days = done.select("customer_id", day=ts.date()).distinct()
    window = ibis.window(group_by=days.customer_id, order_by=days.day)
    gaps = days.mutate(_gap=days.day.delta(days.day.lag().over(window), unit="day"))
    spread = gaps.group_by("customer_id").aggregate(
        _days=gaps.count(),
        _span=gaps._gap.sum(),
        gap_std_days=gaps._gap.cast("float64").std(how="sample"),
    )
    j = per.left_join(spread, "customer_id")
    mean_gap = j._span.cast("float64") / (j._days - 1)
    has_year = shop_first.as_scalar() <= lit_ts(year)
    return j.select(
        customer_id=per.customer_id,
        gap_std_days=ibis.ifelse(j._days > 2, j.gap_std_days, None),
        recency_over_gap=ibis.ifelse(j._days > 1, days_between(as_of, j._last) / mean_gap, None),
        orders_window=j.orders_window,
        orders_prev_window=j.orders_prev_window,
        revenue_window=j.revenue_window,
        revenue_prev_window=j.revenue_prev_window,
        orders_trend=(j.orders_window + 1) / (j.orders_prev_window + 1),
        orders_decay_30=j.orders_decay_30,
        orders_decay_90=j.orders_decay_90,
        orders_year_ago=ibis.ifelse(has_year, j._year_orders, None),
        revenue_year_ago=ibis.ifelse(has_year, j._year_revenue, None),
    )


ZERO_WITHOUT_ORDERS = (
    "orders_window",
    "orders_prev_window",
    "revenue_window",
    "revenue_prev_window",
    "orders_trend",
    "orders_decay_30",
    "orders_decay_90",
)
"""Columns that mean 0 (or, for the trend, 1) for a customer without any order."""


def btyd_summary(source: Any, as_of: datetime) -> Table:
    """Only the BTYD columns of ``customer_features`` (frequency, recency, T and monetary value
    of the purchase days before ``as_of``): what BG/NBD needs, at a fraction of the cost."""
    from sendwise.features.build import table_reader
    from sendwise.features.orders import _btyd

    values = order_values(table_reader(source), as_of)
    done = values.filter((values.status == "completed") & values.customer_id.notnull())
    return _btyd(done, as_of)
