"""The warehouse reads campaigns need: the profile table and its audience, consent changes with
each customer's address, and completed orders with their value (attribution).

Campaigns ask these few questions instead of reaching the warehouse's connection themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from sendwise.errors import NotFoundError
from sendwise.warehouse.connection import Warehouse

PROFILE = "profile"


def has_table(wh: Warehouse, name: str) -> bool:
    return name in wh.con.list_tables()


def profiles(wh: Warehouse) -> ir.Table:
    if not has_table(wh, PROFILE):
        raise NotFoundError("table", PROFILE, "build the profiles first with `sendwise segment`")
    return wh.table(PROFILE)


def audience_rows(
    wh: Warehouse,
    condition: Callable[[ir.Table], ir.BooleanValue],
    columns: Sequence[str],
) -> pd.DataFrame:
    """``columns`` (those the profile has) of the profiles ``condition`` selects, by id."""
    t = profiles(wh)
    cols = [c for c in columns if c in t.columns]
    frame = t.filter(condition(t)).select(*cols).order_by(ibis.asc("customer_id")).to_pandas()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.reset_index(drop=True)


def any_customer(wh: Warehouse) -> str | None:
    """One customer id from the profiles (None when there is none)."""
    t = profiles(wh)
    rows = t.select("customer_id").order_by("customer_id").limit(1).to_pyarrow().to_pylist()
    return str(rows[0]["customer_id"]) if rows else None


def segment_names(t: ir.Table) -> list[str]:
    """The RFM segments the profile table holds."""
    if "rfm_segment" not in t.columns:
        return []
    return [n for n in t.rfm_segment.to_pyarrow().unique().to_pylist() if n]


def consent_changes(wh: Warehouse) -> pd.DataFrame | None:
    """The warehouse's consent changes, each with its customer's email (consent is per
    address); None when the warehouse has no consent table."""
    if not has_table(wh, "consent"):
        return None
    consent = wh.table("consent")
    if has_table(wh, "customer"):
        customer = wh.table("customer").select("customer_id", "email")
        consent = consent.left_join(customer, consent.customer_id == customer.customer_id)
        consent = consent.select(
            "customer_id", "email", "channel", "purpose", "status", "source", "recorded_at"
        )
    return consent.to_pandas()


def completed_orders(wh: Warehouse, start: datetime, end: datetime) -> pd.DataFrame:
    """customer_id, ordered_at (naive UTC), total of completed orders in (start, end]."""
    o, lines = wh.table("order"), wh.table("order_line")
    o = o.filter(
        o.ordered_at > start,
        o.ordered_at <= end,
        o.status == "completed",
        o.customer_id.notnull(),
    )
    value = lines.group_by("order_id").aggregate(total=(lines.quantity * lines.unit_price).sum())
    joined = o.left_join(value, o.order_id == value.order_id)
    frame = joined.select("customer_id", "ordered_at", "total").to_pandas()
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"]).dt.tz_localize(None)
    frame["total"] = pd.to_numeric(frame["total"]).astype(float).fillna(0.0)
    return frame
