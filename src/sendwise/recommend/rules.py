"""Business rules and the fallback chain that turn scores into K products per customer.

Rules on products (in stock, has a price, price band, bury, boost) and 'already bought' act on
the scores before the top candidates are taken; 'at most N per category' acts on the ranked
candidates. Candidates come from the algorithm first, then the customer's segment's
bestsellers, then the global ones, so a customer always gets K products as long as K products
pass the rules (the category cap gives way last, when nothing else is left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sendwise.recommend.base import Batch, mask_bought, top_k
from sendwise.recommend.data import Interactions


@dataclass
class Rules:
    allowed: np.ndarray
    """Per product: may be recommended at all."""
    multiplier: np.ndarray
    """Per product: factor on positive scores (boost list)."""
    categories: np.ndarray
    """Per product: category code, -1 when it has none or a derived one that is not capped
    (never capped)."""
    exclude_bought: bool = False
    max_per_category: int | None = None

    @classmethod
    def build(
        cls,
        data: Interactions,
        *,
        exclude_bought: bool = False,
        max_per_category: int | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        boost: dict[str, float] | None = None,
        bury: list[str] | tuple[str, ...] = (),
        cap_derived: bool = False,
    ) -> Rules:
        cat = data.catalogue
        price = cat["price"].to_numpy(dtype=float, na_value=np.nan)
        allowed = cat["in_stock"].to_numpy(dtype=bool) & np.isfinite(price) & (price > 0)
        if min_price is not None:
            allowed &= price >= min_price
        if max_price is not None:
            allowed &= price <= max_price
        pos = data.product_pos
        for product in bury:
            if product in pos:
                allowed[pos[product]] = False
        multiplier = np.ones(len(cat), np.float32)
        for product, factor in (boost or {}).items():
            if product in pos:
                multiplier[pos[product]] = factor
        codes = pd.Categorical(cat["category"]).codes.astype(np.int32)
        if not cap_derived and "category_source" in cat:
            codes[(cat["category_source"] == "derived").to_numpy()] = -1
        return cls(allowed, multiplier, codes, exclude_bought, max_per_category)

    def __post_init__(self) -> None:
        self._blocked = np.flatnonzero(~self.allowed)
        self._boosted = bool((self.multiplier != 1).any())

    def penalised(self, scores: np.ndarray, batch: Batch) -> np.ndarray:
        """The scores with boosts applied and forbidden places set to -inf (in place)."""
        if self._boosted:
            np.multiply(scores, self.multiplier, out=scores, where=scores > 0)
        if len(self._blocked):
            scores[:, self._blocked] = -np.inf
        if self.exclude_bought:
            mask_bought(scores, batch)
        return scores

    def penalty(self, batch: Batch) -> np.ndarray:
        """0 where allowed, -inf where not, for each (customer, product) of the batch."""
        base = np.zeros((len(batch), len(self.allowed)), np.float32)
        base[:, ~self.allowed] = -np.inf
        if self.exclude_bought:
            mask_bought(base, batch)
        return base

    def choose(
        self, candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From ``candidates`` [(positions, scores, sources), ...] (each customers x m, in
        priority order) the first ``k`` distinct products per customer under the category
        cap. Returns (positions, scores, sources), customers x k, -1 / 0 / None where empty."""
        idx = np.hstack([c[0] for c in candidates])
        val = np.hstack([c[1] for c in candidates])
        src = np.hstack([c[2] for c in candidates])
        n, width = idx.shape
        rows = np.arange(n)[:, None]
        valid = (idx >= 0) & ~_repeats(idx)
        over = np.zeros_like(valid)
        if self.max_per_category:
            cats = np.where(valid, self.categories[np.maximum(idx, 0)], -1)
            seen = _seen_before(np.where(valid & (cats >= 0), cats, -1 - np.arange(width)))
            over = valid & (cats >= 0) & (seen >= self.max_per_category)
        # priority: allowed places in order, then over-cap ones, never invalid ones
        key = np.where(valid, over.astype(np.int64), 2) * width + np.arange(width)
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        usable = np.take_along_axis(key, order, axis=1) < 2 * width
        out_idx = np.where(usable, idx[rows, order], -1)
        out_val = np.where(usable, val[rows, order], 0.0).astype(np.float32)
        out_src: Any = np.where(usable, src[rows, order], None)  # type: ignore[call-overload]
        if out_idx.shape[1] < k:
            pad = ((0, 0), (0, k - out_idx.shape[1]))
            out_idx = np.pad(out_idx, pad, constant_values=-1)
            out_val = np.pad(out_val, pad)
            out_src = np.pad(out_src, pad, constant_values=None)  # type: ignore[call-overload]
        return out_idx, out_val, out_src


def _repeats(idx: np.ndarray) -> np.ndarray:
    """True where a row's value already appeared earlier in that row."""
    order = np.argsort(idx, axis=1, kind="stable")
    ranked = np.take_along_axis(idx, order, axis=1)
    dup = np.zeros_like(idx, dtype=bool)
    same = ranked[:, 1:] == ranked[:, :-1]
    np.put_along_axis(dup, order[:, 1:], same, axis=1)
    return dup


def _seen_before(keys: np.ndarray) -> np.ndarray:
    """For each place, how many earlier places of its row hold the same key."""
    width = keys.shape[1]
    order = np.argsort(keys, axis=1, kind="stable")
    ranked = np.take_along_axis(keys, order, axis=1)
    places = np.broadcast_to(np.arange(width), keys.shape)
    starts = np.ones(keys.shape, dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    first = np.maximum.accumulate(np.where(starts, places, 0), axis=1)
    out = np.empty_like(keys)
    np.put_along_axis(out, order, places - first, axis=1)
    return out


def candidates(
    scores: np.ndarray, m: int, source: np.ndarray | str, *, positive_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx, val = top_k(scores, m, positive_only=positive_only)
    src = np.full(idx.shape, source, dtype=object) if isinstance(source, str) else source
    return idx, val, src
