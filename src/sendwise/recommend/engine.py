"""The engine that serves: one algorithm, the business rules and the fallback chain.

``fit_components`` fits every configured algorithm once; an :class:`Engine` puts one of them
(or the hybrid of all) in front of the rules and the fallbacks, so the evaluation judges each
algorithm exactly as it would be served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sendwise.config import RecommendSettings
from sendwise.recommend.als import ALS
from sendwise.recommend.base import Batch, Fresh, Recommender, chunk_size, top_k
from sendwise.recommend.content import Content
from sendwise.recommend.cooccur import CoOccurrence
from sendwise.recommend.data import Interactions
from sendwise.recommend.hybrid import Hybrid, dominant
from sendwise.recommend.popularity import BuyAgain, Popularity, RecentPopularity, SegmentPopularity
from sendwise.recommend.rules import Rules, candidates

POPULARITY, SEGMENT = "popularity", "segment_popularity"
FALLBACK_SEGMENT, FALLBACK_GLOBAL = "fallback:segment_popularity", "fallback:popularity"


def make_algorithm(name: str, settings: RecommendSettings) -> Recommender:
    """A new, unfitted algorithm by its settings name."""
    if name == "popularity":
        return Popularity()
    if name == "recent_popularity":
        return RecentPopularity()
    if name == SEGMENT:
        return SegmentPopularity()
    if name == "buy_again":
        return BuyAgain()
    if name in ("bought_together", "viewed_together"):
        source = name.removesuffix("_together")
        return CoOccurrence(source, neighbours=settings.neighbours, threads=settings.threads)
    if name == "als":
        return ALS(
            factors=settings.factors,
            iterations=settings.iterations,
            regularization=settings.regularization,
            alpha=settings.alpha,
            threads=settings.threads,
            seed=settings.seed,
        )
    if name == "content":
        return Content()
    raise ValueError(f"unknown algorithm {name!r}")


def fit_components(data: Interactions, settings: RecommendSettings) -> dict[str, Recommender]:
    """Every configured algorithm, plus the two popularity lists the fallbacks need, fitted."""
    names = list(dict.fromkeys([*settings.algorithms, SEGMENT, POPULARITY]))
    return {name: make_algorithm(name, settings).fit(data) for name in names}


def make_rules(data: Interactions, settings: RecommendSettings, exclude_bought: bool) -> Rules:
    return Rules.build(
        data,
        exclude_bought=exclude_bought,
        max_per_category=settings.max_per_category,
        min_price=settings.min_price,
        max_price=settings.max_price,
        boost=settings.boost,
        bury=settings.bury,
        cap_derived=settings.cap_derived_categories,
    )


def hybrid_of(
    components: dict[str, Recommender], settings: RecommendSettings, weights: dict[str, float]
) -> Hybrid:
    used = {n: components[n] for n in settings.algorithms}
    data = next(iter(components.values())).data_
    return Hybrid(used, weights, prefitted=True).fit(data)


@dataclass(frozen=True)
class Recommendation:
    product_id: str
    score: float
    source: str
    """The algorithm (for the hybrid: its strongest component) or fallback that chose it."""


class Engine:
    """``primary`` in front of the rules and the fallback chain, all fitted on one data set."""

    def __init__(
        self,
        primary: Recommender,
        rules: Rules,
        components: dict[str, Recommender],
        *,
        k: int = 10,
        event_weights: dict[str, float] | None = None,
    ):
        self.primary = primary
        self.rules = rules
        self.segment = components[SEGMENT]
        self.popular = components[POPULARITY]
        self.k = k
        self.event_weights = event_weights or {}
        self.data = primary.data_

    def _choose(self, batch: Batch, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = 3 * k
        names: list[str] = []
        if isinstance(self.primary, Hybrid):
            names, stack = self.primary.parts(batch)
            scores = stack.sum(axis=0) if names else np.zeros((len(batch), self.data.shape[1]))
        else:
            scores = self.primary.scores(batch)
        scores = self.rules.penalised(np.array(scores, np.float32), batch)
        idx, val = top_k(scores, m, positive_only=self.primary.sparse)
        src = (
            dominant(names, stack, idx) if names else np.full(idx.shape, self.primary.name, object)
        )
        own = (idx, val, src)
        seg_src = np.where(batch.segments >= 0, FALLBACK_SEGMENT, FALLBACK_GLOBAL).astype(object)
        seg_scores = self.rules.penalised(self.segment.scores(batch).copy(), batch)
        seg = candidates(seg_scores, m, np.repeat(seg_src[:, None], m, axis=1), positive_only=True)
        # the last tier takes unsold products too, so that K products always exist
        pop_scores = self.rules.penalised(self.popular.scores(batch), batch)
        pop = candidates(pop_scores, m, FALLBACK_GLOBAL, positive_only=False)
        return self.rules.choose([own, seg, pop], k)

    def batch(self, customer_ids: Sequence[str] | np.ndarray) -> Batch:
        return self.primary.batch(customer_ids)

    def recommend(
        self, customer_id: str, k: int | None = None, *, fresh: Fresh = ()
    ) -> list[Recommendation]:
        """The top ``k`` for one customer, counting ``fresh`` interactions since the fit:
        (event name, product_id) pairs or product ids (taken as viewed). No retraining."""
        k = k or self.k
        batch = self.batch([customer_id])
        if fresh:
            batch = batch.with_fresh(self.data, fresh, self.event_weights)
        idx, val, src = self._choose(batch, k)
        return [
            Recommendation(str(self.data.products[j]), float(v), str(s))
            for j, v, s in zip(idx[0], val[0], src[0], strict=True)
            if j >= 0
        ]

    def recommend_many(
        self, customer_ids: Sequence[str] | np.ndarray, k: int | None = None
    ) -> pd.DataFrame:
        """customer_id, rank, product_id, score, source: k rows per customer."""
        k = k or self.k
        ids = np.asarray(list(customer_ids), dtype=object)
        width = self.data.shape[1] * (len(getattr(self.primary, "components", {})) + 3)
        step = chunk_size(width)
        frames = [self._frame(ids[i : i + step], k) for i in range(0, len(ids), step)]
        if not frames:
            return pd.DataFrame(
                {c: [] for c in ("customer_id", "rank", "product_id", "score", "source")}
            )
        return pd.concat(frames, ignore_index=True)

    def top_positions(
        self, customer_ids: Sequence[str] | np.ndarray, k: int | None = None
    ) -> np.ndarray:
        """(customers x k) product positions, -1 where empty (for the evaluation)."""
        k = k or self.k
        ids = np.asarray(list(customer_ids), dtype=object)
        width = self.data.shape[1] * (len(getattr(self.primary, "components", {})) + 3)
        step = chunk_size(width)
        parts = [
            self._choose(self.batch(ids[i : i + step]), k)[0] for i in range(0, len(ids), step)
        ]
        return np.vstack(parts) if parts else np.zeros((0, k), np.int64)

    def _frame(self, ids: np.ndarray, k: int) -> pd.DataFrame:
        idx, val, src = self._choose(self.batch(ids), k)
        keep = idx.ravel() >= 0
        return pd.DataFrame(
            {
                "customer_id": np.repeat(ids, k)[keep],
                "rank": np.tile(np.arange(1, k + 1), len(ids))[keep],
                "product_id": self.data.products[idx.ravel()[keep]],
                "score": val.ravel()[keep].astype(np.float64),
                "source": src.ravel()[keep],
            }
        )
