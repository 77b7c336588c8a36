"""Named queries: the reads a domain needs that are more than one Ibis expression, kept here so
that the domains never hold SQL (docs/adr/0060). ``wh.query(name, **params)`` runs one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sendwise.errors import WarehouseError

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse


def last_activity(wh: Warehouse) -> pa.Table:
    """One row: the latest order time and the latest event time (null when there is none)."""
    orders, events = wh.table("order"), wh.table("event")
    last_order = orders.ordered_at.max().to_pyarrow().as_py()
    last_event = events.occurred_at.max().to_pyarrow().as_py()
    return pa.table(
        {"last_order": [last_order], "last_event": [last_event]},
        schema=pa.schema([("last_order", pa.timestamp("us")), ("last_event", pa.timestamp("us"))]),
    )


def unmatched_counts(wh: Warehouse) -> pa.Table:
    """Rows no customer could be found for, per table (see :mod:`.identity`)."""
    from sendwise.warehouse.identity import unmatched_counts as counts

    found = counts(wh)
    return pa.table({"table": list(found), "rows": list(found.values())})


QUERIES: dict[str, Callable[..., pa.Table]] = {
    "last_activity": last_activity,
    "unmatched_counts": unmatched_counts,
}


def run_query(wh: Warehouse, name: str, **params: Any) -> pa.Table:
    if name not in QUERIES:
        raise WarehouseError(f"no warehouse query named {name!r}; known: {', '.join(QUERIES)}")
    return QUERIES[name](wh, **params)
