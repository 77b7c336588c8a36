"""Training sets: features as of T joined with what happened in [T, T + horizon).

Labels (prefixed ``label_``):
- ``label_purchased``: at least one completed order in the window.
- ``label_orders`` / ``label_revenue``: completed orders and their revenue in the window.
- ``label_churned``: the customer was *active* (a completed order within ``active_days`` before
  T) and placed no order in the window; null for customers who were not active, since they
  cannot churn. Both ``active_days`` (default 365) and the horizon are parameters.
- ``label_categories``: the sorted distinct categories bought in the window.

Several snapshot dates stack into one table (``stacked_training_set``), one row per customer and
snapshot, so that models learn from more than one season. A window that ends after the last
order in the warehouse would make every label look negative: it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import ibis
from ibis.expr.types import Table

from sendwise.catalog.categories import product_categories
from sendwise.errors import InputError
from sendwise.features.build import WINDOWS, customer_features, table_reader
from sendwise.features.common import as_timestamp, left_join_all, lit_ts


def labels(source: Any, as_of: datetime, horizon_days: int) -> Table:
    table = table_reader(source)
    end = as_of + timedelta(days=horizon_days)
    orders = table("order")
    window = orders.filter(
        orders.ordered_at >= lit_ts(as_of),
        orders.ordered_at < lit_ts(end),
        orders.status == "completed",
        orders.customer_id.notnull(),
    )
    lines = table("order_line")
    products = product_categories(table).select("product_id", "category")
    detail = window.select("order_id", "customer_id").inner_join(lines, "order_id")
    detail = detail.left_join(products, "product_id")
    revenue = detail.group_by("customer_id").aggregate(
        label_revenue=(detail.quantity * detail.unit_price).sum(),
        label_categories=detail.category.collect(distinct=True).sort(),
    )
    counts = window.group_by("customer_id").aggregate(label_orders=window.count())
    return left_join_all(counts, [revenue])


def training_set(
    source: Any,
    as_of: datetime | date | str,
    horizon_days: int = 30,
    *,
    active_days: int = 365,
    windows: tuple[int, ...] = WINDOWS,
    check_coverage: bool = True,
) -> Table:
    """Features as of ``as_of`` with the labels of the following ``horizon_days``."""
    if horizon_days < 1:
        raise InputError(f"the horizon must be at least one day, not {horizon_days}")
    as_of = as_timestamp(as_of)
    if check_coverage:
        _check_coverage(source, as_of, horizon_days)
    feats = customer_features(source, as_of, windows)
    j = left_join_all(feats, [labels(source, as_of, horizon_days)])
    orders = j.label_orders.fill_null(0)
    active = j.recency_days.notnull() & (j.recency_days <= active_days)
    return j.mutate(
        label_orders=orders,
        label_revenue=j.label_revenue.fill_null(0.0),
        label_purchased=orders > 0,
        label_churned=ibis.ifelse(active, orders == 0, None),
        horizon_days=ibis.literal(horizon_days),
    )


def stacked_training_set(
    source: Any, as_ofs: Iterable[datetime | date | str], horizon_days: int = 30, **kwargs: Any
) -> Table:
    """Training sets of several snapshot dates, one under the other."""
    parts = [training_set(source, t, horizon_days, **kwargs) for t in as_ofs]
    if not parts:
        raise InputError("give at least one snapshot date")
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def _check_coverage(source: Any, as_of: datetime, horizon_days: int) -> None:
    orders = table_reader(source)("order")
    last = orders.ordered_at.max().execute()
    end = as_of + timedelta(days=horizon_days)
    if last is None or last < end - timedelta(days=1):
        raise InputError(
            f"the label window {as_of:%Y-%m-%d} .. {end:%Y-%m-%d} ends after the last order"
            f" ({last:%Y-%m-%d %H:%M}) in the warehouse: its labels would be wrong."
            " Pick an earlier date or a shorter horizon."
            if last is not None
            else "there are no orders to make labels from"
        )
