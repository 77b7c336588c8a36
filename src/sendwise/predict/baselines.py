"""Naive baselines every model must beat on the same split, and the BTYD pair on features.

- recency: fewer days since the last order ranks higher (never ordered ranks last);
- RFM score: r + f + m quintile scores (0 without an order), as the profiles compute them;
- BG/NBD: expected purchases over the horizon, fitted on the same snapshot's history only.

The BTYD pair (``Btyd``, ``holdout_table``) lives in ``btyd_pair`` and is re-exported here.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from sendwise.predict.btyd_pair import WEEK, Btyd, holdout_table
from sendwise.segments import rfm_scores

__all__ = ["WEEK", "Btyd", "holdout_table", "recency_score", "rfm_total"]


def recency_score(frame: pd.DataFrame) -> np.ndarray:
    r = frame["recency_days"].astype("float64").to_numpy(na_value=np.nan)
    return np.where(np.isnan(r), -1e9, -r)


def rfm_total(frame: pd.DataFrame) -> np.ndarray:
    cols = frame[["customer_id", "recency_days", "frequency", "monetary"]]
    scored = rfm_scores(ibis.memtable(cols), ties="bottom").to_pandas()
    scored = scored.set_index("customer_id").reindex(frame["customer_id"])
    total = scored[["r_score", "f_score", "m_score"]].astype("float64").fillna(0.0).sum(axis=1)
    return total.to_numpy()
