"""Features from orders: RFM, windows, refunds, breadth, favourite category, BTYD summary.

Conventions: revenue is the sum of quantity x unit price of a ``completed`` order's lines;
refunds are counted apart and do not reduce revenue; guest orders (no customer) are ignored.

The BTYD summary follows lifetimes' ``summary_data_from_transaction_data`` with freq='D':
purchases are counted per calendar day (UTC); the observation period ends on the day before
``as_of`` (the last day with data); ``btyd_frequency`` is the number of days with a purchase
after the first one (the first purchase is excluded); ``btyd_recency`` is the age in days of the
customer at their last purchase day (0 when frequency is 0); ``btyd_T`` is the age in days at the
end of the observation period; ``btyd_monetary_value`` is the mean revenue of the repeat purchase
days (0 when frequency is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import ibis
from ibis.expr.types import Table

from sendwise.catalog.categories import product_categories
from sendwise.features.common import DAY, days_between, lit_ts, since, top_per_customer

Tables = Callable[[str], Table]


def order_values(table: Tables, as_of: datetime) -> Table:
    """One row per order placed before ``as_of``: customer, time, status, value and items."""
    orders = table("order")
    orders = orders.filter(orders.ordered_at < lit_ts(as_of))
    lines = table("order_line")
    per_order = lines.group_by("order_id").aggregate(
        value=(lines.quantity * lines.unit_price).sum(), items=lines.quantity.sum()
    )
    joined = orders.left_join(per_order, "order_id")
    return joined.select(
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.status,
        value=joined.value.fill_null(0.0),
        items=joined["items"].fill_null(0),
    )


def order_features(table: Tables, as_of: datetime, windows: tuple[int, ...]) -> list[Table]:
    values = order_values(table, as_of)
    values = values.filter(values.customer_id.notnull())
    done = values.filter(values.status == "completed")
    ts = done.ordered_at
    metrics = {
        "frequency": done.count(),
        "monetary": done.value.sum(),
        "_first_order": ts.min(),
        "_last_order": ts.max(),
    }
    for w in windows:
        recent = ts >= since(as_of, w)
        metrics[f"orders_{w}d"] = done.count(where=recent)
        metrics[f"revenue_{w}d"] = done.value.sum(where=recent)
        metrics[f"items_{w}d"] = done["items"].sum(where=recent)
    rfm = done.group_by("customer_id").aggregate(**metrics)
    rfm = rfm.mutate(
        recency_days=days_between(as_of, rfm._last_order),
        avg_order_value=rfm.monetary / rfm.frequency,
        ipt_mean_days=ibis.ifelse(
            rfm.frequency > 1,
            (rfm._last_order.epoch_seconds() - rfm._first_order.epoch_seconds()).cast("float64")
            / DAY
            / (rfm.frequency - 1),
            None,
        ),
    )
    ranked = done.mutate(
        _n=ibis.row_number().over(group_by=done.customer_id, order_by=ibis.desc(done.ordered_at))
    )
    prev = ranked.filter(ranked._n == 1).select("customer_id", _prev_order=ranked.ordered_at)
    refunds = values.filter(values.status == "refund")
    refund = refunds.group_by("customer_id").aggregate(
        refund_orders=refunds.count(), refund_value=refunds.value.abs().sum()
    )
    return [rfm, prev, refund, *_breadth(table, done), _btyd(done, as_of)]


def _breadth(table: Tables, done: Table) -> list[Table]:
    lines = table("order_line")
    products = product_categories(table).select("product_id", "category")
    bought = lines.inner_join(done.select("order_id", "customer_id"), "order_id").left_join(
        products, "product_id"
    )
    bought = bought.select("customer_id", "product_id", "category", "quantity")
    breadth = bought.group_by("customer_id").aggregate(
        distinct_products=bought.product_id.nunique(),
        distinct_categories=bought.category.nunique(),
    )
    by_cat = (
        bought.filter(bought.category.notnull())
        .group_by(["customer_id", "category"])
        .aggregate(items=lambda t: t.quantity.sum())
    )
    fav = top_per_customer(by_cat, "category", "items", "favourite_category")
    totals = by_cat.group_by("customer_id").aggregate(_cat_items=by_cat["items"].sum())
    top_items = by_cat.join(
        fav, [by_cat.customer_id == fav.customer_id, by_cat.category == fav.favourite_category]
    )
    share = top_items.select(by_cat.customer_id, _fav_items=by_cat["items"]).join(
        totals, "customer_id"
    )
    share = share.select(
        "customer_id",
        favourite_category_share=ibis.ifelse(
            share._cat_items > 0, share._fav_items / share._cat_items, None
        ),
    )
    return [breadth, fav, share]


def _btyd(done: Table, as_of: datetime) -> Table:
    end_day = lit_ts(as_of - timedelta(days=1)).date()
    days = (
        done.mutate(day=done.ordered_at.date())
        .group_by(["customer_id", "day"])
        .aggregate(revenue=lambda t: t.value.sum())
    )
    first = days.group_by("customer_id").aggregate(_first_day=days.day.min())
    d = days.join(first, "customer_id")
    repeat = d.day > d._first_day
    agg = d.group_by("customer_id").aggregate(
        btyd_frequency=repeat.sum().cast("float64"),
        _last_day=d.day.max(),
        _first_day=d._first_day.min(),
        _repeat_revenue=d.revenue.sum(where=repeat),
    )
    return agg.select(
        "customer_id",
        "btyd_frequency",
        btyd_recency=agg._last_day.delta(agg._first_day, unit="day").cast("float64"),
        btyd_T=end_day.delta(agg._first_day, unit="day").cast("float64"),
        btyd_monetary_value=ibis.ifelse(
            agg.btyd_frequency > 0, agg._repeat_revenue / agg.btyd_frequency, 0.0
        ),
    )
