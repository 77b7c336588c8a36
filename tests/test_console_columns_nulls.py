"""The console's copy of a snapshot holds a field that no customer has a value for.

Online Retail has no email events, so every profile's ``open_rate``, ``email`` and the like is
empty: publishing it once failed ("DuckDB does not support creating tables with NULL typed
columns") and took `sendwise build` down with it. Any field, empty for every customer of every
batch, must keep publish working and count as no match.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.serving.console_columns import ProfileColumns, without_null_columns
from sendwise.serving.console_digest import SnapshotDigest

FIELDS = {
    "open_rate": pa.float64(),
    "frequency": pa.int64(),
    "email": pa.string(),
    "is_vip": pa.bool_(),
    "created_at": pa.timestamp("us"),
}


def _row(i: int, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": f"c{i}",
        "profile": dict(values),
        "scores": {"p_purchase": None},
        "segments": [],
    }


@settings(max_examples=40, deadline=None)
@given(
    empty=st.sets(st.sampled_from(sorted(FIELDS))),
    n=st.integers(min_value=1, max_value=30),
    batches=st.integers(min_value=1, max_value=3),
    hinted=st.booleans(),
)
def test_a_field_nobody_has_keeps_publish_working(tmp_path_factory, empty, n, batches, hinted):
    samples = {
        "open_rate": 0.25,
        "frequency": 3,
        "email": "a@example.com",
        "is_vip": True,
        "created_at": "2011-01-01T00:00:00",
    }
    digest = SnapshotDigest(FIELDS if hinted else None)
    for b in range(batches):
        rows = [
            _row(b * n + i, {k: (None if k in empty else samples[k]) for k in FIELDS})
            for i in range(n)
        ]
        digest.add(rows)

    class _Settings:
        def path(self, *parts: str) -> str:
            return str(tmp_path_factory.mktemp("project").joinpath(*parts))

    meta = digest.finish(_Settings(), 1)
    assert meta["rows"] == n * batches
    for name in empty:
        assert name in meta["fields"] or name == "p_purchase"
    cols = ProfileColumns(without_null_columns(pa.table({"customer_id": ["x"], "p": [None]})), 2)
    assert cols.count("p == 'a'") == 0


def test_an_empty_number_field_stays_a_number_when_the_warehouse_says_so() -> None:
    data = pa.table({"customer_id": ["a", "b"], "open_rate": [None, None], "note": [None, None]})
    typed = without_null_columns(data, {"open_rate": pa.float64()})
    assert typed.schema.field("open_rate").type == pa.float64()
    assert typed.schema.field("note").type == pa.string()
    cols = ProfileColumns(typed, 1)
    assert cols.count("open_rate > 0.5") == 0
