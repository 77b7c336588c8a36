"""Issue 13, defect 8: hostile or careless input is rejected row by row with a reason that names
what and where; it never crashes a load, never overwrites good data with implausible values and
never reaches a profile build (each example of the issue, then the class, in
test_ingest_fuzz.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sendwise.errors import FormatError
from sendwise.features import customer_features
from sendwise.ingest.load import IngestReport, ingest
from sendwise.profiles.build import build_profiles


def load(project, name: str, text: str | bytes, **kw) -> IngestReport:
    settings, wh = project
    path = settings.path(name)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    report = ingest(wh, settings, path, **kw)
    assert report.loaded + report.rejected == report.read
    return report


def rejects(project, sql, target: str | None = None) -> list[tuple]:
    _, wh = project
    where, params = ("WHERE target = ?", [target]) if target else ("", [])
    return sql(wh, f"SELECT line, rule, reason FROM reject {where} ORDER BY line, rule", params)


@pytest.fixture
def shop(project):
    """A project with customer c1, product p1 and a completed order o1 of c1."""
    load(project, "c.csv", "customer_id,email\nc1,c1@shop.com\n", table="customer")
    load(project, "p.csv", "product_id,name,price\np1,Pen,1.5\n", table="product")
    load(project, "o.csv", "order_id,customer_id,ordered_at\no1,c1,2024-03-01\n", table="order")
    return project


# -- JSON columns: text that is not JSON is a reject, not a crash of the whole load ---------


def test_text_that_is_not_json_in_customer_attributes(project, sql) -> None:
    text = 'customer_id,attributes\nc1,"{""vip"": true}"\nc2,not json\nc3,[1]\nc4,{x\n'
    r = load(project, "c.csv", text, table="customer")
    assert (r.read, r.loaded, r.rejected) == (4, 1, 3)
    assert rejects(project, sql) == [
        (3, "json", "attributes: not json is not a JSON object"),
        (4, "json", "attributes: [1] is not a JSON object"),
        (5, "json", "attributes: {x is not a JSON object"),
    ]


def test_text_that_is_not_json_in_event_properties(project, sql) -> None:
    lines = [
        {"message_id": "m1", "type": "track", "occurred_at": "2024-01-01", "properties": "{x"},
        {"message_id": "m2", "type": "track", "occurred_at": "2024-01-01", "properties": "{}"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    r = load(project, "e.jsonl", text, table="event")
    assert (r.read, r.loaded, r.rejected) == (2, 1, 1)
    assert rejects(project, sql) == [(1, "json", "properties: {x is not a JSON object")]


# -- numbers: finite but huge, or not finite --------------------------------------------------


def test_huge_and_non_finite_numbers_are_rejected_with_a_reason(shop, sql) -> None:
    r = load(
        shop, "p.csv", "product_id,name,price\np3,A,1e308\np4,B,inf\np5,C,nan\n", table="product"
    )
    assert (r.loaded, r.rejected) == (0, 3)
    got = rejects(shop, sql, "product")
    assert got[0] == (2, "range", "price: 1e+308 is beyond 1,000,000,000")
    assert [rule for _, rule, _ in got[1:]] == ["type", "type"]
    lines = (
        "order_id,line_number,product_id,quantity,unit_price\n"
        "o1,1,p1,2,1e308\n"
        "o1,2,p1,9000000000,1\n"
        "o1,3,p1,-9000000000,1\n"
        "o1,4,p1,1,2.5\n"
    )
    r = load(shop, "l.csv", lines, table="order_line")
    assert (r.loaded, r.rejected) == (1, 3)
    assert [rule for _, rule, _ in rejects(shop, sql, "order_line")] == ["range"] * 3
    settings, wh = shop
    settings.segments.clusters = False
    build_profiles(wh, settings, "2024-06-01")  # no infinity reaches the build
    monetary = sql(wh, "SELECT monetary FROM profile WHERE customer_id = 'c1'")
    assert monetary == [(2.5,)]


# -- dates: impossible, implausible --------------------------------------------------------


def test_implausible_dates_never_overwrite_created_at(project, sql) -> None:
    load(project, "c1.csv", "customer_id,created_at\nc1,2020-05-01\n", table="customer")
    load(project, "p1.csv", "product_id,name,created_at\np1,Pen,2020-05-01\n", table="product")
    text = "customer_id,created_at\nc1,0001-01-01\nc1b,1900-01-01\nc1c,9999-12-31\n"
    r = load(project, "c2.csv", text, table="customer")
    assert (r.loaded, r.rejected) == (0, 3)
    r = load(project, "p2.csv", "product_id,name,created_at\np1,Pen,1900-01-01\n", table="product")
    assert (r.loaded, r.rejected) == (0, 1)
    _, wh = project
    assert [str(v) for (v,) in sql(wh, "SELECT created_at FROM customer")] == [
        "2020-05-01 00:00:00"
    ]
    assert [str(v) for (v,) in sql(wh, "SELECT created_at FROM product")] == ["2020-05-01 00:00:00"]
    reasons = [reason for _, _, reason in rejects(project, sql, "customer")]
    assert reasons == [
        "created_at: 0001-01-01 00:00:00 is before 1970-01-01, not a plausible date",
        "created_at: 1900-01-01 00:00:00 is before 1970-01-01, not a plausible date",
        "created_at: 9999-12-31 00:00:00 is in the future",
    ]


def test_the_earliest_plausible_date_is_a_setting(make_project, sql) -> None:
    project = make_project(ingest={"earliest_date": "1900-01-01"})
    r = load(project, "c.csv", "customer_id,created_at\nc1,1950-01-01\n", table="customer")
    assert (r.loaded, r.rejected) == (1, 0)


RETAIL_HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
)


def test_online_retail_impossible_date_is_named_not_required(project, sql) -> None:
    text = RETAIL_HEADER + (
        "536365,A1,Pen,2,2011-02-10 08:26,1.5,17850.0,United Kingdom\n"
        "536366,A1,Pen,2,2011-02-30 08:26,1.5,17850.0,United Kingdom\n"
        "536367,A1,Pen,2,1900-02-01 08:26,1.5,17850.0,United Kingdom\n"
    )
    r = load(project, "retail.csv", text, preset="online-retail")
    assert (r.read, r.loaded, r.rejected) == (3, 1, 2)
    lines = rejects(project, sql, "order_line")
    assert lines[0] == (3, "type", "InvoiceDate: 2011-02-30 08:26 is not a valid date/time")
    assert lines[1][:2] == (4, "range") and "not a plausible date" in lines[1][2]
    orders = rejects(project, sql, "order")
    assert [(line, rule) for line, rule, _ in orders] == [(3, "type"), (4, "range")]
    assert "not a valid date" in orders[0][2]
    # The customer's and the product's dates come from the good line only.
    _, wh = project
    assert sql(wh, "SELECT customer_id, CAST(created_at AS VARCHAR) FROM customer") == [
        ("17850", "2011-02-10 08:26:00")
    ]


def test_an_order_whose_every_line_was_rejected_is_rejected_too(project, sql) -> None:
    text = RETAIL_HEADER + (
        "536365,A1,Pen,2,2011-02-10 08:26,1.5,17850.0,United Kingdom\n"
        "536366,A1,Pen,2,2011-02-11 08:26,1e308,17850.0,United Kingdom\n"
        "536366,A2,Pad,abc,2011-02-11 08:26,2,17850.0,United Kingdom\n"
    )
    r = load(project, "retail.csv", text, preset="online-retail")
    assert (r.read, r.loaded, r.rejected) == (3, 1, 2)
    _, wh = project
    assert sql(wh, 'SELECT order_id FROM "order"') == [("536365",)]
    assert rejects(project, sql, "order") == [
        (3, "no_lines", "order 536366: every line of it was rejected (see the order_line rejects)")
    ]
    assert r.tables["order"].inserted == 1 and r.tables["order"].rejected == 1
    feats = customer_features(wh, "2011-03-01").to_pyarrow().to_pylist()
    assert [(f["customer_id"], f["frequency"]) for f in feats] == [("17850", 1)]


def test_cdnow_order_of_a_rejected_line_is_not_a_purchase(project, sql) -> None:
    text = "00001 19970101 1 29.33\n00001 19970230 2 20.00\n00001 19970301 0 10.00\n"
    r = load(project, "cdnow.txt", text, preset="cdnow")
    assert (r.read, r.loaded, r.rejected) == (3, 1, 2)
    lines = rejects(project, sql, "order_line")
    assert lines[0] == (2, "type", "date: 19970230 is not a valid date (YYYYMMDD)")
    assert lines[1][0] == 3  # 0 CDs: no unit price
    _, wh = project
    assert sql(wh, 'SELECT order_id FROM "order"') == [("1-19970101-1",)]
    assert [rule for _, rule, _ in rejects(project, sql, "order")] == ["type", "no_lines"]


def test_an_order_given_without_lines_is_kept(shop, sql) -> None:
    # An order file alone: its lines may come in another file, so nothing is dropped.
    r = load(shop, "o.csv", "order_id,customer_id,ordered_at\no2,c1,2024-03-02\n", table="order")
    assert (r.loaded, r.rejected) == (1, 0)


# -- Segment: a JSON object where an id belongs ----------------------------------------------


def test_segment_object_or_array_ids_are_rejected_not_customers(project, sql) -> None:
    day = "2024-01-01"
    calls = [
        {"type": "identify", "userId": {"a": 1}, "messageId": "m1", "timestamp": day},
        {"type": "track", "userId": [1], "event": "x", "messageId": "m2", "timestamp": day},
        {"type": "track", "anonymousId": {}, "event": "x", "messageId": "m3", "timestamp": day},
        {"type": "track", "userId": "u1", "event": "x", "messageId": {"m": 4}, "timestamp": day},
        {"type": "track", "userId": "u2", "event": "x", "messageId": "m5", "timestamp": day},
        # properties that are not an object, products that are not a list: no crash
        {"type": "track", "userId": "u3", "event": "Order Completed", "messageId": "m6",
         "timestamp": day, "properties": "cheap"},
        {"type": "track", "userId": "u3", "event": "Order Completed", "messageId": "m7",
         "timestamp": day, "properties": {"order_id": "o7", "products": "all"}},
        {"type": "identify", "userId": "u4", "messageId": "m8", "timestamp": day,
         "traits": "vip"},
    ]  # fmt: skip
    text = "".join(json.dumps(c) + "\n" for c in calls)
    r = load(project, "s.jsonl", text, preset="segment")
    assert (r.read, r.loaded, r.rejected) == (8, 3, 5)
    got = rejects(project, sql, "event")
    assert [(line, rule) for line, rule, _ in got] == [
        (1, "type"),
        (2, "type"),
        (3, "type"),
        (4, "type"),
        (6, "json"),
    ]
    assert got[0][2] == "userId: a JSON object or array where a string or a number belongs"
    assert got[2][2].startswith("anonymousId: ")
    _, wh = project
    ids = [c for (c,) in sql(wh, "SELECT customer_id FROM customer ORDER BY 1")]
    assert ids == ["u2", "u3", "u4"]


# -- CSV files a careless export makes ---------------------------------------------------------


def test_an_unclosed_quote_rejects_its_line_not_the_rest_of_the_file(project, sql) -> None:
    text = 'customer_id,first_name\nc1,ann\nc2,"bob\nc3,carl\n\nc4,"d\nan"\nc5,"eve\nc6,x\n'
    r = load(project, "q.csv", text, table="customer")
    assert (r.read, r.loaded, r.rejected) == (6, 4, 2)
    got = rejects(project, sql)
    assert [(line, rule) for line, rule, _ in got] == [(3, "parse"), (8, "parse")]
    assert all("quoted value opens on this line and is never closed" in g[2] for g in got)
    _, wh = project
    assert sql(wh, "SELECT raw FROM reject ORDER BY line") == [('c2,"bob',), ('c5,"eve',)]
    stored = sql(wh, "SELECT customer_id, first_name FROM customer ORDER BY 1")
    assert stored == [("c1", "ann"), ("c3", "carl"), ("c4", "d\nan"), ("c6", "x")]
    # the rows after the bad lines keep their own line numbers
    load(project, "q2.csv", 'customer_id,email\nc7,"x\nc8,bad\n', table="customer")
    q2 = sql(wh, "SELECT line, rule FROM reject WHERE source LIKE '%q2.csv' ORDER BY line")
    assert q2 == [(2, "parse"), (3, "email")]


def test_mixed_line_endings_load(project, sql) -> None:
    text = b"customer_id,email\r\nc1,a@x.com\nc2,bad\r\nc3,c@x.com\n"
    r = load(project, "mixed.csv", text, table="customer")
    assert (r.read, r.loaded, r.rejected) == (3, 2, 1)
    assert rejects(project, sql) == [(3, "email", "email: bad is not a valid email address")]


def test_a_ten_megabyte_field_rejects_its_row(project, sql) -> None:
    text = "customer_id,first_name\nc1," + "x" * (10 << 20) + "\nc2,bob\n"
    r = load(project, "big.csv", text, table="customer")
    assert (r.read, r.loaded, r.rejected) == (2, 1, 1)
    ((line, rule, reason),) = rejects(project, sql)
    assert (line, rule) == (2, "parse")
    assert reason.startswith("line too long: 10485763 bytes")
    _, wh = project
    assert len(sql(wh, "SELECT raw FROM reject")[0][0]) <= 10_000


def test_a_semicolon_file_and_a_bom(project, sql) -> None:
    text = "\ufeffcustomer_id;email\nc1;a@x.com\nc2;b@x.com\n"
    r = load(project, "semi.csv", text, table="customer")
    assert (r.read, r.loaded, r.rejected) == (2, 2, 0)


def test_an_empty_csv_is_one_format_error(project) -> None:
    settings, wh = project
    path = Path(settings.path("empty.csv"))
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="first line is empty"):
        ingest(wh, settings, path, table="customer")
