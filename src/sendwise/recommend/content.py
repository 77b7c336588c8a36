"""Content-based: products described by TF-IDF over name, description and category.

A customer's taste is the confidence-weighted mean of the TF-IDF vectors of what they touched;
a product scores by its cosine to that taste. It needs no other customer, so it serves new
products (no interaction yet) and customers with a single view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from sendwise.recommend.base import SMALL, Batch, Recommender, weighted_rows
from sendwise.recommend.data import Interactions


def product_text(catalogue: pd.DataFrame) -> pd.Series:
    """Name, description and category (twice: it is the strongest signal) as one text."""

    def col(name: str) -> pd.Series:
        return catalogue[name].astype(object).where(catalogue[name].notna(), "").astype(str)

    category = col("category")
    return col("name") + " " + col("description") + " " + category + " " + category


class Content(Recommender):
    name = "content"

    def __init__(self, max_features: int = 50_000, min_df: int = 1):
        self.max_features = max_features
        self.min_df = min_df

    def _fit(self, data: Interactions) -> None:
        text = product_text(data.catalogue)
        if not text.str.strip().str.len().any():
            self.vectors_ = sp.csr_matrix((data.shape[1], 1), dtype=np.float32)
            return
        tfidf = TfidfVectorizer(
            max_features=self.max_features,
            min_df=self.min_df,
            sublinear_tf=True,
            token_pattern=r"(?u)\b[^\W\d_]{2,}\b",  # words, not sizes or SKU numbers
            dtype=np.float32,
        )
        try:
            self.vectors_ = tfidf.fit_transform(text.tolist()).tocsr()
        except ValueError:  # no word at all (names that are only codes): no opinion
            self.vectors_ = sp.csr_matrix((data.shape[1], 1), dtype=np.float32)

    def similar_products(self, product_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The products whose description is closest to ``product_id``'s (new products too)."""
        self._check_fitted()
        j = self.data_.product_pos.get(str(product_id))
        if j is None:
            return []
        sims = (self.vectors_ @ self.vectors_[j].T).toarray().ravel()
        sims[j] = -np.inf
        order = np.argsort(-sims)[:k]
        return [(str(self.data_.products[i]), float(sims[i])) for i in order if sims[i] > 0]

    def _scores(self, batch: Batch) -> np.ndarray:
        if len(batch) > SMALL:
            taste = normalize(batch.confidence, norm="l1") @ self.vectors_
            taste = normalize(taste)
            return (taste @ self.vectors_.T).toarray()
        out = np.zeros((len(batch), self.vectors_.shape[0]), np.float32)
        h = batch.confidence
        for i, (a, b) in enumerate(zip(h.indptr[:-1], h.indptr[1:], strict=True)):
            if a == b:
                continue
            taste = weighted_rows(self.vectors_, h.indices[a:b], h.data[a:b])
            norm = np.linalg.norm(taste)
            if norm > 0:
                out[i] = self.vectors_ @ (taste / norm)
        return out
