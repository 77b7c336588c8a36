"""Behavioural clusters: k-means on scaled features, each cluster described in words.

Rule and RFM segments answer questions a marketer already has; clusters show the groups the
data has. Counts and money are skewed (a few customers order 50 times), so they are put through
``log1p`` before ``StandardScaler``; a missing value (no order yet means no recency and no
basket) is replaced by the feature's median and flagged in an extra ``<feature>_missing``
column, so "never ordered" stays visible to k-means. k is the best silhouette over ``k_range``
on a sample, unless given. Clusters are renumbered by size (0 = largest) so that the numbering
does not depend on k-means' internal label order, and every step is seeded by
``random_state``: the same data and seed give the same clusters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin, silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from sendwise.segments.describe import describe_clusters
from sendwise.segments.errors import SegmentError

__all__ = ["DEFAULT_FEATURES", "CustomerClusters", "cluster_customers"]

logger = logging.getLogger(__name__)

DEFAULT_FEATURES: tuple[str, ...] = (
    "frequency",
    "monetary",
    "avg_order_value",
    "recency_days",
    "orders_90d",
    "product_views_90d",
    "sessions_90d",
    "carts_abandoned_90d",
    "open_rate",
    "click_rate",
    "distinct_categories",
)
"""Used when present in the data; the rates are already in 0..1 and are not logged."""

_RESULT = pa.schema(
    [("customer_id", pa.string()), ("cluster", pa.int64()), ("cluster_description", pa.string())]
)
CLIP_SD = 3.0
_NOT_LOGGED = frozenset({"open_rate", "click_rate", "favourite_category_share"})


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pa.Table):
        return X.to_pandas()
    if isinstance(X, pd.DataFrame):
        return X
    raise SegmentError("clustering needs a pandas DataFrame or a pyarrow Table of features")


class CustomerClusters(ClusterMixin, BaseEstimator):
    """k-means clusters of customers, numbered by size and described in words.

    Takes a DataFrame (one row per customer, the columns of the features table) rather than a
    numeric matrix, because the descriptions need the column names and ``favourite_category``.
    Learned: ``features_`` (the columns used), ``k_``, ``silhouette_`` ({k: score}, empty when
    k was given), ``cluster_centers_`` (in scaled space, row = cluster), ``labels_``,
    ``sizes_``, ``descriptions_`` ({cluster: text}). ``n_threads`` caps the OpenMP/BLAS
    threads k-means uses (None: the libraries' default); on small data or a busy machine, 1
    is often much faster.
    """

    def __init__(
        self,
        k: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        random_state: int = 0,
        sample_size: int = 5000,
        features: Sequence[str] | None = None,
        n_init: int = 10,
        n_threads: int | None = None,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.random_state = random_state
        self.sample_size = sample_size
        self.features = features
        self.n_init = n_init
        self.n_threads = n_threads

    def _logged(self, df: pd.DataFrame) -> np.ndarray:
        """The features as floats, counts and money through log1p, missing values still NaN."""
        missing = [f for f in self.features_ if f not in df.columns]
        if missing:
            raise SegmentError(f"the data lacks the features {', '.join(missing)}")
        cols = []
        for f in self.features_:
            try:
                raw = df[f].to_numpy(dtype="float64", na_value=np.nan)
            except (TypeError, ValueError):
                raise SegmentError(f"feature {f!r} is not numeric", name=f) from None
            cols.append(raw if f in _NOT_LOGGED else np.log1p(np.clip(raw, 0, None)))
        return np.column_stack(cols)

    def _scaled(self, df: pd.DataFrame, *, fit: bool = False) -> np.ndarray:
        """The matrix k-means sees: standardised features (medians for missing values), then
        the 0/1 missing flags unscaled: standardising a rare flag would blow it up to several
        standard deviations and make "has no open_rate" outweigh real behaviour."""
        logged = self._logged(df)
        gaps = np.isnan(logged)
        filled = np.where(gaps, self.medians_, logged)
        if fit:
            self.scaler_ = StandardScaler().fit(filled)
        flags = gaps[:, [self.features_.index(f) for f in self.flagged_]].astype("float64")
        # Clipped at 3 standard deviations: one extreme wholesaler must not win a cluster of
        # its own (on Online Retail, k = 2 was "everyone" and "one customer" without this).
        scaled = np.clip(self.scaler_.transform(filled), -CLIP_SD, CLIP_SD)
        return np.hstack([scaled, flags])

    def fit(self, X: Any, y: None = None) -> CustomerClusters:
        """Choose k (unless given), cluster, renumber by size and describe the clusters."""
        df = _frame(X)
        wanted = list(self.features or DEFAULT_FEATURES)
        self.features_ = [f for f in wanted if f in df.columns]
        if not self.features_ or df.empty:
            raise SegmentError(f"no customers, or none of the features {', '.join(wanted)}")
        logged = self._logged(df)
        gaps = np.isnan(logged)
        self.flagged_ = [f for f, g in zip(self.features_, gaps.T, strict=True) if g.any()]
        known = [col[~g] for col, g in zip(logged.T, gaps.T, strict=True)]
        self.medians_ = np.array([np.median(v) if len(v) else 0.0 for v in known])
        scaled = self._scaled(df, fit=True)
        with threadpool_limits(self.n_threads):
            self.k_, self.silhouette_ = self._choose_k(scaled)
            model = KMeans(self.k_, n_init=self.n_init, random_state=self.random_state)
            model.fit(scaled)
        sizes = np.bincount(model.labels_, minlength=self.k_)
        order = sorted(range(self.k_), key=lambda c: (-sizes[c], c))
        rank = np.empty(self.k_, dtype="int64")
        rank[order] = np.arange(self.k_)
        self.cluster_centers_ = model.cluster_centers_[order]
        self.labels_ = rank[model.labels_]
        self.sizes_ = sizes[order]
        self.inertia_ = float(model.inertia_)
        self.descriptions_ = describe_clusters(df, self.labels_, self._center_z())
        logger.info("%d customers in %d clusters, sizes %s", len(df), self.k_, list(self.sizes_))
        return self

    def _center_z(self) -> dict[str, np.ndarray]:
        """Per feature, each cluster's centroid in standard deviations from the population."""
        return {f: self.cluster_centers_[:, i] for i, f in enumerate(self.features_)}

    def _choose_k(self, scaled: np.ndarray) -> tuple[int, dict[int, float]]:
        distinct = len(np.unique(scaled, axis=0))
        if self.k is not None:
            if not 1 <= self.k <= distinct:
                raise SegmentError(
                    f"cannot make {self.k} clusters of {distinct} distinct customers"
                )
            return int(self.k), {}
        rng = np.random.RandomState(self.random_state)
        n = len(scaled)
        sample = (
            scaled[rng.choice(n, self.sample_size, replace=False)]
            if n > self.sample_size
            else scaled
        )
        distinct = len(np.unique(sample, axis=0))
        scores: dict[int, float] = {}
        for k in range(self.k_range[0], self.k_range[1] + 1):
            if not 2 <= k < distinct:
                continue
            km = KMeans(k, n_init=self.n_init, random_state=self.random_state).fit(sample)
            scores[k] = float(silhouette_score(sample, km.labels_, random_state=self.random_state))
        if not scores:
            raise SegmentError(
                f"too few distinct customers ({distinct}) to choose k in {self.k_range}"
            )
        best = max(scores, key=lambda k: (round(scores[k], 6), -k))  # a tie goes to fewer clusters
        logger.debug("silhouette by k: %s; chose %d", scores, best)
        return best, scores

    def predict(self, X: Any) -> np.ndarray:
        """The nearest cluster (numbered by size) of each row."""
        check_is_fitted(self, "cluster_centers_")
        return pairwise_distances_argmin(self._scaled(_frame(X)), self.cluster_centers_)


def cluster_customers(
    features: Any,
    *,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    random_state: int = 0,
    sample_size: int = 5000,
    n_threads: int | None = None,
) -> pa.Table:
    """``customer_id, cluster, cluster_description`` for every customer of an Ibis features table.

    Pulls only the columns clustering needs, ordered by customer_id so that the result does not
    depend on the order the warehouse returns rows in. No customers give an empty table; too
    few distinct customers to make clusters raise :class:`SegmentError`.
    """
    schema = features.schema()
    if "customer_id" not in schema:
        raise SegmentError("the features table has no customer_id column")
    wanted = [c for c in (*DEFAULT_FEATURES, "favourite_category") if c in schema]
    data = features.select("customer_id", *wanted).order_by("customer_id").to_pyarrow()
    ids = data.column("customer_id").cast(pa.string())
    if data.num_rows == 0:  # nothing to cluster is an outcome, not an error
        logger.info("no customers to cluster")
        return pa.table(
            {"customer_id": ids, "cluster": [], "cluster_description": []},
            schema=_RESULT,
        )
    model = CustomerClusters(
        k=k,
        k_range=k_range,
        random_state=random_state,
        sample_size=sample_size,
        n_threads=n_threads,
    )
    model.fit(data.to_pandas())
    descriptions = [model.descriptions_[int(c)] for c in model.labels_]
    return pa.table(
        {
            "customer_id": ids,
            "cluster": pa.array(model.labels_, type=pa.int64()),
            "cluster_description": pa.array(descriptions, type=pa.string()),
        },
        schema=_RESULT,
    )
