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
from typing import Any

import pyarrow as pa

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


def _table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    parts: list[pa.Table] = []
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(_flat(row))
        if len(batch) >= BATCH:
            parts.append(pa.Table.from_pylist(batch))
            batch = []
    if batch or not parts:
        parts.append(pa.Table.from_pylist(batch or [{"customer_id": ""}]))
    return pa.concat_tables(parts, promote_options="permissive")


class ProfileColumns:
    """One version's profiles in DuckDB (thread-safe: one query at a time)."""

    def __init__(self, store: Any, version: int) -> None:
        started = time.perf_counter()
        self.version = version
        data = _table(snapshot_rows(store, version))
        self.memory = MemoryTable(data, "profile")
        self.table = self.memory.table
        self.rows = data.num_rows if data.column_names != ["customer_id"] else 0
        self._grids: dict[str, dict[tuple[str, str], float]] = {}
        self._clusters: list[dict[str, Any]] | None = None
        self.seconds = time.perf_counter() - started
        logger.info(
            "console columns of snapshot %s: %s rows in %.1f s", version, self.rows, self.seconds
        )

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
    """The columns of the current version, built on first use (one build at a time)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._cols: ProfileColumns | None = None
        self._lock = threading.Lock()

    def get(self, version: int) -> ProfileColumns:
        cols = self._cols
        if cols is not None and cols.version == version:
            return cols
        with self._lock:
            if self._cols is None or self._cols.version != version:
                self._cols = ProfileColumns(self.store, version)
            return self._cols


__all__ = ["ColumnsCache", "ProfileColumns", "RuleError"]
