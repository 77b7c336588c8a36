"""Loading the real public datasets in ../shared/data: every figure is checked against the file
itself, computed independently of sendwise (plain DuckDB or plain Python on the raw file)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sendwise.config import Settings, init_project, load_settings
from sendwise.ingest.load import IngestReport, ingest
from sendwise.warehouse.connection import Warehouse

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ONLINE_RETAIL = DATA / "online_retail" / "online_retail_2010-12-01_2011-09-09.csv.gz"
CDNOW_MASTER = DATA / "cdnow" / "CDNOW_master.txt"
CDNOW_SAMPLE = DATA / "cdnow" / "CDNOW_sample.txt"

pytestmark = pytest.mark.slow


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"real dataset {path} is absent (expected ../shared/data next to the repo)")


def _rows(wh: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    return wh.engine.execute(sql, params or []).fetchall()


def _one(wh: Warehouse, sql: str, params: list | None = None):
    return _rows(wh, sql, params)[0][0]


def _open(folder: Path) -> tuple[Settings, Warehouse]:
    init_project(folder)
    settings = load_settings(folder)
    return settings, Warehouse.from_settings(settings)


# -- Online Retail -----------------------------------------------------------------------------
# One load for the whole module (it takes a few seconds); the tests below only read, except the
# reload test, which checks that it changes nothing.


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> Iterator[tuple[Settings, Warehouse, IngestReport]]:
    _need(ONLINE_RETAIL)
    settings, wh = _open(tmp_path_factory.mktemp("retail"))
    report = ingest(wh, settings, ONLINE_RETAIL, preset="online-retail")
    yield settings, wh, report
    wh.close()


@pytest.fixture(scope="module")
def raw_retail() -> duckdb.DuckDBPyConnection:
    """The raw file, read by plain DuckDB as text, independently of sendwise."""
    _need(ONLINE_RETAIL)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE raw AS SELECT * FROM read_csv(?, header = true, all_varchar = true)",
        [str(ONLINE_RETAIL)],
    )
    yield con
    con.close()


@pytest.fixture(scope="module")
def retail_lines() -> dict[int, dict[str, str | None]]:
    """Every data row of the file by its line number (header = line 1), via Python's csv."""
    _need(ONLINE_RETAIL)
    out: dict[int, dict[str, str | None]] = {}
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for row in reader:
            out[reader.line_num] = {
                h: (v if v != "" else None) for h, v in zip(header, row, strict=True)
            }
    return out


def test_online_retail_row_accounting(retail) -> None:
    _, wh, report = retail
    assert report.read == 334054
    assert report.loaded + report.rejected == report.read
    assert report.already_loaded is False
    assert _one(wh, "SELECT count(*) FROM order_line") == report.loaded
    # Rows of the file: every reject but the orders left without lines (issue 13: the two
    # 'Adjust bad debt' invoices whose only line has a negative price), which are orders.
    assert _one(wh, "SELECT count(*) FROM reject WHERE rule <> 'no_lines'") == report.rejected
    assert report.rejects_by_rule["no_lines"] == 2
    log = _rows(wh, "SELECT read, loaded, rejected FROM ingest_log")
    assert log == [(report.read, report.loaded, report.rejected)]
    assert sum(report.rejects_by_rule.values()) == report.rejected + 2


def test_online_retail_dimensions(retail) -> None:
    _, wh, report = retail
    assert _one(wh, "SELECT count(*) FROM customer") == 3412
    assert report.tables["customer"].inserted == 3412
    # CustomerID is written as a float in the file (17850.0); it is stored as text without '.0'.
    assert _one(wh, "SELECT count(*) FROM customer WHERE customer_id = '17850'") == 1
    assert _one(wh, "SELECT count(*) FROM customer WHERE customer_id LIKE '%.%'") == 0
    assert _one(wh, "SELECT count(*) FROM \"order\" WHERE customer_id LIKE '%.%'") == 0
    assert _one(wh, "SELECT count(*) FROM product") == 3823
    assert _one(wh, 'SELECT count(*) FROM "order"') == 17086 - 2  # two orders without lines


def test_online_retail_customers_match_the_file(retail, raw_retail) -> None:
    _, wh, _ = retail
    expected = {
        r[0]
        for r in raw_retail.execute(
            "SELECT DISTINCT replace(CustomerID, '.0', '') FROM raw WHERE CustomerID IS NOT NULL"
        ).fetchall()
    }
    stored = {r[0] for r in _rows(wh, "SELECT customer_id FROM customer")}
    assert stored == expected


