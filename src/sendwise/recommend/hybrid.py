"""The hybrid: a weighted blend of the other algorithms, weights chosen on validation.

Each component's scores are put on one scale per customer (divided by that customer's best
score, negatives cut to 0), then summed with the weights. The weights are found by coordinate
ascent on MAP@k over a validation window that follows the data the components were fitted on:
start from the best single algorithm, then try each component at a few weights, keep what
helps, twice round.
"""

from __future__ import annotations

import logging

import numpy as np

from sendwise.recommend.base import Batch, Recommender, top_k
from sendwise.recommend.data import Interactions
from sendwise.recommend.metrics import average_precision

logger = logging.getLogger(__name__)
GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


def scaled(scores: np.ndarray) -> np.ndarray:
    """Scores divided by each row's best, negatives and 'no opinion' set to 0."""
    pos = np.maximum(scores, 0.0, dtype=np.float32)
    best = pos.max(axis=1, keepdims=True)
    np.divide(pos, best, out=pos, where=best > 0)
    return pos


class Hybrid(Recommender):
    """``components`` fitted here (or already fitted with ``prefitted=True``)."""

    name = "hybrid"

    def __init__(
        self,
        components: dict[str, Recommender],
        weights: dict[str, float] | None = None,
        prefitted: bool = False,
    ):
        self.components = components
        self.weights = weights
        self.prefitted = prefitted

    def _fit(self, data: Interactions) -> None:
        if not self.prefitted:
            for algo in self.components.values():
                algo.fit(data)
        weights = self.weights or {name: 1.0 for name in self.components}
        self.weights_ = {name: float(weights.get(name, 0.0)) for name in self.components}

    def stacked(self, batch: Batch) -> np.ndarray:
        """(components x customers x products) scaled scores, in ``components`` order."""
        return np.stack([scaled(a.scores(batch)) for a in self.components.values()])

    def blend(self, stacked: np.ndarray, weights: dict[str, float] | None = None) -> np.ndarray:
        w = weights or self.weights_
        vec = np.array([w.get(n, 0.0) for n in self.components], np.float32)
        return np.tensordot(vec, stacked, axes=1)

    def parts(self, batch: Batch) -> tuple[list[str], np.ndarray]:
        """The active components' names and their weighted, scaled scores (stacked)."""
        names = [n for n in self.components if self.weights_.get(n, 0.0) > 0]
        if not names:
            return [], np.zeros((0, len(batch), self.data_.shape[1]), np.float32)
        stack = np.stack(
            [self.weights_[n] * scaled(self.components[n].scores(batch)) for n in names]
        )
        return names, stack

    def _scores(self, batch: Batch) -> np.ndarray:
        _, stack = self.parts(batch)
        return stack.sum(axis=0)


def dominant(names: list[str], stack: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """For each chosen product (``idx``: customers x m positions), the component whose
    weighted score contributed most to it."""
    if not names:
        return np.full(idx.shape, "hybrid", dtype=object)
    safe = np.maximum(idx, 0)
    picked = np.stack([np.take_along_axis(part, safe, axis=1) for part in stack])
    return np.asarray(names, dtype=object)[picked.argmax(axis=0)]


def tune_weights(
    hybrid: Hybrid,
    batch: Batch,
    relevant: list[np.ndarray],
    k: int,
    penalty: np.ndarray,
) -> tuple[dict[str, float], float]:
    """Weights that maximise MAP@k of the fitted ``hybrid`` on ``batch`` whose customers
    went on to buy ``relevant`` (product positions per customer). ``penalty`` (same shape as
    the scores, 0 or -inf) carries the business rules. Returns (weights, MAP@k)."""
    stacked = hybrid.stacked(batch)
    names = list(hybrid.components)

    def score(weights: dict[str, float]) -> float:
        idx, _ = top_k(hybrid.blend(stacked, weights) + penalty, k, positive_only=True)
        return float(np.mean(average_precision(idx, relevant, k))) if len(relevant) else 0.0

    singles = {n: score({n: 1.0}) for n in names}
    best_name = max(singles, key=lambda n: singles[n])
    weights = {n: (1.0 if n == best_name else 0.0) for n in names}
    best = singles[best_name]
    for _ in range(2):
        improved = False
        for name in names:
            for w in GRID:
                if w == weights[name]:
                    continue
                trial = {**weights, name: w}
                if not any(v > 0 for v in trial.values()):
                    continue
                got = score(trial)
                if got > best + 1e-9:
                    best, weights, improved = got, trial, True
        if not improved:
            break
    logger.info("hybrid weights %s (validation MAP@%d %.4f)", weights, k, best)
    return weights, best
