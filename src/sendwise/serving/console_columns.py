"""The published profiles of one snapshot version as columns in an in-memory DuckDB.

Built once per version from the store (the snapshot, never the warehouse) and kept while that
version is current: a rule typed on the segments page is compiled by the segment rule language
(:mod:`sendwise.segments.language`) against this table and counted in milliseconds, and the
RFM grid, the clusters and a search by e-mail address read it too. A version never changes, so
the copy is never stale; a new publish makes a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sendwise.segments.errors import RuleError
from sendwise.segments.language import compile_rule
from sendwise.store.console import snapshot_rows
from sendwise.warehouse.memory import MemoryTable

logger = logging.getLogger(__name__)
BATCH = 50_000


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (row["profile"] or {}).items():
        if not isinstance(v, list | dict):
            out[k] = v
    for k, v in (row["scores"] or {}).items():
        if not isinstance(v, list | dict):
            out[k] = v
    out["customer_id"] = row["customer_id"]
    out["segments"] = "; ".join(row["segments"] or [])
    return out


def flat_table(rows: Iterable[Mapping[str, Any]], empty: bool = True) -> pa.Table | None:
    """Profile rows (customer_id, profile, scores, segments) as one flat Arrow table: a
    column per scalar field. No rows: an empty table (``empty``) or None."""
    parts: list[pa.Table] = []
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(_flat(row))
        if len(batch) >= BATCH:
            parts.append(pa.Table.from_pylist(batch))
            batch = []
    if batch:
        parts.append(pa.Table.from_pylist(batch))
    if not parts:
        return pa.Table.from_pylist([{"customer_id": ""}]).slice(0, 0) if empty else None
    return pa.concat_tables(parts, promote_options="permissive")


def _json_type(kind: pa.DataType) -> pa.DataType:
    """The type a warehouse column's values have once they went through the snapshot's JSON."""
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pa.float64()
    if pa.types.is_boolean(kind):
        return pa.bool_()
    return pa.string()


def without_null_columns(
    data: pa.Table, types: Mapping[str, pa.DataType] | None = None
) -> pa.Table:
    """``data`` with every column of Arrow's null type (a field no customer has a value for,
    such as email engagement in a shop that sent no email) given a real type: the one its
    warehouse column has (``types``), else text. DuckDB cannot hold a null-typed column."""
    for i, field in enumerate(data.schema):
        if pa.types.is_null(field.type):
            kind = _json_type(types[field.name]) if types and field.name in types else pa.string()
            data = data.set_column(i, field.name, pa.nulls(data.num_rows, kind))
    return data


def parquet_path(settings: Any, version: int) -> Path:
    """Where ``sendwise publish`` writes a version's flat profiles for the console."""
    return Path(settings.path("console", "snapshots", f"profiles-{int(version)}.parquet"))


