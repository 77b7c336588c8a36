"""Vectorized string building with pyarrow.compute: ids, lookups and JSON fragments.

Millions of ids and JSON objects are made by concatenating whole Arrow string arrays, never
by formatting rows one at a time in Python. A null in any part makes the result null, which
is how optional columns (anonymous_id, email on identify calls) are left empty.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sendwise.warehouse.schema import TABLES

logger = logging.getLogger(__name__)

ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}
Part: TypeAlias = "pa.Array | pa.ChunkedArray | str"


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical warehouse table: same names, order and types."""
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in TABLES[table].columns])


def numbers(values: np.ndarray, mask: np.ndarray | None = None, width: int = 0) -> pa.Array:
    """Decimal text of integers, zero-padded to ``width``; null where ``mask`` is true."""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64), mask=mask), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def decimals(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Shortest text of amounts rounded to cents: 24.99, 25, -3.5."""
    rounded = np.round(np.asarray(values, dtype=np.float64), 2) + 0.0  # no "-0"
    return pc.cast(pa.array(rounded, mask=mask), pa.string())


def concat(*parts: Part) -> pa.Array:
    """Element-wise concatenation; plain ``str`` parts are repeated on every row."""
    return pc.binary_join_element_wise(*parts, "")


def lookup(values: Sequence[str | None] | pa.Array, index: np.ndarray, mask=None) -> pa.Array:
    """``values[index]`` for each row, null where ``mask`` is true or the value is None."""
    table = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    idx = pa.array(np.asarray(index, dtype=np.int64), mask=mask)
    return table.take(idx)


def prefixed_ids(prefix: str, count: int, width: int, first: int = 1) -> pa.Array:
    """``prefix`` + zero-padded numbers ``first`` .. ``first + count - 1``."""
    return concat(prefix, numbers(np.arange(first, first + count), width=width))


def id_width(count: int, minimum: int) -> int:
    return max(minimum, len(str(max(count, 1))))


def timestamps(values_us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values_us, dtype=np.int64), type=pa.timestamp("us"), mask=mask)


def json_list(items: pa.Array, offsets: np.ndarray) -> pa.Array:
    """'[a,b,..]' from the strings items[offsets[i]:offsets[i+1]] of each row i."""
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), items)
    return concat("[", pc.binary_join(lists, ","), "]")


def quoted(values: pa.Array) -> pa.Array:
    """JSON string literals; the simulator's own values need no escaping."""
    return concat('"', values, '"')


class NullColumns:
    """All-null columns for the chunks of one table, sharing one buffer per type.

    A string column of nulls still costs four bytes of offsets a row; slicing one array for
    every chunk pays that once instead of once per chunk.
    """

    def __init__(self) -> None:
        self._cache: dict[pa.DataType, pa.Array] = {}

    def get(self, n: int, type_: pa.DataType) -> pa.Array:
        cached = self._cache.get(type_)
        if cached is None or len(cached) < n:
            size = max(n, 2 * len(cached)) if cached is not None else n
            cached = self._cache[type_] = pa.nulls(size, type_)
        return cached.slice(0, n)


def table(
    name: str,
    columns: dict[str, pa.Array | pa.ChunkedArray],
    nulls: NullColumns | None = None,
) -> pa.Table:
    """A canonical table from its columns; all-null columns may be left out."""
    schema = arrow_schema(name)
    n = len(next(iter(columns.values())))
    nulls = nulls or NullColumns()
    arrays = [columns[f.name] if f.name in columns else nulls.get(n, f.type) for f in schema]
    arrays = [
        a.cast(f.type) if a.type != f.type else a for a, f in zip(arrays, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
