"""``customer_features(con, as_of)``: one row per customer, from data strictly before ``as_of``.

Written in Ibis only, so the same build runs on the DuckDB file and on other Ibis backends
(a test runs it on two and compares). Durations are in days (floats), counts are integers and 0
when there is nothing to count; values that have no meaning without data (recency of a customer
who never ordered) are null. Customers created at or after ``as_of`` do not exist yet.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import ibis
from ibis.expr.types import Table

from sendwise.features.behaviour import event_features
from sendwise.features.common import as_timestamp, days_between, left_join_all, lit_ts
from sendwise.features.email import email_features, unsubscribed
from sendwise.features.orders import Tables, order_features, order_values

WINDOWS = (7, 30, 90, 365)

FEATURE_DOCS: dict[str, str] = {
    "customer_id": "The customer.",
    "as_of": "The moment the features describe; only data strictly before it is used.",
    "recency_days": "Days since the last completed order (null: never ordered).",
    "frequency": "Completed orders.",
    "monetary": "Revenue of completed orders (quantity x unit price).",
    "avg_order_value": "monetary / frequency (null: never ordered).",
    "tenure_days": "Days since the customer was created or first seen.",
    "ipt_mean_days": "Mean days between orders (null below two orders).",
    "ipt_last_days": "Days between the last two orders (null below two orders).",
    "orders_{w}d": "Completed orders in the last w days.",
    "revenue_{w}d": "Revenue in the last w days.",
    "items_{w}d": "Units bought in the last w days.",
    "refund_orders": "Refunds.",
    "refund_value": "Value refunded (positive).",
    "distinct_products": "Distinct products bought.",
    "distinct_categories": "Distinct categories bought.",
    "favourite_category": "The category of most units bought (ties: alphabetical).",
    "favourite_category_share": "Its share of the units bought in any category.",
    "product_views_{w}d": "'Product Viewed' events in the last w days.",
    "add_to_cart_{w}d": "'Product Added' events in the last w days.",
    "sessions_{w}d": "Browsing sessions in the last w days.",
    "carts_abandoned_{w}d": "Sessions with an add to cart and no order, last w days.",
    "viewed_not_bought_{w}d": "Distinct products viewed in the last w days, never bought.",
    "email_sends": "Marketing emails sent.",
    "email_delivered": "Emails delivered.",
    "email_opens": "Distinct emails opened by a person (machine opens excluded).",
    "email_clicks": "Distinct emails clicked by a person (scanner clicks excluded).",
    "email_machine_opens": "Opens by privacy proxies and scanners.",
    "days_since_last_open": "Days since the last human open (null: never).",
    "days_since_last_click": "Days since the last human click (null: never).",
    "open_rate": "email_opens / delivered (null: nothing delivered).",
    "click_rate": "email_clicks / delivered (null: nothing delivered).",
    "unsubscribed": "Email marketing consent withdrawn or unsubscribed.",
    "preferred_weekday": "Weekday of most activity, 0 = Monday (UTC).",
    "preferred_hour": "Hour of most activity, 0-23 (UTC).",
    "days_since_last_activity": "Days since the last order, event, open or click (null: none).",
    "btyd_frequency": "BTYD: repeat purchase days (first purchase excluded).",
    "btyd_recency": "BTYD: age in days at the last purchase day.",
    "btyd_T": "BTYD: age in days at the end of observation (the day before as_of).",
    "btyd_monetary_value": "BTYD: mean revenue of the repeat purchase days.",
}


def feature_columns(windows: tuple[int, ...] = WINDOWS) -> list[str]:
    cols: list[str] = []
    for name in FEATURE_DOCS:
        cols.extend(name.format(w=w) for w in windows) if "{w}" in name else cols.append(name)
    return cols


def table_reader(source: Any) -> Tables:
    """``table`` of a warehouse (the narrow interface) or of an Ibis backend."""
    return source.table


def customer_features(
    source: Any, as_of: datetime | date | str, windows: tuple[int, ...] = WINDOWS
) -> Table:
    """The features of every customer as of ``as_of`` (an Ibis expression, not yet run)."""
    as_of = as_timestamp(as_of)
    table = table_reader(source)
    customers = table("customer")
    base = customers.filter(
        customers.created_at.isnull() | (customers.created_at < lit_ts(as_of))
    ).select("customer_id", "created_at")

    orders = order_features(table, as_of, windows)
    values = order_values(table, as_of)
    done = values.filter((values.status == "completed") & values.customer_id.notnull())
    lines = table("order_line")
    bought = (
        lines.inner_join(done.select("order_id", "customer_id"), "order_id")
        .select("customer_id", "product_id")
        .distinct()
    )
    events = event_features(table, as_of, windows, bought)
    email = email_features(table, as_of)
    j = left_join_all(base, [*orders, *events, *email])

    # LEAST and GREATEST skip nulls (DuckDB, PostgreSQL): the first and last of what exists.
    first_seen = ibis.least(j.created_at, j._first_order, j._first_event)
    last_active = ibis.greatest(j._last_order, j._last_event, j._last_open, j._last_click)
    derived = {
        "as_of": lit_ts(as_of),
        "tenure_days": days_between(as_of, first_seen),
        "ipt_last_days": days_between(as_of, j._prev_order) - days_between(as_of, j._last_order),
        "unsubscribed": unsubscribed(j),
        "days_since_last_activity": days_between(as_of, last_active),
    }
    out = {}
    for name in feature_columns(windows):
        value = derived[name] if name in derived else j[name]
        out[name] = _zero_when_missing(name, value)
    return j.select(**out)


ZERO_FILLED = (
    "frequency",
    "monetary",
    "orders_",
    "revenue_",
    "items_",
    "refund_",
    "distinct_",
    "product_views_",
    "add_to_cart_",
    "sessions_",
    "carts_abandoned_",
    "viewed_not_bought_",
    "email_sends",
    "email_delivered",
    "email_opens",
    "email_clicks",
    "email_machine_opens",
    "btyd_frequency",
    "btyd_monetary_value",
)


def _zero_when_missing(name: str, value: ibis.Value) -> ibis.Value:
    if name.startswith(ZERO_FILLED):
        return value.fill_null(0)
    return value
