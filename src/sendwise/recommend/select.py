"""What serves: the hybrid with tuned weights, or the learned ranker, decided on validation.

Everything is fitted on the history before the validation window (the last
``validation_days`` before the cutoff) and judged on what customers bought in the window. The
judged customers are split at random: on 70% the hybrid's weights are tuned and the ranker is
trained, on the other 30% both are judged (MAP@k, the business rules applied, without the
fallbacks, the same for both). The ranker serves when it wins there. Then both are refitted on
every validation customer: the weights are tuned again and the ranker retrained, and the model
that serves at the cutoff uses the algorithms refitted on everything before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from sendwise.recommend.base import top_k
from sendwise.recommend.data import Interactions, load_interactions
from sendwise.recommend.engine import fit_components, hybrid_of, make_rules
from sendwise.recommend.hybrid import tune_weights
from sendwise.recommend.metrics import average_precision
from sendwise.recommend.ranker import Ranker
from sendwise.recommend.truth import purchases_between, truth_for

if TYPE_CHECKING:
    from sendwise.config import RecommendSettings
    from sendwise.recommend.base import Recommender
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
HOLDOUT = 0.3


@dataclass
class Selection:
    """The outcome of the validation window."""

    start: datetime
    cutoff: datetime
    weights: dict[str, float]
    validation_map: float
    """MAP@k of the hybrid tuned on every validation customer (in-sample)."""
    winner: str = "hybrid"
    """'hybrid' or 'ranker'."""
    holdout: dict[str, float] = field(default_factory=dict)
    """MAP@k of each contender on the validation customers held out of tuning/training."""
    customers: int = 0
    ranker: Ranker | None = None
    """Trained on every validation customer (None when off or nothing to learn from); it
    serves only when ``winner`` is 'ranker', and is judged in the evaluation either way."""


def make_ranker(components: dict[str, Recommender], settings: RecommendSettings) -> Ranker:
    used = {n: components[n] for n in settings.algorithms}
    return Ranker(
        used, candidates=settings.ranker_candidates, seed=settings.seed, threads=settings.threads
    )


def select_model(
    wh: Warehouse,
    settings: RecommendSettings,
    cutoff: datetime,
    exclude_bought: bool,
) -> Selection:
    """Tune the hybrid, train the ranker and choose between them on the ``validation_days``
    before ``cutoff``."""
    start = cutoff - timedelta(days=settings.validation_days)
    data = load_interactions(wh, settings, start)
    components = fit_components(data, settings)
    hybrid = hybrid_of(components, settings, {})
    n_items = max(data.shape[1], 1)
    cap = int(min(5000, max(200, 1.5e8 // (n_items * (len(settings.algorithms) + 2)))))
    ids, relevant = truth_for(
        data,
        purchases_between(wh, start, cutoff),
        exclude_bought=exclude_bought,
        max_customers=cap,
        seed=settings.seed,
    )
    if not len(ids):
        return Selection(start, cutoff, {n: 1.0 for n in settings.algorithms}, 0.0)
    rules = make_rules(data, settings, exclude_bought)
    k = settings.k

    def judged(part: np.ndarray):
        batch = hybrid.batch(ids[part])
        return batch, [relevant[i] for i in part], rules.penalty(batch)

    selection = Selection(start, cutoff, {}, 0.0, customers=len(ids))
    if settings.ranker and len(ids) >= 20:
        order = np.random.default_rng(settings.seed).permutation(len(ids))
        n_out = max(1, round(HOLDOUT * len(ids)))
        fit_part, out_part = np.sort(order[n_out:]), np.sort(order[:n_out])
        batch, rel, penalty = judged(fit_part)
        weights, _ = tune_weights(hybrid, batch, rel, k, penalty)
        ranker = make_ranker(components, settings).fit(data)
        ranker.train(batch, rel, blocked=~np.isfinite(penalty))
        batch, rel, penalty = judged(out_part)
        hybrid.weights_ = {n: float(weights.get(n, 0.0)) for n in hybrid.components}
        selection.holdout = {
            "hybrid": _map(hybrid.scores(batch) + penalty, rel, k),
            "ranker": _map(ranker.scores(batch) + penalty, rel, k)
            if ranker.model_ is not None
            else 0.0,
        }
        if selection.holdout["ranker"] > selection.holdout["hybrid"]:
            selection.winner = "ranker"
    batch, rel, penalty = judged(np.arange(len(ids)))
    selection.weights, selection.validation_map = tune_weights(hybrid, batch, rel, k, penalty)
    if settings.ranker and selection.holdout:
        ranker = make_ranker(components, settings).fit(data)
        selection.ranker = ranker.train(batch, rel, blocked=~np.isfinite(penalty))
    logger.info(
        "validation %s..%s: %s serves (%s)", f"{start:%Y-%m-%d}", f"{cutoff:%Y-%m-%d}",
        selection.winner, selection.holdout,
    )  # fmt: skip
    return selection


def serving_ranker(
    selection: Selection, components: dict[str, Recommender], data: Interactions,
    settings: RecommendSettings,
) -> Ranker:  # fmt: skip
    """The selection's trained ranker over ``components`` fitted on ``data`` (later data)."""
    if selection.ranker is None:
        raise ValueError("the selection has no trained ranker")
    ranker = make_ranker(components, settings).fit(data)
    ranker.model_ = selection.ranker.model_
    ranker.trained_on_ = selection.ranker.trained_on_
    return ranker


def _map(scores: np.ndarray, relevant: list[np.ndarray], k: int) -> float:
    idx, _ = top_k(scores, k, positive_only=True)
    return float(np.mean(average_precision(idx, relevant, k))) if relevant else 0.0
