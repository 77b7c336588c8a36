"""CDNOW purchases (Fader & Hardie): whitespace-separated, no header, one purchase a line.

Two layouts, told apart line by line by their number of fields:
- master: ``customer_id date(YYYYMMDD) number_of_cds dollar_value``
- sample: ``master_id sample_id date cds dollar`` (the customer is the master id)

Each line becomes an order (id ``<customer>-<date>-<n>``) with one line of product ``cdnow-cd``
(quantity = CDs, unit price = dollars / CDs). Customer ids are stored without leading zeros.
Dates are calendar days, stored as midnight UTC; amounts are USD.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sendwise.warehouse.presets import Preset, earliest_of
from sendwise.warehouse.schema import CUSTOMER, ORDER, ORDER_LINE, PRODUCT
from sendwise.warehouse.validation import Check, TablePlan, plausible_time

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings
    from sendwise.warehouse.files import Staged

PRODUCT_ID = "cdnow-cd"


def plans(engine: duckdb.DuckDBPyConnection, staged: Staged, settings: Settings) -> list[TablePlan]:
    fields = (
        "SELECT _k, s, len(s) AS n,"
        " coalesce(CAST(TRY_CAST(s[1] AS BIGINT) AS VARCHAR), s[1]) AS cust,"
        " s[len(s) - 2] AS day, s[len(s) - 1] AS cds, s[len(s)] AS dollars"
        f" FROM (SELECT _k, regexp_split_to_array(trim(_text), '\\s+') AS s FROM {staged.table})"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    earliest = earliest_of(settings)
    plausible = plausible_time("ts", now, earliest)
    base = (
        f"SELECT *, try_strptime(day, '%Y%m%d') AS ts, cust || '-' || day || '-'"
        " || row_number() OVER (PARTITION BY cust, day ORDER BY _k) AS order_id"
        f" FROM ({fields})"
    )
    good = "n IN (4, 5)"
    customers = (
        f"SELECT cust AS customer_id, min(ts) FILTER (WHERE {plausible}) AS created_at,"
        f" min(_k) AS _k FROM ({base})"
        f" WHERE {good} GROUP BY cust"
    )
    product = (
        f"SELECT '{PRODUCT_ID}' AS product_id, 'CD purchase' AS name, 'Music' AS category,"
        f" min(_k) AS _k FROM ({base}) HAVING count(*) > 0"
    )
    orders = (
        "SELECT order_id, cust AS customer_id, day AS ordered_at, 'completed' AS status,"
        f" 'USD' AS currency, _k FROM ({base}) WHERE {good}"
    )
    lines = (
        f"SELECT order_id, 1 AS line_number, '{PRODUCT_ID}' AS product_id, cds AS quantity,"
        " CAST(round(TRY_CAST(dollars AS DOUBLE) / nullif(TRY_CAST(cds AS DOUBLE), 0), 4)"
        f" AS VARCHAR) AS unit_price, _k, n AS _n, day AS _day, ts IS NOT NULL AS _ts_valid,"
        f" coalesce({plausible}, false) AS _ts_plausible FROM ({base})"
    )
    return [
        TablePlan(CUSTOMER, customers),
        TablePlan(PRODUCT, product, only_new=True),
        TablePlan(ORDER, orders, timestamp_format="%Y%m%d"),
        TablePlan(
            ORDER_LINE,
            lines,
            primary=True,
            checks=[
                Check(
                    "format",
                    "t._n NOT IN (4, 5)",
                    "format('expected 4 fields (master layout) or 5 (sample layout), found {}',"
                    " t._n)",
                ),
                Check(
                    "type",
                    "t._n IN (4, 5) AND NOT t._ts_valid",
                    "format('date: {} is not a valid date (YYYYMMDD)', left(t._day, 80))",
                ),
                Check(
                    "range",
                    "t._ts_valid AND NOT t._ts_plausible",
                    "format('date: {} is not a plausible date (before {} or in the future)',"
                    f" t._day, '{earliest:%Y-%m-%d}')",
                ),
            ],
        ),
    ]


PRESET = Preset("cdnow", "lines", plans, "CDNOW master or sample purchases (whitespace text)")
