"""The one interface of every recommender: fit on :class:`Interactions`, answer with ids.

A recommender scores a :class:`Batch` (the histories of some customers, one row each, possibly
with interactions newer than the fit) against every product. Public methods take customer ids
and return product ids; the matrix positions stay inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from sendwise.recommend.data import PURCHASE, Interactions

Fresh = Sequence[tuple[str, str]] | Sequence[str]
"""Interactions after the fit: (event name, product_id) pairs, or product ids (viewed)."""
VIEW = "Product Viewed"
SMALL = 16
"""Batches up to this many customers take the real-time code paths (numpy, one BLAS thread)."""


@dataclass
class Batch:
    """Histories of a batch of customers (rows aligned to ``positions``)."""

    positions: np.ndarray
    """Row of each customer in the fitted data; -1 for a customer it has never seen."""
    confidence: sp.csr_matrix
    purchases: sp.csr_matrix
    bought: sp.csr_matrix
    segments: np.ndarray
    fresh: bool = False
    """Rows hold interactions the fit has not seen: models must not use stored user state."""
    frequency: sp.csr_matrix | None = None
    """Purchased lines per product (None: ``bought``)."""
    latest: sp.csr_matrix | None = None
    """Recency of the last purchase, 1 = now (None: ``bought``)."""

    def __len__(self) -> int:
        return len(self.positions)

    @classmethod
    def of(cls, data: Interactions, positions: np.ndarray) -> Batch:
        positions = np.asarray(positions, dtype=np.int64)
        known = positions >= 0
        take = np.where(known, positions, 0)
        segments = np.where(known, data.segments[take], -1)
        optional = [
            None if m is None else take_rows(m, take, known) for m in (data.frequency, data.latest)
        ]
        return cls(
            positions,
            take_rows(data.confidence, take, known),
            take_rows(data.purchases, take, known),
            take_rows(data.bought, take, known),
            segments,
            False,
            *optional,
        )

    def with_fresh(self, data: Interactions, fresh: Fresh, weights: dict[str, float]) -> Batch:
        """This one-customer batch plus ``fresh`` interactions, weighted as new (no decay)."""
        n = data.shape[1]
        conf = np.zeros(n, np.float32)
        buys = np.zeros(n, np.float32)
        pos = data.product_pos
        for item in fresh:
            kind, product = (VIEW, item) if isinstance(item, str) else item
            j = pos.get(str(product))
            if j is None:
                continue
            conf[j] += weights.get(kind, 1.0)
            if kind == PURCHASE:
                buys[j] += 1.0
        conf_row = self.confidence + sp.csr_matrix(conf)
        buy_row = self.purchases + sp.csr_matrix(buys)
        new = sp.csr_matrix((buys > 0).astype(np.float32))
        bought = self.bought.maximum(new)
        frequency = (self.frequency if self.frequency is not None else self.bought) + sp.csr_matrix(
            buys
        )
        latest = (self.latest if self.latest is not None else self.bought).maximum(new)
        return Batch(
            self.positions, conf_row, buy_row, bought, self.segments, True, frequency, latest
        )


class Recommender:
    """Base of every algorithm. Subclasses implement ``_fit`` and ``_scores``."""

    name: ClassVar[str] = "recommender"
    sparse: ClassVar[bool] = True
    """Scores of 0 or less mean 'no opinion' (the fallback chain fills those places)."""

    def fit(self, data: Interactions) -> Self:
        self.data_ = data
        self._fit(data)
        return self

    def _fit(self, data: Interactions) -> None:  # pragma: no cover - trivial default
        pass

    def _scores(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def scores(self, batch: Batch) -> np.ndarray:
        """Dense (customers x products) float32 scores; higher is better."""
        self._check_fitted()
        return np.asarray(self._scores(batch), dtype=np.float32)

    def _check_fitted(self) -> None:
        if not hasattr(self, "data_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    # -- the id-speaking interface -------------------------------------------------------
    def batch(self, customer_ids: Iterable[str]) -> Batch:
        self._check_fitted()
        index = self.data_.customer_pos
        return Batch.of(self.data_, np.array([index.get(str(c), -1) for c in customer_ids]))

    def recommend(
        self,
        customer_id: str,
        k: int = 10,
        *,
        fresh: Fresh = (),
        exclude_bought: bool = False,
    ) -> list[tuple[str, float]]:
        """The top ``k`` (product_id, score) for one customer, counting ``fresh``
        interactions that happened after the fit."""
        batch = self.batch([customer_id])
        if fresh:
            batch = batch.with_fresh(self.data_, fresh, {VIEW: 1.0, PURCHASE: 1.0})
        scores = self.scores(batch)
        if exclude_bought:
            mask_bought(scores, batch)
        idx, vals = top_k(scores, k, positive_only=self.sparse)
        return [
            (str(self.data_.products[j]), float(v))
            for j, v in zip(idx[0], vals[0], strict=True)
            if j >= 0
        ]

    def recommend_many(
        self, customer_ids: Sequence[str], k: int = 10, *, exclude_bought: bool = False
    ) -> pd.DataFrame:
        """customer_id, rank (1..k), product_id, score for each customer (fewer rows when the
        algorithm has no opinion)."""
        frames = []
        ids = np.asarray(list(customer_ids), dtype=object)
        for start in range(0, len(ids), chunk_size(self.data_.shape[1])):
            part = ids[start : start + chunk_size(self.data_.shape[1])]
            batch = self.batch(part)
            scores = self.scores(batch)
            if exclude_bought:
                mask_bought(scores, batch)
            idx, vals = top_k(scores, k, positive_only=self.sparse)
            frames.append(ranked_frame(part, idx, vals, self.data_.products))
        if not frames:
            return ranked_frame(ids[:0], *_empty(k), self.data_.products)
        return pd.concat(frames, ignore_index=True)


def take_rows(m: sp.csr_matrix, rows: np.ndarray, keep: np.ndarray) -> sp.csr_matrix:
    """Rows ``rows`` of ``m`` (empty where ``keep`` is false), gathered directly: scipy's fancy
    indexing costs milliseconds per call on a matrix of millions of rows."""
    starts = m.indptr[rows]
    lengths = np.where(keep, m.indptr[rows + 1] - starts, 0)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    gather = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return sp.csr_matrix(
        (m.data[gather], m.indices[gather], indptr), shape=(len(rows), m.shape[1]), copy=False
    )


def weighted_rows(m: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_i weights[i] * m[rows[i]] as a dense vector, in numpy alone (the real-time path:
    scipy's per-operation overhead is larger than the work for one customer)."""
    starts = m.indptr[rows]
    lengths = m.indptr[rows + 1] - starts
    offsets = np.cumsum(lengths) - lengths
    gather = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
    return np.bincount(
        m.indices[gather],
        weights=m.data[gather] * np.repeat(weights, lengths),
        minlength=m.shape[1],
    ).astype(np.float32)


