"""Features from browsing events (Segment track calls) and overall activity.

``sessions`` count distinct session ids; a ``cart abandoned`` is a session with a 'Product
Added' and no 'Order Completed'; ``viewed_not_bought`` counts distinct products viewed in the
window that the customer never bought before ``as_of``. Preferred weekday (0 = Monday) and hour
are those of most events over the last 365 days, in UTC (ties: the earliest).
"""

from __future__ import annotations

from datetime import datetime

from ibis.expr.types import Table

from sendwise.features.common import lit_ts, since, top_per_customer
from sendwise.features.orders import Tables

VIEW, ADD, ORDER = "Product Viewed", "Product Added", "Order Completed"


def event_features(
    table: Tables, as_of: datetime, windows: tuple[int, ...], bought: Table
) -> list[Table]:
    """``bought``: (customer_id, product_id) of completed purchases before ``as_of``."""
    events = table("event")
    before = events.filter(events.occurred_at < lit_ts(as_of), events.customer_id.notnull())
    last = before.group_by("customer_id").aggregate(
        _last_event=before.occurred_at.max(), _first_event=before.occurred_at.min()
    )
    horizon = max(windows)
    recent = before.filter(before.occurred_at >= since(as_of, horizon))
    ts = recent.occurred_at
    metrics = {}
    for w in windows:
        inside = ts >= since(as_of, w)
        metrics[f"product_views_{w}d"] = recent.count(where=inside & (recent.event == VIEW))
        metrics[f"add_to_cart_{w}d"] = recent.count(where=inside & (recent.event == ADD))
        metrics[f"sessions_{w}d"] = recent.session_id.nunique(where=inside)
    counts = recent.group_by("customer_id").aggregate(**metrics)

    sessions = (
        recent.filter(recent.session_id.notnull())
        .group_by(["customer_id", "session_id"])
        .aggregate(
            start=lambda t: t.occurred_at.min(),
            added=lambda t: (t.event == ADD).any(),
            ordered=lambda t: (t.event == ORDER).any(),
        )
    )
    abandoned = sessions.filter(sessions.added & ~sessions.ordered)
    carts = abandoned.group_by("customer_id").aggregate(
        **{
            f"carts_abandoned_{w}d": abandoned.count(where=abandoned.start >= since(as_of, w))
            for w in windows
        }
    )

    views = recent.filter((recent.event == VIEW) & recent.product_id.notnull())
    views = views.select("customer_id", "product_id", "occurred_at").anti_join(
        bought, ["customer_id", "product_id"]
    )
    unbought = views.group_by("customer_id").aggregate(
        **{
            f"viewed_not_bought_{w}d": views.product_id.nunique(
                where=views.occurred_at >= since(as_of, w)
            )
            for w in windows
        }
    )

    hours = recent.group_by(["customer_id", recent.occurred_at.hour().name("hour")]).aggregate(
        n=lambda t: t.count()
    )
    days = recent.group_by(
        ["customer_id", recent.occurred_at.day_of_week.index().name("weekday")]
    ).aggregate(n=lambda t: t.count())
    return [
        last,
        counts,
        carts,
        unbought,
        top_per_customer(hours, "hour", "n", "preferred_hour"),
        top_per_customer(days, "weekday", "n", "preferred_weekday"),
    ]
