"""The UCI Online Retail export: one invoice line per row, from which the preset derives
customers, products, orders and order lines.

Rules (see docs/ingest.md):
- ``CustomerID`` is written as a float (``17850.0``); it is stored as ``17850``. A line without
  a customer is a guest order line: kept, its order has no customer.
- An invoice starting with ``C`` is a refund: an order of status ``refund`` with negative
  quantities, linked to its customer. One starting with ``A`` ("Adjust bad debt") is an
  ``adjustment``; so is an invoice of only negative quantities and no customer (stock
  written off). Every other invoice is ``completed``, and a negative quantity on it is rejected.
- A line that repeats an earlier line exactly (all eight fields) is rejected as
  ``duplicate_line`` naming the line it repeats: the export holds scanning duplicates.
- Prices are in GBP; times are UK local time (Europe/London), stored in UTC.
- Product name: the description used most often for the stock code; price: the latest positive
  price on a sale. Customer country: the latest one given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sendwise.errors import MappingError
from sendwise.warehouse.presets import Preset, earliest_of
from sendwise.warehouse.schema import CUSTOMER, MAX_PRICE, ORDER, ORDER_LINE, PRODUCT
from sendwise.warehouse.validation import Check, TablePlan, plausible_time

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings
    from sendwise.warehouse.files import Staged

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
TIMEZONE = "Europe/London"


def plans(engine: duckdb.DuckDBPyConnection, staged: Staged, settings: Settings) -> list[TablePlan]:
    missing = [c for c in COLUMNS if c not in staged.columns]
    if missing:
        raise MappingError(
            f"{staged.path}: not an Online Retail export, it lacks {', '.join(missing)};"
            f" its columns are: {', '.join(staged.columns)}"
        )
    fields = ", ".join(f'"{c}"' for c in COLUMNS)
    # ts is the invoice time when it is a real and plausible one, else null: one line with a
    # bad date never becomes a customer's, product's or order's date (that line is rejected).
    now = datetime.now(UTC).replace(tzinfo=None)
    parsed = 'TRY_CAST("InvoiceDate" AS TIMESTAMP)'
    plausible = plausible_time(parsed, now, earliest_of(settings))
    # A price is used for the catalogue only when it is a plausible one.
    good_price = f"TRY_CAST(price AS DOUBLE) > 0 AND TRY_CAST(price AS DOUBLE) <= {MAX_PRICE!r}"
    base = (
        'SELECT _k, trim("InvoiceNo") AS inv, trim("StockCode") AS code,'
        ' nullif(trim("Description"), \'\') AS descr, "Quantity" AS qty,'
        f" CASE WHEN {plausible} THEN {parsed} END AS ts,"
        " nullif(trim(\"InvoiceDate\"), '') AS ts_text,"
        f" {parsed} IS NOT NULL AS ts_valid,"
        ' "UnitPrice" AS price,'
        " regexp_replace(nullif(trim(\"CustomerID\"), ''), '\\.0+$', '') AS cust,"
        " nullif(trim(\"Country\"), '') AS country,"
        f" min(_k) OVER (PARTITION BY {fields}) AS first_k"
        f" FROM {staged.table}"
    )
    status = (
        "CASE WHEN starts_with(inv, 'C') THEN 'refund' WHEN starts_with(inv, 'A') THEN 'adjustment'"
        " WHEN bool_and(TRY_CAST(qty AS BIGINT) < 0) OVER (PARTITION BY inv)"
        " AND bool_and(cust IS NULL) OVER (PARTITION BY inv) THEN 'adjustment'"
        " ELSE 'completed' END"
    )
    customers = (
        "SELECT cust AS customer_id, min(ts) AS created_at,"
        " first(country ORDER BY ts DESC, _k DESC) FILTER (WHERE country IS NOT NULL) AS country,"
        " min(_k) AS _k"
        f" FROM ({base}) WHERE cust IS NOT NULL GROUP BY cust"
    )
    # Ties are broken by position in the file, so that a reload derives the very same rows.
    named = (
        "SELECT *, count(*) OVER (PARTITION BY code, descr) AS uses,"
        f" min(_k) OVER (PARTITION BY code, descr) AS first_use FROM ({base})"
    )
    products = (
        "SELECT code AS product_id,"
        " coalesce(first(descr ORDER BY uses DESC, first_use) FILTER (WHERE descr IS NOT NULL),"
        " code) AS name, min(ts) AS created_at,"
        " first(TRY_CAST(price AS DOUBLE) ORDER BY ts DESC, _k DESC) FILTER"
        f" (WHERE {good_price} AND TRY_CAST(qty AS BIGINT) > 0) AS price,"
        " min(_k) AS _k"
        f" FROM ({named}) WHERE code IS NOT NULL GROUP BY code"
    )
    orders = (
        "SELECT inv AS order_id, first(cust ORDER BY _k) FILTER (WHERE cust IS NOT NULL)"
        # No line with a usable date: the order carries the given text, so that validation
        # rejects it naming the value (not as 'required but empty').
        " AS customer_id, coalesce(CAST(min(ts) AS VARCHAR), min(ts_text)) AS ordered_at,"
        " any_value(status) AS status,"
        " 'GBP' AS currency, min(_k) AS _k"
        f" FROM (SELECT *, {status} AS status FROM ({base})) GROUP BY inv"
    )
    lines = (
        "SELECT inv AS order_id, row_number() OVER (PARTITION BY inv, first_k = _k ORDER BY _k)"
        " AS line_number, code AS product_id, qty AS quantity, price AS unit_price, _k,"
        f" first_k AS _first_k, {status} AS _status, ts_text AS _ts_text, ts_valid AS _ts_valid,"
        " ts IS NOT NULL AS _ts_plausible"
        f" FROM ({base})"
    )
    zone = TIMEZONE
    return [
        TablePlan(CUSTOMER, customers, timezone=zone),
        TablePlan(PRODUCT, products, timezone=zone),
        TablePlan(ORDER, orders, timezone=zone),
        TablePlan(
            ORDER_LINE,
            lines,
            primary=True,
            timezone=zone,
            checks=[
                Check("required", "t._ts_text IS NULL", "'InvoiceDate is required but empty'"),
                Check(
                    "type",
                    "t._ts_text IS NOT NULL AND NOT t._ts_valid",
                    "format('InvoiceDate: {} is not a valid date/time', left(t._ts_text, 80))",
                ),
                Check(
                    "range",
                    "t._ts_valid AND NOT t._ts_plausible",
                    "format('InvoiceDate: {} is not a plausible date (before {} or in the"
                    f" future)', left(t._ts_text, 80), '{earliest_of(settings):%Y-%m-%d}')",
                ),
                Check(
                    "duplicate_line",
                    "t._first_k <> t._k",
                    f"'repeats line ' || {staged.line_of('t._first_k')} || ' exactly'",
                ),
                Check(
                    "range",
                    "t._status = 'completed' AND t.quantity < 0",
                    "format('quantity: {} is negative on a sale (invoice {})', t.quantity,"
                    " t.order_id)",
                ),
                Check(
                    "range",
                    "t._status = 'refund' AND t.quantity > 0",
                    "format('quantity: {} is positive on a refund (invoice {})', t.quantity,"
                    " t.order_id)",
                ),
            ],
        ),
    ]


PRESET = Preset("online-retail", "csv", plans, "UCI Online Retail invoice lines (CSV or CSV.gz)")
