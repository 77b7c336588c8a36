"""Item-to-item co-occurrence: 'bought together' and 'viewed together'.

Two products are similar when the same customers bought (or viewed) both: the cosine of their
customer columns, keeping each product's ``neighbours`` closest others (implicit's all-pairs
k-nearest-neighbours, in C++). A customer's score for a product is the similarity to it summed
over their history, weighted by the history's confidence.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sendwise.recommend.base import SMALL, Batch, Recommender, weighted_rows
from sendwise.recommend.data import Interactions
from sendwise.recommend.threads import blas_single


class CoOccurrence(Recommender):
    """``source`` is 'bought' or 'viewed'."""

    def __init__(self, source: str = "bought", neighbours: int = 50, threads: int | None = None):
        self.source = source
        self.neighbours = neighbours
        self.threads = threads

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.source}_together"

    def _fit(self, data: Interactions) -> None:
        from implicit.nearest_neighbours import all_pairs_knn
        from sklearn.preprocessing import normalize

        if self.source not in ("bought", "viewed"):
            raise ValueError(f"source must be 'bought' or 'viewed', got {self.source!r}")
        matrix = data.bought if self.source == "bought" else data.viewed
        n_items = matrix.shape[1]
        if matrix.nnz == 0:
            self.similarity_ = sp.csr_matrix((n_items, n_items), dtype=np.float32)
            return
        # cosine = dot product of the products' unit-length customer columns
        unit = normalize(matrix.T.astype(np.float64)).T.tocsr()
        with blas_single():
            knn = all_pairs_knn(
                unit, self.neighbours + 1, num_threads=self.threads or 0, show_progress=False
            )
        sim = knn.tocsr().astype(np.float32)
        sim.setdiag(0.0)  # a product is not its own neighbour
        sim.eliminate_zeros()
        self.similarity_ = sim.T.tocsr()  # column j: what leads to product j

    def _scores(self, batch: Batch) -> np.ndarray:
        if len(batch) > SMALL:
            return (batch.confidence @ self.similarity_).toarray()
        h = batch.confidence
        return np.vstack(
            [
                weighted_rows(self.similarity_, h.indices[a:b], h.data[a:b])
                for a, b in zip(h.indptr[:-1], h.indptr[1:], strict=True)
            ]
        ).reshape(len(batch), -1)
