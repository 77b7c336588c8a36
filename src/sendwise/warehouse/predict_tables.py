"""The warehouse reads and writes of the models (predict/ holds no SQL and no connection).

- ``scoring_features``: the features the profile build materialised (``customer_features``);
- ``materialised_at``: the same, only when they describe a given moment (training reuses them);
- ``customer_segments``: the RFM segment of every profiled customer, for send-hour fallbacks;
- ``write_predictions``: the ``prediction`` table, replaced whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from sendwise.errors import NotFoundError
from sendwise.warehouse import spark

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

FEATURES_TABLE = "customer_features"
PREDICTION_TABLE = "prediction"


def scoring_features(wh: Warehouse) -> pd.DataFrame:
    if FEATURES_TABLE not in wh.con.list_tables():
        raise NotFoundError("features table", FEATURES_TABLE, "run `sendwise segment` first")
    return wh.table(FEATURES_TABLE).to_pandas()


def materialised_at(wh: Warehouse, at: datetime) -> dict[datetime, pd.DataFrame]:
    """The profile build's features when they describe ``at`` (else nothing)."""
    if FEATURES_TABLE not in wh.con.list_tables():
        return {}
    feats = wh.table(FEATURES_TABLE)
    stored = feats.as_of.max().execute()
    if stored is None or pd.Timestamp(stored).to_pydatetime() != at:
        return {}
    return {at: feats.to_pandas()}


def customer_segments(wh: Warehouse) -> pd.Series | None:
    if "profile" not in wh.con.list_tables():
        return None
    t = wh.table("profile")
    if "rfm_segment" not in t.columns:
        return None
    df = t.select("customer_id", "rfm_segment").to_pandas()
    return df.set_index("customer_id")["rfm_segment"]


def write_predictions(wh: Warehouse, table: pa.Table) -> None:
    if wh.is_spark:
        spark.replace(wh.con, PREDICTION_TABLE, table)
        return
    wh.con.create_table(PREDICTION_TABLE, table, overwrite=True)
