"""The simulated shop's live event stream, as the journey engine would receive it.

Three kinds of Segment ``track`` calls, in time order, for customers known when they happen:

* ``Signed Up``: each customer created inside the simulated period, at ``created_at``;
* ``Product Added``: the shop's add-to-cart events of logged-in sessions (``customer_id`` set;
  an anonymous visitor who logs in at checkout is not known yet when adding, so the real
  service could not trigger on them either);
* ``Order Completed``: every completed order (``order_id``, ``total``, ``products``).

Rows have the intake log's fields (:data:`sendwise.store.repositories.INTAKE_FIELDS`); the
message ids are the shop's own (``m…``), ``s…`` for signups, so a replay is idempotent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd

from sendwise.simulate.shop import SimulatedShop

SIGNED_UP, PRODUCT_ADDED, ORDER_COMPLETED = "Signed Up", "Product Added", "Order Completed"
STREAM_EVENTS = (SIGNED_UP, PRODUCT_ADDED, ORDER_COMPLETED)
COLUMNS = ("message_id", "customer_id", "event", "occurred_at", "properties")


def _period(shop: SimulatedShop) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(shop.params["start"]), pd.Timestamp(shop.params["end"])


def journey_stream(shop: SimulatedShop) -> pd.DataFrame:
    """``COLUMNS`` of the stream, sorted by ``occurred_at`` (properties are dicts)."""
    start, end = _period(shop)
    events = shop.tables["event"].to_pandas()
    kept = events[
        events["event"].isin([PRODUCT_ADDED, ORDER_COMPLETED]) & events["customer_id"].notna()
    ]
    tracked = pd.DataFrame(
        {
            "message_id": kept["message_id"],
            "customer_id": kept["customer_id"],
            "event": kept["event"],
            "occurred_at": pd.to_datetime(kept["occurred_at"]),
            "properties": [json.loads(p) if isinstance(p, str) else {} for p in kept["properties"]],
        }
    )
    customers = shop.tables["customer"].to_pandas()
    created = pd.to_datetime(customers["created_at"])
    new = customers[(created >= start) & (created < end)]
    signups = pd.DataFrame(
        {
            "message_id": "s" + new["customer_id"],
            "customer_id": new["customer_id"],
            "event": SIGNED_UP,
            "occurred_at": pd.to_datetime(new["created_at"]),
            "properties": [{} for _ in range(len(new))],
        }
    )
    stream = pd.concat([signups, tracked], ignore_index=True)
    stream["occurred_at"] = stream["occurred_at"].astype("datetime64[us]")
    return stream.sort_values(["occurred_at", "message_id"], kind="stable").reset_index(drop=True)


def intake_row(event: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    """One stream event as an intake log row (a Segment ``track`` call by a known user)."""
    return {
        "message_id": event["message_id"],
        "type": "track",
        "event": event["event"],
        "user_id": event["customer_id"],
        "anonymous_id": None,
        "customer_id": event["customer_id"],
        "occurred_at": event["occurred_at"],
        "received_at": received_at,
        "sent_at": event["occurred_at"],
        "properties": dict(event["properties"]),
        "traits": {},
        "context": {},
        "source": "simulator",
    }
