"""Property tests of ``ingest --table``: for any mix of good and bad rows in a CSV file,
loaded + rejected == read == the rows written, every good row (not a later repeat of a key) is
stored with its exact values, and the rejected lines are exactly the bad ones, each with the
rule that an independent model of the rules predicts."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import IngestReport, ingest
from sendwise.warehouse.connection import Warehouse

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Row:
    fields: tuple[str, ...]
    """The fields as written (csv-quoted by the writer)."""
    rule: str | None
    """The rule that must reject it, or None for a valid row (before duplicate keys)."""


@dataclass(frozen=True)
class Layout:
    """How the rows are laid out in the file: line ending, and blank lines between rows."""

    newline: str
    blank_before: tuple[bool, ...]


def write_csv(
    header: list[str], rows: list[Row], layout: Layout
) -> tuple[str, list[int], list[str]]:
    """The file's text, the physical line each row starts on (header = line 1) and each row's
    own text (without its line ending)."""
    out = io.StringIO()
    csv.writer(out, lineterminator=layout.newline).writerow(header)
    starts, texts = [], []
    for row, blank in zip(rows, layout.blank_before, strict=True):
        if blank:
            out.write(layout.newline)
        one = io.StringIO()
        csv.writer(one, lineterminator=layout.newline).writerow(row.fields)
        starts.append(out.getvalue().count("\n") + 1)
        texts.append(one.getvalue().removesuffix(layout.newline))
        out.write(one.getvalue())
    return out.getvalue(), starts, texts


def run_ingest(table: str, header: list[str], text: str) -> tuple[IngestReport, dict, dict]:
    """Load ``text`` as a CSV file into a brand-new project; return the report, the stored rows
    of ``table`` and {line: (rule, raw)} of the rejects."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        # In memory: the same engine and SQL as the default file, without the disk round trips.
        s = load_settings(folder, warehouse={"url": "duckdb://:memory:"})
        path = folder / f"{table}.csv"
        path.write_bytes(text.encode("utf-8"))
        with Warehouse.from_settings(s) as wh:
            report = ingest(wh, s, path, table=table)
            key = header[0]
            cols = ", ".join(header)
            stored = {
                r[0]: r[1:] for r in wh.engine.execute(f"SELECT {cols} FROM {table}").fetchall()
            }
            assert len(stored) == wh.count(table), f"duplicate {key} stored"
            rejected = {
                line: (rule, raw)
                for line, rule, raw in wh.engine.execute(
                    "SELECT line, rule, raw FROM reject"
                ).fetchall()
            }
            assert len(rejected) == wh.count("reject"), "two rejects for one line"
    return report, stored, rejected


def expected_outcome(
    rows: list[Row], lines: list[int], key_of
) -> tuple[dict[int, str], dict[str, Row]]:
    """The model: {line: rule} of the rejects and {key: row} of the rows to be stored.

    A row breaking a rule is rejected by it; of the valid rows, the first of each key wins and
    a later one is a duplicate_key reject."""
    rejects: dict[int, str] = {}
    kept: dict[str, Row] = {}
    for row, line in zip(rows, lines, strict=True):
        if row.rule is not None:
            rejects[line] = row.rule
        elif key_of(row) in kept:
            rejects[line] = "duplicate_key"
        else:
            kept[key_of(row)] = row
    return rejects, kept


def check_accounting(report: IngestReport, rows: list[Row], rejected: dict, expect: dict) -> None:
    assert report.read == len(rows)
    assert report.loaded + report.rejected == report.read
    assert report.rejected == len(expect)
    assert {line: rule for line, (rule, _) in rejected.items()} == expect
    by_rule: dict[str, int] = {}
    for rule in expect.values():
        by_rule[rule] = by_rule.get(rule, 0) + 1
    assert report.rejects_by_rule == by_rule


def check_raw(
    rows: list[Row], header: list[str], lines: list[int], texts: list[str], rejected: dict
) -> None:
    """A reject's raw is the row as read: the fields as JSON, or the line itself if unparsable."""
    at = {line: i for i, line in enumerate(lines)}
    for line, (rule, raw) in rejected.items():
        i = at[line]
        if rule == "parse":
            # (A blank line before a malformed one ends up in front of its raw: see
            # test_ingest_validation.py::test_parse_reject_raw_after_a_blank_line.)
            assert raw.lstrip("\r\n") == texts[i]
        else:
            fields = rows[i].fields
            as_read = {h: (v if v != "" else None) for h, v in zip(header, fields, strict=True)}
            assert json.loads(raw) == as_read


def layouts(n: int):
    return st.builds(
        Layout,
        st.sampled_from(["\n", "\r\n"]),
        st.lists(st.integers(0, 4).map(lambda x: x == 0), min_size=n, max_size=n).map(tuple),
    )


# -- value strategies ---------------------------------------------------------------------------

