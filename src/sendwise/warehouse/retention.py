"""The warehouse side of privacy's build steps: rows older than a cutoff (retention rules) and
the rows of given customers in the profiling outputs (objection to profiling). On Spark, whose
Parquet tables have no DELETE, a table is rewritten without the rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sendwise.warehouse import spark
from sendwise.warehouse.connection import quote, sql_string

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse


def count_older(wh: Warehouse, table: str, column: str, cutoff: datetime) -> int:
    """Rows of ``table`` whose ``column`` is before ``cutoff`` (0 when there is no table)."""
    if not wh.has_table(table):
        return 0
    if wh.is_spark:
        t = wh.table(table)
        return int(t.filter(t[column] < cutoff).count().execute())
    found = wh.engine.execute(
        f"SELECT count(*) FROM {quote(table)} WHERE {quote(column)} < CAST(? AS TIMESTAMP)",
        [cutoff],
    ).fetchone()
    return int(found[0]) if found else 0


def delete_older(wh: Warehouse, table: str, column: str, cutoff: datetime) -> None:
    if wh.is_spark:
        t = wh.table(table)
        spark.replace(wh.con, table, t.filter(t[column].isnull() | (t[column] >= cutoff)))
        return
    wh.engine.execute(
        f"DELETE FROM {quote(table)} WHERE {quote(column)} < CAST(? AS TIMESTAMP)", [cutoff]
    )


def delete_customers(wh: Warehouse, ids: Sequence[str], tables: Sequence[str]) -> int:
    """Delete the rows of ``ids`` from ``tables`` (those that exist); rows removed."""
    if not ids:
        return 0
    listed = ", ".join(sql_string(i) for i in ids)
    removed = 0
    for table in tables:
        if wh.has_table(table) and wh.is_spark:
            t = wh.table(table)
            gone = t.customer_id.isin(list(ids))
            removed += int(t.filter(gone).count().execute())
            spark.replace(wh.con, table, t.filter(~gone | t.customer_id.isnull()))
        elif wh.has_table(table):
            found = wh.engine.execute(
                f"DELETE FROM {quote(table)} WHERE customer_id IN ({listed})"
            ).fetchone()
            removed += int(found[0]) if found else 0
    return removed
