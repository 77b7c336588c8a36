"""Exact top-k of dot products for every customer, pruned by the products' norms.

A product ``i`` can only beat a customer's k-th best score ``t`` if ``|u| |v_i| > t``
(Cauchy-Schwarz). Products are sorted by the norm of their factors; every customer is scored
against the ``head`` largest first, which gives ``t``; then each customer is scored only against
the prefix of the remaining products whose norm could still beat ``t`` (customers grouped by
that prefix length, rounded up to a power of two). The answer is the same as scoring every
product; ALS factors of rarely bought products are small, so most of the catalogue is skipped.
The scoring itself is implicit's multi-threaded fused top-k.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sendwise.recommend.threads import blas_single


def _topk(items, users, k, exclude, threads):
    from implicit.cpu.topk import topk

    k_eff = min(k, items.shape[0])
    ids, scores = topk(items, users, k_eff, filter_query_items=exclude, num_threads=threads)
    if k_eff < k:
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return ids, scores


def pruned_top_k(
    users: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    threads: int = 0,
    head: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """(customers x k) product positions and scores, best first; -1 / -inf where fewer than
    k products are left after ``exclude`` (customers x products, nonzero = leave out)."""
    users = np.ascontiguousarray(users, dtype=np.float32)
    items = np.ascontiguousarray(items, dtype=np.float32)
    norms = np.linalg.norm(items, axis=1)
    order = np.argsort(-norms, kind="stable")
    head = min(head, len(order))
    ex = exclude.tocsc() if exclude is not None else None

    def cols(positions: np.ndarray, rows: np.ndarray | None = None):
        if ex is None:
            return None
        part = ex[:, positions].tocsr()
        part = part[rows] if rows is not None else part
        part.sort_indices()
        return part

    with blas_single():
        ids, scores = _topk(items[order[:head]], users, k, cols(order[:head]), threads)
        ids = np.where(ids >= 0, order[:head][np.maximum(ids, 0)], -1)
        tail = order[head:]
        if not len(tail):
            return ids, scores
        threshold = scores[:, -1]
        unorm = np.linalg.norm(users, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(unorm > 0, threshold / unorm, np.inf)
        # tail products whose norm exceeds the bound: a prefix of the (descending) tail
        need = np.searchsorted(-norms[tail], -bound, side="left")
        need[~np.isfinite(threshold)] = len(tail)  # fewer than k so far: look at everything
        need[unorm == 0] = 0
        buckets = np.where(
            need > 0, np.minimum(2 ** np.ceil(np.log2(np.maximum(need, 1))), len(tail)), 0
        ).astype(np.int64)
        for size in np.unique(buckets[buckets > 0]):
            rows = np.flatnonzero(buckets == size)
            prefix = tail[:size]
            t_ids, t_scores = _topk(items[prefix], users[rows], k, cols(prefix, rows), threads)
            t_ids = np.where(t_ids >= 0, prefix[np.maximum(t_ids, 0)], -1)
            both_ids = np.hstack([ids[rows], t_ids])
            both = np.hstack([scores[rows], t_scores])
            best = np.argsort(-both, axis=1, kind="stable")[:, :k]
            ids[rows] = np.take_along_axis(both_ids, best, axis=1)
            scores[rows] = np.take_along_axis(both, best, axis=1)
    return ids, scores
