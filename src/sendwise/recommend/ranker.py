"""A learned ranker: LightGBM lambdarank over the candidates of the other algorithms.

Each algorithm proposes its top ``candidates`` products for a customer; the union is described
by (customer, product) features and ranked by a LightGBM lambdarank model trained on a
validation window (what the customers went on to buy after the history the algorithms were
fitted on). Features, per candidate:

- every algorithm's score (divided by the customer's best, as the hybrid does) and its rank
  among that algorithm's candidates (``candidates + 1`` when it did not propose the product);
- how often and how recently the customer bought it (order lines; 0.5 ** (days / 30) since
  the last purchase), their decayed purchases and interactions (views, carts) of it, whether
  they bought it at all;
- the product's buyers (all time and in the recent window), its trend (recent share against
  all-time share) and price;
- category affinity: the customer's share of (decayed) purchases in the product's category
  (the shop's own category or the derived one);
- the customer's breadth: distinct products bought, order lines.

It is a :class:`Recommender` like the others: it scores any :class:`Batch`, fresh
interactions included, so the real-time path serves it too (the components score the one
customer, LightGBM ranks a few hundred rows). See docs/adr/0079-learned-ranker.md.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from sendwise.recommend.base import Batch, Recommender, top_k
from sendwise.recommend.data import Interactions
from sendwise.recommend.threads import cores

logger = logging.getLogger(__name__)
PAIR = ("purchases", "frequency", "latest", "bought", "confidence", "category_affinity")
ITEM = ("log_buyers", "log_recent_buyers", "trend", "log_price")
CUSTOMER = ("log_products_bought", "log_lines_bought")


class Ranker(Recommender):
    """Ranks the candidates of ``components`` (already fitted on the same data)."""

    name = "ranker"

    def __init__(
        self,
        components: dict[str, Recommender],
        *,
        candidates: int = 50,
        trees: int = 200,
        learning_rate: float = 0.05,
        leaves: int = 15,
        min_rows_in_leaf: int = 200,
        seed: int = 0,
        threads: int | None = None,
    ):
        self.components = components
        self.candidates = candidates
        self.trees = trees
        self.learning_rate = learning_rate
        self.leaves = leaves
        self.min_rows_in_leaf = min_rows_in_leaf
        self.seed = seed
        self.threads = threads

    # -- fit: what is known of the products -------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        buyers = np.asarray(data.bought.sum(axis=0)).ravel()
        recent = np.asarray(data.recent, dtype=np.float64)
        share_all = buyers / max(buyers.sum(), 1.0)
        share_recent = recent / max(recent.sum(), 1.0)
        price = data.catalogue["price"].to_numpy(dtype=float, na_value=np.nan)
        self.items_ = np.column_stack(
            [
                np.log1p(buyers),
                np.log1p(recent),
                np.log((share_recent + 1e-5) / (share_all + 1e-5)),
                np.log1p(np.where(np.isfinite(price) & (price > 0), price, 0.0)),
            ]
        ).astype(np.float32)
        codes = data.catalogue["category"].astype("category").cat.codes.to_numpy()
        n_cat = int(codes.max()) + 1 if len(codes) else 0
        has = codes >= 0
        self.category_ = sp.csr_matrix(
            (np.ones(int(has.sum()), np.float32), (np.flatnonzero(has), codes[has])),
            shape=(data.shape[1], max(n_cat, 1)),
        )
        self.codes_ = codes
        self.feature_names_ = [
            *(f"{n}_{kind}" for n in self.components for kind in ("score", "rank")),
            *PAIR,
            *ITEM,
            *CUSTOMER,
        ]

    # -- candidates and their features -------------------------------------------------------
    def features(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, features) of every candidate of the batch's customers, ordered by
        row (customer)."""
        m = self.candidates
        n, n_items = len(batch), self.data_.shape[1]
        chosen = np.zeros((n, n_items), dtype=bool)
        scores, ranks = [], []
        for algo in self.components.values():
            s = algo.scores(batch)
            idx, _ = top_k(s, m, positive_only=algo.sparse)
            rank = np.full((n, n_items), m + 1, dtype=np.int16)
            rows = np.repeat(np.arange(n), m).reshape(n, m)
            ok = idx >= 0
            rank[rows[ok], idx[ok]] = np.tile(np.arange(1, m + 1, dtype=np.int16), (n, 1))[ok]
            chosen[rows[ok], idx[ok]] = True
            scores.append(s)
            ranks.append(rank)
        r, c = np.nonzero(chosen)
        cols = []
        for s, rank in zip(scores, ranks, strict=True):
            pos = np.maximum(s, 0.0)
            best = pos.max(axis=1)
            cols.append(np.divide(pos[r, c], best[r], out=np.zeros(len(r), np.float32),
                                  where=best[r] > 0))  # fmt: skip
            cols.append(rank[r, c].astype(np.float32))
        del scores, ranks
        for m_ in (
            batch.purchases,
            batch.frequency if batch.frequency is not None else batch.bought,
            batch.latest if batch.latest is not None else batch.bought,
            batch.bought,
            batch.confidence,
        ):
            cols.append(_gather(m_, r, c))
        taste = (batch.purchases @ self.category_).toarray()
        total = taste.sum(axis=1)
        code = self.codes_[c]
        aff = np.where(code >= 0, taste[r, np.maximum(code, 0)], 0.0)
        cols.append(np.divide(aff, total[r], out=np.zeros(len(r)), where=total[r] > 0))
        x = np.column_stack(cols).astype(np.float32)
        products = np.asarray(batch.bought.getnnz(axis=1), dtype=np.float32)
        lines = np.asarray(
            (batch.frequency if batch.frequency is not None else batch.bought).sum(axis=1)
        ).ravel()
        customer = np.column_stack([np.log1p(products), np.log1p(lines)]).astype(np.float32)
        return r, c, np.hstack([x, self.items_[c], customer[r]])

    # -- training ---------------------------------------------------------------------------
    def train(
        self, batch: Batch, relevant: list[np.ndarray], blocked: np.ndarray | None = None
    ) -> Ranker:
        """Learn the ranking from ``batch``'s customers and the products each went on to buy
        (``relevant``: positions). ``blocked`` (customers x products, True = never served)
        drops candidates the rules would remove."""
        import lightgbm as lgb

        self._check_fitted()
        r, c, x = self.features(batch)
        if blocked is not None:
            keep = ~blocked[r, c]
            r, c, x = r[keep], c[keep], x[keep]
        y = _labels(r, c, relevant, self.data_.shape[1])
        sizes = np.bincount(r, minlength=len(batch))
        positives = np.bincount(r, weights=y, minlength=len(batch))
        useful = (positives > 0)[r]  # a customer without a positive teaches nothing
        r, x, y = r[useful], x[useful], y[useful]
        sizes = sizes[positives > 0]
        if not len(sizes):
            self.model_ = None
            return self
        params = {
            "objective": "lambdarank",
            "learning_rate": self.learning_rate,
            "num_leaves": self.leaves,
            "min_data_in_leaf": self.min_rows_in_leaf,
            "feature_fraction": 0.8,
            "lambda_l2": 10.0,
            "lambdarank_truncation_level": 20,
            "num_threads": 1,  # small data; OpenMP spinning on a shared machine costs more
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        data = lgb.Dataset(x, y, group=sizes, feature_name=self.feature_names_)
        self.model_ = lgb.train(params, data, num_boost_round=self.trees)
        self.trained_on_ = {"customers": len(sizes), "rows": len(y)}
        return self

    def importance(self) -> dict[str, float]:
        """Share of the total gain by feature, largest first."""
        if getattr(self, "model_", None) is None:
            return {}
        gain = self.model_.feature_importance("gain")  # type: ignore[union-attr]
        share = gain / max(gain.sum(), 1e-12)
        order = np.argsort(-share)
        return {self.feature_names_[i]: float(share[i]) for i in order}

    # -- scoring ----------------------------------------------------------------------------
    def _scores(self, batch: Batch) -> np.ndarray:
        out = np.zeros((len(batch), self.data_.shape[1]), np.float32)
        if getattr(self, "model_", None) is None:
            raise RuntimeError("the ranker is fitted but not trained; call train() first")
        r, c, x = self.features(batch)
        if not len(r):
            return out
        pred = self.model_.predict(x, num_threads=cores(self.threads) if len(r) > 5000 else 1)  # type: ignore[union-attr]
        # positive scores, order kept within each customer (0 = no opinion)
        low = np.full(len(batch), np.inf)
        np.minimum.at(low, r, pred)
        out[r, c] = (pred - low[r] + 1e-3).astype(np.float32)
        return out


def _gather(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows[i], cols[i]] for every i, as float32 (0 where absent)."""
    if m.nnz == 0 or not len(rows):
        return np.zeros(len(rows), np.float32)
    width = np.int64(m.shape[1])
    coo = m.tocoo()
    keys = coo.row.astype(np.int64) * width + coo.col
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], coo.data[order]
    want = rows.astype(np.int64) * width + cols
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(keys[at] == want, vals[at], 0.0).astype(np.float32)


def _labels(r: np.ndarray, c: np.ndarray, relevant: list[np.ndarray], width: int) -> np.ndarray:
    sizes = np.array([len(x) for x in relevant])
    truth = np.repeat(np.arange(len(relevant), dtype=np.int64), sizes) * width
    if sizes.sum():
        truth = truth + np.concatenate(relevant).astype(np.int64)
    return np.isin(r.astype(np.int64) * width + c, truth).astype(np.float32)