# Any printable text, odd unicode included (combining marks, emoji, RTL, CJK, quotes, commas),
# without control characters and without surrounding whitespace (values are stored trimmed).
odd_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=12
).filter(lambda s: s == s.strip() and s.strip() != "")
# A quoted value may hold line breaks (legal CSV): the lines after it keep their numbers.
multi_line_text = st.lists(odd_text, min_size=2, max_size=3).map("\n".join)
keys = st.sampled_from(["c1", "c2", "c3", "Ünï-4", "5", "日本", "x,y", 'q"t'])
good_email = st.builds(
    lambda local, domain, tld, upper: (
        f"{local}@{domain}.{tld}".upper() if upper else f"{local}@{domain}.{tld}"
    ),
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["com", "org", "co", "shop"]),
    st.booleans(),
)
bad_email = st.sampled_from(
    [
        "plainaddress",
        "a@b",
        "@no-local.com",
        "two@@at.com",
        "sp ace@x.com",
        "ünï@cöde.com",
        "a@b.c",
        "a@-b.com",
        "a@b..com",
        "trailing@dot.com.",
    ]
)


@st.composite
def customer_rows(draw) -> Row:
    kind = draw(
        st.sampled_from(
            ["good", "good", "good", "no_email", "bad_email", "no_id", "extra", "short"]
        )
    )
    key = draw(keys)
    email = draw(good_email)
    name = draw(st.one_of(st.just(""), odd_text, multi_line_text))
    if kind == "good":
        return Row((key, email, name), None)
    if kind == "no_email":
        return Row((key, "", name), None)
    if kind == "bad_email":
        return Row((key, draw(bad_email), name), "email")
    if kind == "no_id":
        return Row((draw(st.sampled_from(["", " ", "   "])), email, name), "required")
    if kind == "extra":
        return Row((key, email, name, draw(odd_text)), "parse")
    return Row((key, email), "parse")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_customer_files(data) -> None:
    rows = data.draw(st.lists(customer_rows(), min_size=1, max_size=25), label="rows")
    layout = data.draw(layouts(len(rows)), label="layout")
    header = ["customer_id", "email", "first_name"]
    text, lines, texts = write_csv(header, rows, layout)
    report, stored, rejected = run_ingest("customer", header, text)
    expect, kept = expected_outcome(rows, lines, key_of=lambda r: r.fields[0])
    check_accounting(report, rows, rejected, expect)
    check_raw(rows, header, lines, texts, rejected)
    assert stored == {
        key: (row.fields[1].lower() or None, row.fields[2] or None) for key, row in kept.items()
    }


# Prices as written: good ones (non-negative decimals, scientific notation, padded) and bad ones.
good_price = st.one_of(
    st.floats(min_value=0, max_value=1e9, allow_nan=False).map(repr),
    st.integers(min_value=0, max_value=10**6).map(str),
    st.just(""),
)
BAD_NUMBERS = ["abc", "1,5", "--1", "1e400", "nan", "inf", "1.2.3", "12€", "½", "0x1F"]
BOOLS = {"true": True, "FALSE": False, "yes": True, "n": False, "1": True, "0": False, "": None}


@st.composite
def product_rows(draw) -> Row:
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "bad_price",
                "negative",
                "bad_bool",
                "no_name",
                "extra",
                "short",
            ]
        )
    )
    key = draw(keys)
    name = draw(st.one_of(odd_text, multi_line_text))
    price = draw(good_price)
    stock = draw(st.sampled_from(sorted(BOOLS)))
    if kind == "good":
        return Row((key, name, price, stock), None)
    if kind == "bad_price":
        return Row((key, name, draw(st.sampled_from(BAD_NUMBERS)), stock), "type")
    if kind == "negative":
        neg = draw(st.floats(min_value=-1e6, max_value=-1e-6, allow_nan=False))
        return Row((key, name, repr(neg), stock), "range")
    if kind == "bad_bool":
        return Row((key, name, price, draw(st.sampled_from(["maybe", "ja", "2", "tru"]))), "type")
    if kind == "no_name":
        return Row((key, "", price, stock), "required")
    if kind == "extra":
        return Row((key, name, price, stock, draw(odd_text)), "parse")
    return Row((key, name), "parse")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_product_files(data) -> None:
    rows = data.draw(st.lists(product_rows(), min_size=1, max_size=25), label="rows")
    layout = data.draw(layouts(len(rows)), label="layout")
    header = ["product_id", "name", "price", "in_stock"]
    text, lines, texts = write_csv(header, rows, layout)
    report, stored, rejected = run_ingest("product", header, text)
    expect, kept = expected_outcome(rows, lines, key_of=lambda r: r.fields[0])
    check_accounting(report, rows, rejected, expect)
    check_raw(rows, header, lines, texts, rejected)
    assert stored == {
        key: (row.fields[1], float(row.fields[2]) if row.fields[2] else None, BOOLS[row.fields[3]])
        for key, row in kept.items()
    }
