"""The warehouse operations the content package needs, so that content holds no SQL text and
never touches a raw connection (issue 13).

- :func:`has_table`: whether a table exists (profile, recommendation);
- :class:`ChunkQuery`: an Ibis expression over a table of customer ids, run chunk by chunk; on
  DuckDB compiled to SQL once and run per chunk with the ids registered as an Arrow table
  (docs/adr/0035-token-queries-compiled-once.md), elsewhere built per chunk on a memtable;
- :func:`schema_version`: what such compiled queries depend on (the tables' columns);
- :func:`customer_emails`: the email address of each of many customers, in chunks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

ID_TYPE = pa.string()
CHUNK = 5_000


def has_table(wh: Warehouse, name: str) -> bool:
    return name in wh.con.list_tables()


class ChunkQuery:
    """``build(ids)`` (an Ibis table over a one-column ``customer_id`` table) run per chunk."""

    def __init__(self, wh: Warehouse, build: Callable[[ir.Table], ir.Table]) -> None:
        self.wh, self.build = wh, build
        if wh.is_duckdb:
            self._name = f"_sw_ids_{uuid.uuid4().hex}"
            self._expr = build(ibis.table({"customer_id": "string"}, name=self._name))
            self._sql = wh.con.compile(self._expr)

    def run(self, ids: list[str]) -> pa.Table:
        ids_table = pa.table({"customer_id": pa.array(ids, ID_TYPE)})
        if not self.wh.is_duckdb:
            return self.build(ibis.memtable(ids_table)).to_pyarrow()
        con = self.wh.engine
        con.register(self._name, ids_table)
        try:
            result = con.execute(self._sql).to_arrow_table()
        finally:
            con.unregister(self._name)
        return self._expr.__pyarrow_result__(result)  # the types Ibis' to_pyarrow gives


def schema_version(wh: Warehouse, tables: Iterable[str]) -> tuple | None:
    """The columns of ``tables`` (DuckDB; None elsewhere): compiled queries stay valid while
    this stays the same."""
    if not wh.is_duckdb:
        return None
    names = ", ".join("'" + t.replace("'", "''") + "'" for t in tables)
    sql = (
        "SELECT database_name, schema_name, table_name, column_index, column_name, data_type"
        f" FROM duckdb_columns() WHERE table_name IN ({names}) ORDER BY ALL"
    )
    return tuple(wh.engine.execute(sql).fetchall())


def customer_emails(table: ir.Table, ids: list[str]) -> dict[str, str]:
    """customer id -> email (non-null) for every id of ``ids`` found in ``table`` (a table with
    ``customer_id`` and ``email``), read in chunks so that any number of ids works."""
    out: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = table.filter(table.customer_id.isin(chunk) & table.email.notnull())
        for row in rows.select("customer_id", "email").to_pyarrow().to_pylist():
            out[row["customer_id"]] = row["email"]
    return out
