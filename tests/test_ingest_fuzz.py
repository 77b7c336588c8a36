"""The class of defect 8 (issue 13), fuzzed: random bytes and random hostile values in every
column of every canonical table's input, as CSV and as JSON Lines. Whatever comes in, a load
either raises a SendwiseError about the file as a whole or accounts for every row
(loaded + rejected = read), and a profile build afterwards does not crash."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.config import init_project, load_settings
from sendwise.errors import SendwiseError
from sendwise.ingest.load import ingest
from sendwise.profiles.build import build_profiles
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE, TABLES

FUZZ = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE_TEXT = [
    "",
    " ",
    "null",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "1e400",
    "9223372036854775808",
    "-0",
    "0001-01-01",
    "1900-01-01",
    "2011-02-30",
    "9999-12-31 23:59:59",
    "2024-01-01T00:00:00+99:00",
    "{}",
    "[1, 2]",
    '{"a": ',
    "not json",
    '"quoted"',
    "[/bold]",
    "{{ 7*7 }}",
    "'; DROP TABLE customer; --",
    "a\x00b",
    "\u202e\u200b",
    "Zoë 日本",
    "x" * 5000,
    "c1",
    "completed",
    "track",
    "email",
    "a@b.com",
]
text_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30))
json_values = st.one_of(
    text_values,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "product_id", "products", "email"]), text_values, max_size=3
    ),
)


def _columns(table: str) -> list[str]:
    return list(TABLES[table].column_names)


@st.composite
def csv_file(draw, table: str) -> bytes:
    cols = _columns(table)
    rows = draw(st.lists(st.lists(text_values, min_size=len(cols), max_size=len(cols)), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(cols)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # random bytes spliced in somewhere after the header
        at = draw(st.integers(min_value=len(cols), max_value=max(len(cols), len(data))))
        data = data[:at] + draw(st.binary(max_size=40)) + data[at:]
    return data


@st.composite
def jsonl_file(draw, table: str) -> bytes:
    cols = _columns(table)
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            lines.append(draw(st.binary(max_size=40)))
            continue
        row = {c: draw(json_values) for c in cols if draw(st.booleans()) or c in cols[:1]}
        lines.append(json.dumps(row).encode())
    return b"\n".join(lines) + b"\n"


def _files(draw_table):
    return st.fixed_dictionaries(
        {
            t: st.tuples(st.sampled_from(["csv", "jsonl"]), st.just(t)).flatmap(
                lambda p: (csv_file(p[1]) if p[0] == "csv" else jsonl_file(p[1])).map(
                    lambda data, fmt=p[0]: (fmt, data)
                )
            )
            for t in draw_table
        }
    )


def _load_all(files: dict[str, tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        s = load_settings(folder, warehouse={"url": "duckdb://:memory:"})
        s.segments.clusters = False
        with Warehouse.from_settings(s) as wh:
            for table in LOADABLE:
                fmt, data = files[table]
                path = folder / f"{table}.{fmt}"
                path.write_bytes(data)
                try:
                    r = ingest(wh, s, path, table=table)
                except SendwiseError:
                    continue  # about the whole file (no header, a required column missing, ...)
                assert r.loaded + r.rejected == r.read, (table, r)
            build_profiles(wh, s, "2024-06-01")


@FUZZ
@given(files=_files(LOADABLE))
def test_hostile_files_of_every_table_never_crash_a_load_or_a_build(files) -> None:
    _load_all(files)


@settings(FUZZ, max_examples=40)
@given(
    data=st.binary(max_size=300),
    fmt=st.sampled_from(["csv", "jsonl"]),
    preset=st.sampled_from([None, "segment", "cdnow", "online-retail"]),
)
def test_random_bytes_are_rejected_or_refused(data: bytes, fmt: str, preset: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        s = load_settings(folder, warehouse={"url": "duckdb://:memory:"})
        path = folder / f"input.{fmt}"
        path.write_bytes(data)
        with Warehouse.from_settings(s) as wh:
            try:
                if preset:
                    r = ingest(wh, s, path, preset=preset)
                else:
                    r = ingest(wh, s, path, table="customer")
            except SendwiseError:
                return
            assert r.loaded + r.rejected == r.read
