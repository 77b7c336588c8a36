"""Which source column feeds which canonical column, for ``--table`` and ``--mapping`` loads.

Columns are matched by name, ignoring case, spaces, underscores, dashes and dots
(``Customer ID`` feeds ``customer_id``, ``E-Mail`` feeds ``email``), unless a mapping in
sendwise.toml names them. A mapping that names a column the file lacks, or a file that lacks
a required column, is refused before anything is read into the warehouse, with the file's own
column names in the message.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sendwise.errors import MappingError
from sendwise.warehouse.connection import quote, sql_string
from sendwise.warehouse.files import Staged
from sendwise.warehouse.schema import TableSpec
from sendwise.warehouse.validation import TablePlan

if TYPE_CHECKING:
    import duckdb


def normalize(name: str) -> str:
    """``Customer ID``, ``customer-id`` and ``customer_id`` all become ``customerid``."""
    return re.sub(r"[\s._\-]+", "", name.strip().lower())


def source_columns(engine: duckdb.DuckDBPyConnection, staged: Staged) -> list[str]:
    """The columns a user can map: the file's header, or every top-level key of a JSONL file."""
    if staged.format != "lines":
        return list(staged.columns)
    rows = engine.execute(
        f"SELECT DISTINCT unnest(json_keys(_text)) AS k FROM {staged.table} ORDER BY k"
    ).fetchall()
    return [r[0] for r in rows]


def table_plan(
    engine: duckdb.DuckDBPyConnection,
    staged: Staged,
    spec: TableSpec,
    *,
    columns: dict[str, str] | None = None,
    timezone: str = "UTC",
    timestamp_format: str | None = None,
) -> tuple[TablePlan, list[str]]:
    """The plan that loads ``staged`` into ``spec``, and the source columns it ignores."""
    columns = dict(columns or {})
    available = source_columns(engine, staged)
    unknown_targets = sorted(set(columns) - set(spec.column_names))
    if unknown_targets:
        raise MappingError(
            f"mapping names {', '.join(unknown_targets)}, which {spec.name!r} does not have;"
            f" its columns are: {', '.join(spec.column_names)}"
        )
    missing_sources = sorted(src for src in columns.values() if src not in available)
    if missing_sources:
        raise MappingError(
            f"{staged.path}: mapping names column(s) {', '.join(missing_sources)} that the file"
            f" does not have; its columns are: {', '.join(available)}"
        )
    by_norm = {normalize(c): c for c in available}
    chosen: dict[str, str] = {}
    for col in spec.columns:
        if col.name in columns:
            chosen[col.name] = columns[col.name]
        elif normalize(col.name) in by_norm:
            chosen[col.name] = by_norm[normalize(col.name)]
    lacking = [
        c.name for c in spec.columns if c.required and c.default is None and c.name not in chosen
    ]
    if lacking:
        raise MappingError(
            f"{staged.path}: no column for required {', '.join(lacking)} of table {spec.name!r};"
            f" the file's columns are: {', '.join(available)}. Rename them, or map them in"
            " sendwise.toml under [mappings.NAME] and load with --mapping NAME"
        )
    exprs = [f"{_source(staged, src)} AS {quote(dst)}" for dst, src in chosen.items()]
    select = f"SELECT {', '.join([*exprs, '_k'])} FROM {staged.table}"
    ignored = [c for c in available if c not in chosen.values()]
    plan = TablePlan(
        spec, select, timezone=timezone, timestamp_format=timestamp_format, primary=True
    )
    return plan, ignored


def _source(staged: Staged, column: str) -> str:
    if staged.format == "lines":
        return f"json_extract_string(_text, {sql_string('$.' + json_path_key(column))})"
    return quote(column)


def json_path_key(key: str) -> str:
    return '"' + key.replace('"', '\\"') + '"'
