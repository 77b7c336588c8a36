"""Small Ibis helpers shared by the feature modules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import ibis
from ibis.expr.types import Table, TimestampValue

DAY = 86400.0


def as_timestamp(value: datetime | date | str) -> datetime:
    """A naive UTC datetime from a date, a datetime or an ISO string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # to UTC, never to the machine's local time
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    return datetime(value.year, value.month, value.day)


def lit_ts(value: datetime) -> TimestampValue:
    return ibis.timestamp(value.strftime("%Y-%m-%d %H:%M:%S"))


def days_between(later: datetime, earlier) -> ibis.Value:
    """(later - earlier) in days, as a float; ``earlier`` is a timestamp column. (The cast
    keeps it a double on Spark, which would otherwise make it a decimal.)"""
    return (lit_ts(later).epoch_seconds() - earlier.epoch_seconds()).cast("float64") / DAY


def since(as_of: datetime, days: int) -> TimestampValue:
    return lit_ts(as_of - timedelta(days=days))


def top_per_customer(counts: Table, value: str, weight: str, out: str) -> Table:
    """For each customer the ``value`` with the largest ``weight`` (ties: smallest value)."""
    rank = ibis.row_number().over(
        group_by=counts.customer_id, order_by=[ibis.desc(counts[weight]), counts[value]]
    )
    ranked = counts.mutate(_rank=rank)
    return ranked.filter(ranked._rank == 0).select("customer_id", **{out: ranked[value]})


def left_join_all(base: Table, parts: list[Table]) -> Table:
    """Left-join every part on customer_id, keeping one customer_id column."""
    for part in parts:
        base = base.left_join(part, "customer_id")
        if "customer_id_right" in base.columns:
            base = base.drop("customer_id_right")
    return base
