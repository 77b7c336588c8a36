"""The warehouse side of privacy's build steps: rows older than a cutoff (retention rules) and
the rows of given customers in the profiling outputs (objection to profiling)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sendwise.warehouse.connection import quote, sql_string

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse


def count_older(wh: Warehouse, table: str, column: str, cutoff: datetime) -> int:
    """Rows of ``table`` whose ``column`` is before ``cutoff`` (0 when there is no table)."""
    if not wh.has_table(table):
        return 0
    found = wh.engine.execute(
        f"SELECT count(*) FROM {quote(table)} WHERE {quote(column)} < CAST(? AS TIMESTAMP)",
        [cutoff],
    ).fetchone()
    return int(found[0]) if found else 0


def delete_older(wh: Warehouse, table: str, column: str, cutoff: datetime) -> None:
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
        if wh.has_table(table):
            found = wh.engine.execute(
                f"DELETE FROM {quote(table)} WHERE customer_id IN ({listed})"
            ).fetchone()
            removed += int(found[0]) if found else 0
    return removed
