"""The console's view of a snapshot, prepared when it is published (docs/adr/0153).

What the segments page shows (the RFM grid by customers and by revenue, the clusters with
their descriptions, the profile fields a rule may use) is a few hundred numbers: ``sendwise
publish`` computes them from the profiles it writes and keeps them in the snapshot's meta
(``meta["console"]``), so the page reads only those. The same profiles, flattened to columns,
are written to a Parquet file (``<project>/console/snapshots/profiles-<version>.parquet``)
that the service loads into DuckDB in seconds, in the background, for the live rule counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sendwise.serving.console_columns import (
    ProfileColumns,
    flat_table,
    parquet_path,
    without_null_columns,
)

logger = logging.getLogger(__name__)
MEASURES = ("customers", "revenue")


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, str | bool):
        return v
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and v != v:  # NaN
        return None
    return v


def summarize(cols: ProfileColumns) -> dict[str, Any]:
    """The segments page's figures of one version's columns, JSON-ready."""
    return {
        "rows": cols.rows,
        "fields": cols.fields(),
        "grid": {m: [[r, f, float(v)] for (r, f), v in cols.grid(m).items()] for m in MEASURES},
        "clusters": [{k: _plain(v) for k, v in c.items()} for c in cols.clusters()],
    }


class SnapshotDigest:
    """Fed the profile rows of a version as they are written (``add``); ``finish`` writes the
    Parquet file (atomically: a temporary file renamed) and returns ``meta["console"]``."""

    def __init__(self, types: Mapping[str, pa.DataType] | None = None) -> None:
        self.parts: list[pa.Table] = []
        self.types = types  # the warehouse profile's column types, for columns with no value

    def add(self, profiles: Iterable[Mapping[str, Any]]) -> None:
        part = flat_table(profiles, empty=False)
        if part is not None:
            self.parts.append(part)

    def finish(self, settings: Any, version: int) -> dict[str, Any]:
        data = (
            pa.concat_tables(self.parts, promote_options="permissive")
            if self.parts
            else pa.table({"customer_id": pa.array([], pa.string())})
        )
        data = without_null_columns(data, self.types)
        self.parts = []
        cols = ProfileColumns(data, version)
        path = parquet_path(settings, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pq.write_table(data, tmp)
        os.replace(tmp, path)
        return summarize(cols)


def prune(settings: Any, versions: Iterable[int]) -> None:
    """Remove the Parquet files of pruned versions."""
    for v in versions:
        try:
            parquet_path(settings, v).unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove the console copy of snapshot %s", v, exc_info=True)


__all__ = ["SnapshotDigest", "parquet_path", "prune", "summarize"]
