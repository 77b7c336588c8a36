"""What customers bought in a window, as the truth a recommendation is judged against."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sendwise.features.common import lit_ts
from sendwise.recommend.data import Interactions

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse


def purchases_between(wh: Warehouse, start: datetime, end: datetime) -> pd.DataFrame:
    """(customer_id, product_id) bought in completed orders in ``[start, end)``."""
    order, line = wh.table("order"), wh.table("order_line")
    t = order.filter(
        order.status == "completed",
        order.customer_id.notnull(),
        order.ordered_at >= lit_ts(start),
        order.ordered_at < lit_ts(end),
    ).join(line, "order_id")
    return t.select("customer_id", "product_id").distinct().to_pyarrow().to_pandas()


def truth_for(
    data: Interactions,
    bought_after: pd.DataFrame,
    *,
    exclude_bought: bool,
    max_customers: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(customer ids, relevant product positions per customer) of the judged customers."""
    pos = data.product_pos
    cols = bought_after["product_id"].map(pos)
    df = pd.DataFrame({"c": bought_after["customer_id"].astype(str), "j": cols})
    df = df.dropna()
    df["j"] = df["j"].astype(np.int64)
    if exclude_bought:
        rows = df["c"].map(data.customer_pos).fillna(-1).astype(np.int64).to_numpy()
        width = np.int64(data.shape[1])
        b_rows, b_cols = data.bought.nonzero()
        old = np.isin(rows * width + df["j"].to_numpy(), b_rows.astype(np.int64) * width + b_cols)
        df = df[~old]
    groups = df.groupby("c", sort=True)["j"].apply(lambda s: np.unique(s.to_numpy()))
    ids = groups.index.to_numpy(dtype=object)
    if max_customers and len(ids) > max_customers:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), max_customers, replace=False))
        ids, groups = ids[keep], groups.iloc[keep]
    return ids, list(groups.to_numpy())
