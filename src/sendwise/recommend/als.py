"""ALS matrix factorization on implicit feedback (Hu, Koren & Volinsky 2008), through the
``implicit`` library on CPU.

Confidence is the weighted, decayed interaction matrix of :mod:`sendwise.recommend.data`
(view < add to cart < purchase, halved every ``half_life_days``) scaled by ``alpha``. A
customer whose history changed since the fit gets their factors recomputed from that history
(one small least-squares solve) instead of a retraining: the real-time path.
"""

from __future__ import annotations

import numpy as np

from sendwise.recommend.base import SMALL, Batch, Recommender
from sendwise.recommend.data import Interactions
from sendwise.recommend.threads import blas_single, cores
from sendwise.recommend.topk import pruned_top_k


class ALS(Recommender):
    name = "als"
    sparse = False

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 0.5,
        threads: int | None = None,
        seed: int = 0,
    ):
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.threads = threads
        self.seed = seed

    def _fit(self, data: Interactions) -> None:
        self.model_ = self._new_model()
        with blas_single():
            self.model_.fit(data.confidence.astype(np.float32), show_progress=False)
        self.user_factors_ = np.asarray(self.model_.user_factors)
        self.item_factors_ = np.asarray(self.model_.item_factors)
        self.gram_ = (self.item_factors_.T @ self.item_factors_).astype(np.float64)

    def _new_model(self):
        with blas_single():  # the constructor checks (and warns about) the BLAS threads
            from implicit.cpu.als import AlternatingLeastSquares

            return AlternatingLeastSquares(
                factors=self.factors,
                iterations=self.iterations,
                regularization=self.regularization,
                alpha=self.alpha,
                num_threads=cores(self.threads),
                random_state=self.seed,
            )

    def user_vectors(self, batch: Batch) -> np.ndarray:
        """Factors of the batch's customers: stored ones, or recomputed from their rows when
        the rows are fresh or the customer is new."""
        known = batch.positions >= 0
        if not batch.fresh and known.all():
            return self.user_factors_[batch.positions]
        out = np.zeros((len(batch), self.item_factors_.shape[1]), np.float32)
        if not batch.fresh:
            out[known] = self.user_factors_[batch.positions[known]]
        redo = np.flatnonzero(~known | batch.fresh)
        rows = batch.confidence[redo].astype(np.float32).tocsr()
        if not len(redo) or not rows.nnz:
            return out
        if len(redo) <= SMALL:
            for i in range(len(redo)):
                out[redo[i]] = self._solve(
                    rows.indices[rows.indptr[i] : rows.indptr[i + 1]],
                    rows.data[rows.indptr[i] : rows.indptr[i + 1]],
                )
        else:
            with blas_single():
                out[redo] = self.model_.recalculate_user(np.arange(len(redo)), rows)
        return out

    def _solve(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """One customer's factors from their history: the ALS normal equations
        (Y'Y + Y'(C - I)Y + reg I) x = Y'C p, solved directly (a few microseconds; implicit's
        batch solver would start its thread pool for it)."""
        if not len(items):
            return np.zeros(self.item_factors_.shape[1], np.float32)
        conf = self.alpha * weights.astype(np.float64)
        y = self.item_factors_[items].astype(np.float64)
        a = self.gram_ + (y.T * (conf - 1.0)) @ y
        a[np.diag_indices_from(a)] += self.regularization
        return np.linalg.solve(a, y.T @ conf).astype(np.float32)

    def _scores(self, batch: Batch) -> np.ndarray:
        if len(batch) > SMALL:
            return self.user_vectors(batch) @ self.item_factors_.T
        # one customer (real time): BLAS's own threads cost more than the product (7x here)
        with blas_single():
            return self.user_vectors(batch) @ self.item_factors_.T

    def top_k_all(self, k: int, *, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` product positions and scores for every fitted customer (-1 / -inf where
        none is left), leaving out ``exclude`` (customers x products, nonzero): implicit's
        multi-threaded top-k, pruned by factor norms (exact; see topk.py). For the batch job:
        no dense score matrix."""
        self._check_fitted()
        return pruned_top_k(
            self.user_factors_, self.item_factors_, k, exclude=exclude, threads=cores(self.threads)
        )