def test_online_retail_refunds(retail, raw_retail) -> None:
    _, wh, _ = retail
    c_invoices = raw_retail.execute(
        "SELECT count(DISTINCT InvoiceNo) FROM raw WHERE starts_with(InvoiceNo, 'C')"
    ).fetchone()[0]
    assert c_invoices == 2624
    assert _one(wh, "SELECT count(*) FROM \"order\" WHERE status = 'refund'") == c_invoices
    assert _one(wh, "SELECT count(*) FROM \"order\" WHERE starts_with(order_id, 'C')") == c_invoices
    # Refunds stay linked to their customer whenever the file names one (128 'C' invoices in
    # the file have no CustomerID on any of their lines: those are guest refunds).
    with_customer = raw_retail.execute(
        "SELECT count(DISTINCT InvoiceNo) FROM raw"
        " WHERE starts_with(InvoiceNo, 'C') AND CustomerID IS NOT NULL"
    ).fetchone()[0]
    assert with_customer == 2496
    assert (
        _one(
            wh,
            'SELECT count(*) FROM "order" o JOIN customer c USING (customer_id)'
            " WHERE o.status = 'refund'",
        )
        == with_customer
    )
    # A sample refund: the customer of the raw lines is the customer of the order.
    inv, cust = raw_retail.execute(
        "SELECT InvoiceNo, any_value(CustomerID) FROM raw WHERE starts_with(InvoiceNo, 'C')"
        " AND CustomerID IS NOT NULL GROUP BY InvoiceNo ORDER BY InvoiceNo LIMIT 1"
    ).fetchone()
    assert _one(
        wh, 'SELECT customer_id FROM "order" WHERE order_id = ?', [inv]
    ) == cust.removesuffix(".0")
    # Every refund line has a negative quantity; no sale line has one.
    signs = dict(
        _rows(
            wh,
            "SELECT o.status = 'refund', bool_and(l.quantity < 0) FROM order_line l"
            " JOIN \"order\" o USING (order_id) WHERE o.status IN ('refund', 'completed')"
            " GROUP BY 1",
        )
    )
    assert signs == {True: True, False: False}
    assert (
        _one(
            wh,
            'SELECT count(*) FROM order_line l JOIN "order" o USING (order_id)'
            " WHERE o.status = 'completed' AND l.quantity < 0",
        )
        == 0
    )


def test_online_retail_guest_lines_are_accounted_for(retail, raw_retail) -> None:
    _, wh, _ = retail
    guest_in_file = raw_retail.execute(
        "SELECT count(*) FROM raw WHERE CustomerID IS NULL"
    ).fetchone()[0]
    assert guest_in_file == 91927
    guest_loaded = _one(
        wh,
        'SELECT count(*) FROM order_line l JOIN "order" o USING (order_id)'
        " WHERE o.customer_id IS NULL",
    )
    guest_rejected = _one(
        wh,
        "SELECT count(*) FROM reject WHERE json_extract_string(raw, '$.CustomerID') IS NULL"
        " AND rule <> 'no_lines'",
    )
    assert guest_loaded > 0
    assert guest_rejected > 0
    assert guest_loaded + guest_rejected == guest_in_file


def test_online_retail_duplicate_lines(retail, retail_lines) -> None:
    _, wh, report = retail
    assert report.rejects_by_rule["duplicate_line"] == 2572
    dups = _rows(
        wh, "SELECT line, raw, reason FROM reject WHERE rule = 'duplicate_line' ORDER BY line"
    )
    assert len(dups) == 2572
    for line, raw, reason in dups[:5] + dups[-5:]:
        assert reason.startswith("repeats line ") and reason.endswith(" exactly"), reason
        earlier = int(reason.split()[2])
        assert earlier < line
        # The rejected raw is the file's line, and the line it names holds the very same fields.
        assert json.loads(raw) == retail_lines[line]
        assert retail_lines[earlier] == retail_lines[line]
        # The earlier line itself was loaded, not rejected.
        assert _one(wh, "SELECT count(*) FROM reject WHERE line = ?", [earlier]) == 0


def test_online_retail_every_reject_is_explained(retail, retail_lines) -> None:
    _, wh, _ = retail
    assert (
        _one(
            wh,
            "SELECT count(*) FROM reject WHERE reason IS NULL OR trim(reason) = ''"
            " OR line IS NULL OR line < 2 OR rule IS NULL",
        )
        == 0
    )
    # The line number of every reject points at that very row of the file.
    for line, raw in _rows(wh, "SELECT line, raw FROM reject"):
        assert json.loads(raw) == retail_lines[line], line
    other = _rows(
        wh, "SELECT rule, reason FROM reject WHERE rule NOT IN ('duplicate_line', 'no_lines')"
    )
    assert other and all(rule == "range" and "unit_price" in reason for rule, reason in other)
    empty = _rows(wh, "SELECT target, reason FROM reject WHERE rule = 'no_lines' ORDER BY 2")
    assert [t for t, _ in empty] == ["order", "order"]
    assert all("every line of it was rejected" in reason for _, reason in empty)


