"""Time-based evaluation: fit on what happened before a split date, judge on what customers
bought in the days after it.

Relevant products of a customer: those they bought in completed orders in ``[split, end)``;
when the rules exclude bought products, those bought before the split are left out of the
truth (they can never be recommended). Customers judged: everyone who bought in the window
(those unknown before the split are served by the fallbacks, as in production), a random
sample of ``max_customers`` of them when there are more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sendwise.config import RecommendSettings
from sendwise.errors import InputError
from sendwise.recommend.data import load_interactions
from sendwise.recommend.engine import Engine, fit_components, hybrid_of, make_rules
from sendwise.recommend.hybrid import tune_weights
from sendwise.recommend.metrics import ranking_metrics
from sendwise.recommend.select import select_model, serving_ranker
from sendwise.recommend.truth import purchases_between, truth_for

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
METRICS = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage", "novelty")


class NothingToJudgeError(InputError):
    """No customer bought anything in the evaluation window."""


@dataclass
class Evaluation:
    split: datetime
    end: datetime
    k: int
    customers: int
    """Customers judged (bought in the window)."""
    known: int
    """Of them, customers with a history before the split."""
    exclude_bought: bool
    weights: dict[str, float]
    validation_map: float
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    winner: str = "hybrid"
    """What the validation window chose to serve: 'hybrid' or 'ranker'."""
    holdout: dict[str, float] = field(default_factory=dict)
    """MAP@k of the hybrid and the ranker on the validation customers held out."""
    """One row per algorithm (and 'hybrid'): the metrics at k."""

    def metric(self, algorithm: str, name: str) -> float:
        row = self.table[self.table["algorithm"] == algorithm]
        return float(row[name].iloc[0])


def choose_weights(
    wh: Warehouse, settings: RecommendSettings, cutoff: datetime, exclude_bought: bool
) -> tuple[dict[str, float], float]:
    """Hybrid weights tuned on the ``validation_days`` before ``cutoff``: fit before that
    window, judge MAP@k on it."""
    start = cutoff - timedelta(days=settings.validation_days)
    data = load_interactions(wh, settings, start)
    components = fit_components(data, settings)
    hybrid = hybrid_of(components, settings, {})
    n_items = max(data.shape[1], 1)
    cap = int(min(3000, max(200, 1.5e8 // (n_items * len(settings.algorithms)))))
    ids, relevant = truth_for(
        data,
        purchases_between(wh, start, cutoff),
        exclude_bought=exclude_bought,
        max_customers=cap,
        seed=settings.seed,
    )
    if not len(ids):
        return {n: 1.0 for n in settings.algorithms}, 0.0
    batch = hybrid.batch(ids)
    penalty = make_rules(data, settings, exclude_bought).penalty(batch)
    return tune_weights(hybrid, batch, relevant, settings.k, penalty)


def evaluate(
    wh: Warehouse,
    settings: RecommendSettings,
    split: datetime,
    *,
    exclude_bought: bool,
    end: datetime | None = None,
    max_customers: int | None = 20_000,
    progress=None,
) -> Evaluation:
    """Every algorithm and the hybrid, fitted before ``split`` and judged on
    ``[split, end)`` (``end`` = split + test_days)."""
    say = progress or (lambda _msg: None)
    end = end or split + timedelta(days=settings.test_days)
    say("choosing the hybrid's weights and training the ranker")
    chosen = select_model(wh, settings, split, exclude_bought)
    weights, val_map = chosen.weights, chosen.validation_map
    say("fitting before the split")
    data = load_interactions(wh, settings, split)
    components = fit_components(data, settings)
    rules = make_rules(data, settings, exclude_bought)
    ids, relevant = truth_for(
        data,
        purchases_between(wh, split, end),
        exclude_bought=exclude_bought,
        max_customers=max_customers,
        seed=settings.seed,
    )
    if not len(ids):
        raise NothingToJudgeError(
            f"nobody bought anything between {split:%Y-%m-%d} and {end:%Y-%m-%d} to judge the"
            " recommendations on; choose another --split or --no-evaluate"
        )
    # a product nobody bought counts as bought by one customer (finite novelty)
    n_customers = max(data.shape[0], 1)
    share = np.maximum(np.asarray(data.bought.sum(axis=0)).ravel(), 1) / n_customers
    primaries = {n: components[n] for n in settings.algorithms}
    primaries["hybrid"] = hybrid_of(components, settings, weights)
    if chosen.ranker is not None:
        primaries["ranker"] = serving_ranker(chosen, components, data, settings)
    rows = []
    for name, algo in primaries.items():
        say(f"judging {name}")
        engine = Engine(algo, rules, components, k=settings.k)
        idx = engine.top_positions(ids, settings.k)
        metrics = ranking_metrics(
            idx, relevant, settings.k, n_products=data.shape[1], item_share=share
        )
        rows.append({"algorithm": name, **metrics})
    rows_of = np.array([data.customer_pos.get(c, -1) for c in ids], dtype=np.int64)
    history = np.diff(data.confidence.indptr)
    known = int(((rows_of >= 0) & (history[np.maximum(rows_of, 0)] > 0)).sum())
    return Evaluation(
        split=split,
        end=end,
        k=settings.k,
        customers=len(ids),
        known=known,
        exclude_bought=exclude_bought,
        weights=weights,
        validation_map=val_map,
        table=pd.DataFrame(rows, columns=["algorithm", *METRICS]),
        winner=chosen.winner,
        holdout=chosen.holdout,
    )
