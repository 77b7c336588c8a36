"""What is in the warehouse: row counts, date ranges, rejects by reason, recent loads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import ibis

from sendwise.warehouse.schema import TABLES

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

TIME_COLUMNS = {
    "customer": "created_at",
    "product": "created_at",
    "order": "ordered_at",
    "event": "occurred_at",
    "email_event": "occurred_at",
    "consent": "recorded_at",
}


@dataclass
class TableStatus:
    name: str
    rows: int
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class RejectGroup:
    target: str
    rule: str
    rows: int
    example: str
    """One reason of the group, with its file and line, to show what went wrong."""


@dataclass
class WarehouseStatus:
    tables: list[TableStatus]
    rejects: list[RejectGroup]
    loads: list[dict]
    unmatched_events: int


def warehouse_status(wh: Warehouse, *, recent_loads: int = 10) -> WarehouseStatus:
    tables = []
    for name in TABLES:
        t = wh.table(name)
        col = TIME_COLUMNS.get(name)
        if col:
            row = t.aggregate(n=t.count(), first=t[col].min(), last=t[col].max()).to_pyarrow()
            r = row.to_pylist()[0]
            tables.append(TableStatus(name, int(r["n"]), r["first"], r["last"]))
        else:
            tables.append(TableStatus(name, wh.count(name)))
    rej = wh.table("reject")
    groups = (
        rej.group_by(["target", "rule"])
        .aggregate(
            rows=rej.count(),
            example=(
                rej.source.re_extract(r"([^/\\]+)$", 1)
                + ":"
                + rej.line.cast("string")
                + ": "
                + rej.reason
            ).min(),
        )
        .order_by([ibis.desc("rows"), "target", "rule"])
        .to_pyarrow()
        .to_pylist()
    )
    log = wh.table("ingest_log")
    loads = log.order_by(log.finished_at.desc()).limit(recent_loads).to_pyarrow().to_pylist()
    ev = wh.table("event")
    unmatched = int(ev.filter(ev.identity == "unmatched").count().execute())
    return WarehouseStatus(tables, [RejectGroup(**g) for g in groups], loads, unmatched)
