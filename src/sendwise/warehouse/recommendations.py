"""Warehouse writes of the recommendation and catalogue steps: the result tables they replace
and the derived product categories. The only place where those steps touch the connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sendwise.warehouse import spark
from sendwise.warehouse.schema import PRODUCT_CATEGORY

if TYPE_CHECKING:
    import ibis

    from sendwise.warehouse.connection import Warehouse


def has_table(wh: Warehouse, name: str) -> bool:
    return name in wh.con.list_tables()


def replace_table(wh: Warehouse, name: str, data: pa.Table | ibis.Table | Any) -> None:
    """(Re)create the result table ``name`` from ``data`` (Arrow, pandas or an Ibis
    expression)."""
    if wh.is_spark:
        spark.replace(wh.con, name, data)
        return
    wh.con.create_table(name, data, overwrite=True)


def replace_product_categories(wh: Warehouse, rows: pa.Table) -> None:
    """Replace every derived category by ``rows`` (the columns of ``product_category``)."""
    rows = rows.select(list(PRODUCT_CATEGORY.column_names))
    wh.con.truncate_table(PRODUCT_CATEGORY.name)
    if rows.num_rows:
        wh.con.insert(PRODUCT_CATEGORY.name, rows)
