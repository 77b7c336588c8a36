"""In-memory DuckDB tables for the serving plane: a copy of data it already holds (the console's
copy of a snapshot's profiles), or one row for a rule (template slots), queried through Ibis.

Never the warehouse file: these connections live in the service's memory and hold nothing else.
"""

from __future__ import annotations

import threading
from typing import Any

import ibis
import pyarrow as pa

_THREAD = threading.local()


def thread_backend() -> Any:
    """An in-memory DuckDB backend of the calling thread (ibis's default backend is one
    connection for the whole process: two threads querying it at once break each other)."""
    backend = getattr(_THREAD, "backend", None)
    if backend is None:
        backend = _THREAD.backend = ibis.duckdb.connect()
    return backend


class MemoryTable:
    """An Arrow table in a DuckDB of its own, as an Ibis table; one query at a time."""

    def __init__(self, data: pa.Table, name: str = "t") -> None:
        self._backend = ibis.duckdb.connect()
        self.table = self._backend.create_table(name, data)
        self.lock = threading.Lock()

    def scalar(self, expr: Any) -> Any:
        """The value of a scalar expression over :attr:`table`, run as the SQL Ibis compiles
        for it on the connection directly (Ibis's own execute builds a pandas frame for it,
        tens of milliseconds more)."""
        sql = ibis.to_sql(expr, dialect="duckdb")
        with self.lock:
            return self._backend.raw_sql(str(sql)).fetchone()[0]

    def execute(self, expr: Any) -> Any:
        with self.lock:
            return self._backend.execute(expr)
