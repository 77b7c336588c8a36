"""The narrow warehouse interface: the few operations the domains need (docs/adr/0060).

Domains (ingest, features, profiles, the nightly build, ...) read canonical tables as Ibis
expressions, write derived tables from Ibis, Arrow or pandas, count rows, and run named queries
whose SQL lives in this package. Ingest additionally stages rows and inserts or deletes keys.
Nothing outside ``warehouse/`` and ``store/`` touches a connection or writes SQL text; a test
(tests/test_warehouse_boundary.py) keeps it so.

The fake for fast tests is the real thing in memory: ``Warehouse("duckdb://:memory:")`` runs
the same SQL and Ibis code as the DuckDB file, in milliseconds, with nothing on disk; a
hand-written dictionary fake would have to re-implement Ibis expressions and would test less.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import ibis
import pyarrow as pa

from sendwise.warehouse.schema import TableSpec


@runtime_checkable
class WarehouseAPI(Protocol):
    """What a domain may ask of the warehouse."""

    def table(self, name: str) -> ibis.Table:
        """A canonical or derived table as an Ibis expression."""
        ...

    def has_table(self, name: str) -> bool: ...

    def count(self, name: str) -> int: ...

    def write_table(self, name: str, data: ibis.Table | pa.Table | Any) -> None:
        """Create or replace a derived table (never a canonical one)."""
        ...

    def query(self, name: str, **params: Any) -> pa.Table:
        """Run a named query of :mod:`sendwise.warehouse.queries`."""
        ...

    # -- ingest ------------------------------------------------------------------------------
    def staged(self, rows: pa.Table | str) -> AbstractContextManager[ibis.Table]:
        """Rows made visible to the warehouse as a temporary table for the duration."""
        ...

    def insert(self, spec: TableSpec, rows: ibis.Table) -> None: ...

    def delete_keys(self, spec: TableSpec, staged: ibis.Table) -> None: ...


def in_memory() -> WarehouseAPI:
    """A fresh, empty warehouse in memory with the canonical tables: the fake for tests."""
    from sendwise.warehouse.connection import Warehouse

    wh = Warehouse("duckdb://:memory:")
    wh.ensure_schema()
    return wh
