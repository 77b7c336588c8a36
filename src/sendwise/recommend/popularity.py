"""Baselines a shop could run without us: bestsellers (all time, recent, per segment) and
'buy again' (the customer's own purchases, most recent and most frequent first)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sendwise.recommend.base import Batch, Recommender
from sendwise.recommend.data import Interactions


def _share(counts: np.ndarray) -> np.ndarray:
    total = float(counts.sum())
    return (counts / total if total > 0 else counts).astype(np.float32)


class Popularity(Recommender):
    """Products by the number of distinct customers who bought them."""

    name = "popularity"

    def _fit(self, data: Interactions) -> None:
        self.item_scores_ = _share(np.asarray(data.bought.sum(axis=0)).ravel())

    def _scores(self, batch: Batch) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(batch), len(self.item_scores_))).copy()


class RecentPopularity(Popularity):
    """Bestsellers of the last ``recent_days`` before the build (all-time share breaks ties)."""

    name = "recent_popularity"

    def _fit(self, data: Interactions) -> None:
        overall = _share(np.asarray(data.bought.sum(axis=0)).ravel())
        self.item_scores_ = _share(data.recent) + 1e-3 * overall


class SegmentPopularity(Recommender):
    """Bestsellers among the customers of the same segment (country by default); the global
    list for a customer without a segment."""

    name = "segment_popularity"

    def _fit(self, data: Interactions) -> None:
        n_seg = len(data.segment_names)
        known = data.segments >= 0
        member = sp.csr_matrix(
            (
                np.ones(int(known.sum()), np.float32),
                (data.segments[known], np.flatnonzero(known)),
            ),
            shape=(n_seg, data.shape[0]),
        )
        counts = (member @ data.bought).toarray()
        totals = counts.sum(axis=1, keepdims=True)
        overall = _share(np.asarray(data.bought.sum(axis=0)).ravel())
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(totals > 0, counts / np.maximum(totals, 1), 0.0)
        # A small segment leans on the global list rather than on a handful of orders.
        segment_scores = (shares + 1e-3 * overall).astype(np.float32)
        # last row: the global list, for customers without a segment
        self.table_ = np.vstack([segment_scores, overall[None, :]])

    def _scores(self, batch: Batch) -> np.ndarray:
        n_seg = self.table_.shape[0] - 1
        rows = np.where((batch.segments >= 0) & (batch.segments < n_seg), batch.segments, n_seg)
        return self.table_[rows]


class BuyAgain(Recommender):
    """The customer's own purchases, weighted by recency and frequency."""

    name = "buy_again"

    def _scores(self, batch: Batch) -> np.ndarray:
        return batch.purchases.toarray()