def test_online_retail_times_are_utc(retail, raw_retail) -> None:
    _, wh, _ = retail
    # 2011-06-01 is in British Summer Time (UTC+1): 10:15 in the file is 09:15 UTC.
    summer = raw_retail.execute(
        "SELECT InvoiceNo, min(InvoiceDate) FROM raw WHERE InvoiceDate LIKE '2011-06-01 10:%'"
        " GROUP BY InvoiceNo ORDER BY 2, 1 LIMIT 1"
    ).fetchone()
    assert summer is not None
    inv, local = summer
    stored = _one(
        wh,
        "SELECT strftime(ordered_at, '%Y-%m-%d %H:%M:%S') FROM \"order\" WHERE order_id = ?",
        [inv],
    )
    hour = int(local[11:13])
    assert stored == f"2011-06-01 {hour - 1:02d}:{local[14:]}"
    # In winter UK time is UTC: 2010-12-01 08:26 (invoice 536365) stays 08:26.
    assert str(_one(wh, "SELECT ordered_at FROM \"order\" WHERE order_id = '536365'")) == (
        "2010-12-01 08:26:00"
    )


def test_online_retail_reload_changes_nothing(retail) -> None:
    settings, wh, _ = retail
    tables = ["customer", "product", "order", "order_line", "reject"]
    before = {t: wh.count(t) for t in tables}
    again = ingest(wh, settings, ONLINE_RETAIL, preset="online-retail")
    assert again.already_loaded is True
    assert again.read == 334054
    assert {t: wh.count(t) for t in tables} == before
    assert wh.count("ingest_log") == 1

    forced = ingest(wh, settings, ONLINE_RETAIL, preset="online-retail", force=True)
    assert forced.already_loaded is False
    assert forced.read == 334054
    assert forced.loaded + forced.rejected == forced.read
    assert {t: wh.count(t) for t in tables} == before
    for name in ("customer", "product", "order", "order_line"):
        counts = forced.tables[name]
        assert counts.inserted == 0 and counts.updated == 0, (name, counts)
        assert counts.unchanged == before[name], name


# -- CDNOW ---------------------------------------------------------------------------------------


def _cdnow_truth(path: Path) -> tuple[int, set[str], int, float]:
    """(rows, customers, cds, dollars) straight from the text file, in plain Python."""
    rows, customers, cds, dollars = 0, set(), 0, 0.0
    with path.open(encoding="ascii") as fh:
        for text in fh:
            fields = text.split()
            if not fields:
                continue
            rows += 1
            customers.add(str(int(fields[0])))
            cds += int(fields[-2])
            dollars += float(fields[-1])
    return rows, customers, cds, dollars


def test_cdnow_master(tmp_path: Path) -> None:
    _need(CDNOW_MASTER)
    rows, customers, cds, dollars = _cdnow_truth(CDNOW_MASTER)
    assert rows == 69659
    assert len(customers) == 23570
    settings, wh = _open(tmp_path / "cdnow")
    try:
        report = ingest(wh, settings, CDNOW_MASTER, preset="cdnow")
        assert report.read == rows
        assert report.rejected == 0
        assert report.loaded == rows
        assert _one(wh, "SELECT count(*) FROM customer") == 23570
        assert {r[0] for r in _rows(wh, "SELECT customer_id FROM customer")} == customers
        assert _one(wh, 'SELECT count(*) FROM "order"') == rows
        assert _one(wh, "SELECT count(*) FROM order_line") == rows
        assert _one(wh, "SELECT count(*) FROM reject") == 0
        assert _one(wh, "SELECT sum(quantity) FROM order_line") == cds
        revenue = _one(wh, "SELECT sum(quantity * unit_price) FROM order_line")
        assert revenue == pytest.approx(dollars, rel=0.005)
        # Customer ids are stored without their leading zeros: ' 00001 19970101 ...'.
        assert _one(wh, "SELECT count(*) FROM customer WHERE customer_id = '1'") == 1
        assert _one(wh, "SELECT count(*) FROM customer WHERE customer_id LIKE '0%'") == 0
        first = _rows(
            wh, "SELECT customer_id, ordered_at, currency FROM \"order\" WHERE customer_id = '1'"
        )
        assert [(c, str(t), cur) for c, t, cur in first] == [("1", "1997-01-01 00:00:00", "USD")]
    finally:
        wh.close()


def test_cdnow_sample(tmp_path: Path) -> None:
    _need(CDNOW_SAMPLE)
    rows, customers, cds, dollars = _cdnow_truth(CDNOW_SAMPLE)
    settings, wh = _open(tmp_path / "cdnow")
    try:
        report = ingest(wh, settings, CDNOW_SAMPLE, preset="cdnow")
        assert report.read == rows == 6919
        assert report.rejected == 0
        assert _one(wh, "SELECT count(*) FROM customer") == len(customers) == 2357
        assert _one(wh, 'SELECT count(*) FROM "order"') == 6919
        assert _one(wh, "SELECT count(*) FROM order_line") == 6919
        assert _one(wh, "SELECT sum(quantity) FROM order_line") == cds
        revenue = _one(wh, "SELECT sum(quantity * unit_price) FROM order_line")
        assert revenue == pytest.approx(dollars, rel=0.005)
    finally:
        wh.close()
