"""Business rules and the fallback chain that turn scores into K products per customer.

Rules on products (in stock, has a price, price band, bury, boost) and 'already bought' act on
the scores before the top candidates are taken; 'at most N per category' acts on the ranked
candidates. Candidates come from the algorithm first, then the customer's segment's
bestsellers, then the global ones, so a customer always gets K products as long as K products
pass the rules (the category cap gives way last, when nothing else is left).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Per product: category code, -1 when it has none (never capped)."""
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
        return cls(allowed, multiplier, codes, exclude_bought, max_per_category)

    def penalised(self, scores: np.ndarray, batch: Batch) -> np.ndarray:
        """The scores with boosts applied and forbidden places set to -inf (in place)."""
        np.multiply(scores, self.multiplier, out=scores, where=scores > 0)
        scores[:, ~self.allowed] = -np.inf
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
        flat = pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), width),
                "pos": np.tile(np.arange(width), n),
                "item": idx.ravel(),
            }
        )
        flat = flat[flat["item"] >= 0].drop_duplicates(["row", "item"])
        flat["cat"] = self.categories[flat["item"].to_numpy()]
        over = np.zeros(len(flat), bool)
        if self.max_per_category:
            seen = flat.groupby(["row", "cat"], sort=False).cumcount().to_numpy()
            over = (flat["cat"].to_numpy() >= 0) & (seen >= self.max_per_category)
        flat["over"] = over
        flat = flat.sort_values(["row", "over", "pos"], kind="stable")
        flat = flat[flat.groupby("row", sort=False).cumcount().to_numpy() < k]
        rank = flat.groupby("row", sort=False).cumcount().to_numpy()
        rows, cols = flat["row"].to_numpy(), flat["pos"].to_numpy()
        out_idx = np.full((n, k), -1, np.int64)
        out_val = np.zeros((n, k), np.float32)
        out_src = np.full((n, k), None, dtype=object)
        out_idx[rows, rank] = idx[rows, cols]
        out_val[rows, rank] = val[rows, cols]
        out_src[rows, rank] = src[rows, cols]
        return out_idx, out_val, out_src


def candidates(
    scores: np.ndarray, m: int, source: np.ndarray | str, *, positive_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx, val = top_k(scores, m, positive_only=positive_only)
    src = np.full(idx.shape, source, dtype=object) if isinstance(source, str) else source
    return idx, val, src
