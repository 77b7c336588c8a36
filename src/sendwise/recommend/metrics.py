"""Ranking metrics at k, vectorised over customers.

``idx`` is (customers x k) recommended product positions in rank order (-1 = empty place);
``relevant`` the positions each customer went on to buy. Definitions:

- precision@k = hits / k; recall@k = hits / |relevant|; hit rate = share with a hit;
- AP@k = sum over ranks i of (precision@i if item i is a hit) / min(k, |relevant|); MAP = mean;
- NDCG@k = DCG / ideal DCG with binary gains and log2(rank + 1) discounts;
- coverage = distinct recommended products / catalogue size;
- novelty = mean self-information -log2(share of training customers who bought the product)
  of the recommended products (higher = less obvious); a product nobody bought counts as bought
  by one customer.
"""

from __future__ import annotations

import numpy as np


def hits_matrix(idx: np.ndarray, relevant: list[np.ndarray]) -> np.ndarray:
    n, _k = idx.shape
    width = int(max(idx.max(initial=0), max((r.max(initial=0) for r in relevant), default=0))) + 1
    rec_keys = np.arange(n)[:, None].astype(np.int64) * width + idx
    sizes = np.array([len(r) for r in relevant])
    rel_keys = np.repeat(np.arange(n, dtype=np.int64), sizes) * width + (
        np.concatenate(relevant).astype(np.int64) if sizes.sum() else np.zeros(0, np.int64)
    )
    return np.isin(rec_keys, rel_keys) & (idx >= 0)


def average_precision(idx: np.ndarray, relevant: list[np.ndarray], k: int) -> np.ndarray:
    hits = hits_matrix(idx[:, :k], relevant)
    ranks = np.arange(1, hits.shape[1] + 1)
    prec_at = np.cumsum(hits, axis=1) / ranks
    n_rel = np.array([len(r) for r in relevant])
    denom = np.minimum(k, n_rel)
    return np.where(denom > 0, (prec_at * hits).sum(axis=1) / np.maximum(denom, 1), 0.0)


def ranking_metrics(
    idx: np.ndarray,
    relevant: list[np.ndarray],
    k: int,
    *,
    n_products: int,
    item_share: np.ndarray,
) -> dict[str, float]:
    """precision, recall, map, ndcg, hit_rate (means over customers), coverage, novelty."""
    idx = idx[:, :k]
    hits = hits_matrix(idx, relevant)
    n_rel = np.array([len(r) for r in relevant])
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_rel, k) - 1, 0, k - 1)]
    recs = idx[idx >= 0]
    share = np.clip(item_share[recs], 1e-12, 1.0) if len(recs) else np.ones(1)
    safe = np.maximum(n_rel, 1)
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / safe)),
        "map": float(np.mean(average_precision(idx, relevant, k))),
        "ndcg": float(np.mean(np.where(n_rel > 0, dcg / ideal, 0.0))),
        "hit_rate": float(np.mean(n_hits > 0)),
        "coverage": float(len(np.unique(recs)) / max(n_products, 1)),
        "novelty": float(np.mean(-np.log2(share))),
    }