class ProfileColumns:
    """One version's profiles in DuckDB (thread-safe: one query at a time)."""

    def __init__(self, data: pa.Table, version: int, seconds: float = 0.0) -> None:
        self.version = version
        self.memory = MemoryTable(data, "profile")
        self.table = self.memory.table
        self.rows = data.num_rows
        self._grids: dict[str, dict[tuple[str, str], float]] = {}
        self._clusters: list[dict[str, Any]] | None = None
        self.seconds = seconds

    @classmethod
    def load(cls, store: Any, version: int, path: Path | None = None) -> ProfileColumns:
        """From the Parquet file the publish wrote (``path``; seconds at a million), else
        from the store's rows (JSON, minutes at a million)."""
        started = time.perf_counter()
        source = "file"
        if path is not None and path.exists():
            data = pq.read_table(path)
        else:
            source = "store"
            data = flat_table(snapshot_rows(store, version)) or pa.table({"customer_id": []})
        data = without_null_columns(data)
        cols = cls(data, version, time.perf_counter() - started)
        logger.info(
            "console columns of snapshot %s: %s rows from the %s in %.1f s",
            version, cols.rows, source, cols.seconds,
        )  # fmt: skip
        return cols

    def count(self, rule: str) -> int:
        """Customers the rule holds for; RuleError (with its "did you mean") when it cannot
        be compiled."""
        expr = compile_rule(self.table, rule)
        return int(self.memory.scalar(self.table.filter(expr).count()))

    def sample(self, rule: str | None, segment: str | None, n: int) -> list[str]:
        """Up to ``n`` customer ids of an audience (a rule, or a segment by name)."""
        t = self.table
        if rule:
            t = t.filter(compile_rule(t, rule))
        elif segment:
            t = t.filter(t.segments.contains(segment))
        got = self.memory.execute(t.order_by("customer_id").select("customer_id").limit(n))
        return [str(c) for c in got["customer_id"]]

    def by_email(self, email: str) -> list[str]:
        if "email" not in self.table.columns:
            return []
        t = self.table
        got = t.filter(t.email.lower() == email.strip().lower()).select("customer_id").limit(10)
        return [str(c) for c in self.memory.execute(got)["customer_id"]]

    def grid(self, measure: str) -> dict[tuple[str, str], float]:
        """(r_score, f_score) -> customers, or their summed ``monetary`` (revenue); computed
        once per version (a version never changes)."""
        if measure not in self._grids:
            self._grids[measure] = self._grid(measure)
        return self._grids[measure]

    def _grid(self, measure: str) -> dict[tuple[str, str], float]:
        t = self.table
        if not {"r_score", "f_score"} <= set(t.columns):
            return {}
        t = t.filter(t.r_score.notnull() & t.f_score.notnull())
        value = (
            t.count() if measure == "customers" or "monetary" not in t.columns else t.monetary.sum()
        )
        df = self.memory.execute(t.group_by(["r_score", "f_score"]).aggregate(v=value))
        return {(str(int(r)), str(int(f))): float(v or 0) for r, f, v in df.itertuples(index=False)}

    def clusters(self) -> list[dict[str, Any]]:
        if self._clusters is None:
            self._clusters = self._cluster_rows()
        return self._clusters

    def _cluster_rows(self) -> list[dict[str, Any]]:
        t = self.table
        if not {"cluster", "cluster_description"} <= set(t.columns):
            return []
        t = t.filter(t.cluster.notnull())
        aggs: dict[str, Any] = {"customers": t.count()}
        if "monetary" in t.columns:
            aggs["avg_monetary"] = t.monetary.mean()
        df = self.memory.execute(
            t.group_by(["cluster", "cluster_description"]).aggregate(**aggs).order_by("cluster")
        )
        return df.to_dict("records")

    def fields(self) -> list[str]:
        return list(self.table.columns)


class ColumnsCache:
    """The columns of the current version. ``ready`` never waits: it starts loading them in
    a background thread and answers None until they are there; ``get`` waits for them."""

    def __init__(self, store: Any, settings: Any = None) -> None:
        self.store = store
        self.settings = settings
        self._cols: ProfileColumns | None = None
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._loading: int | None = None
        self.failed: str | None = None

    def _path(self, version: int) -> Path | None:
        return None if self.settings is None else parquet_path(self.settings, version)

    def get(self, version: int) -> ProfileColumns:
        cols = self._cols
        if cols is not None and cols.version == version:
            return cols
        with self._lock:
            if self._cols is None or self._cols.version != version:
                self._cols = ProfileColumns.load(self.store, version, self._path(version))
            return self._cols

    def ready(self, version: int) -> ProfileColumns | None:
        cols = self._cols
        if cols is not None and cols.version == version:
            return cols
        self.start(version)
        return None

    def start(self, version: int) -> None:
        """Load the version's columns in a background thread (once)."""
        with self._start_lock:
            if self._loading == version:
                return
            self._loading = version

        def run() -> None:
            try:
                self.get(version)
                self.failed = None
            except Exception as exc:  # the next ready() tries again
                logger.warning("console columns of snapshot %s failed", version, exc_info=True)
                self.failed = str(exc)
                self._loading = None

        threading.Thread(target=run, name="console-columns", daemon=True).start()


__all__ = ["ColumnsCache", "ProfileColumns", "RuleError", "flat_table", "parquet_path"]