def chunk_size(n_items: int, budget: int = 50_000_000) -> int:
    """Customers per dense block so that one block holds about ``budget`` scores."""
    return max(1, min(20_000, budget // max(n_items, 1)))


def mask_bought(scores: np.ndarray, batch: Batch) -> None:
    rows, cols = batch.bought.nonzero()
    scores[rows, cols] = -np.inf


def top_k(
    scores: np.ndarray, k: int, *, positive_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per row the ``k`` best columns in order, and their scores; -1 where there is none
    (masked with -inf, or not positive when ``positive_only``)."""
    n_rows, n_cols = scores.shape
    k_eff = min(k, n_cols)
    if k_eff == 0:
        return np.full((n_rows, k), -1), np.zeros((n_rows, k), np.float32)
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    bad = ~np.isfinite(vals) | ((vals <= 0) if positive_only else False)
    idx = np.where(bad, -1, idx)
    vals = np.where(bad, 0.0, vals).astype(np.float32)
    if k_eff < k:
        pad = k - k_eff
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, pad)))
    return idx, vals


def ranked_frame(
    customer_ids: np.ndarray, idx: np.ndarray, vals: np.ndarray, products: np.ndarray
) -> pd.DataFrame:
    n, k = idx.shape
    keep = idx.ravel() >= 0
    return pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customer_ids, dtype=object), k)[keep],
            "rank": np.tile(np.arange(1, k + 1), n)[keep],
            "product_id": products[idx.ravel()[keep]] if keep.any() else np.array([], object),
            "score": vals.ravel()[keep].astype(np.float64),
        }
    )


def _empty(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
