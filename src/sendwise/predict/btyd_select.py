"""Choose the BTYD model that serves by its error on a holdout, never a degenerate one.

Every candidate, a purchase model (BG/NBD, MBG/NBD, Pareto/NBD) with a shrinkage from
``SHRINKAGE``, is fitted on the history before the evaluation date E and judged on the window
[E, E + horizon) that follows, on the customers who had ordered before E:

- ``mae``, ``rmse``: expected vs actual orders per customer;
- ``brier``, ``auc_buys_again``: P(at least one order in the window) against "did they order";
- ``auc_p_alive``: ``p_alive`` against the same outcome (how well it ranks who is still active).

A flagged fit (:mod:`sendwise.predict.btyd_checks`) is never chosen. Among the others the
lowest ``CRITERION`` (Brier) wins, except that candidates within ``TOLERANCE`` of the best are
treated as tied (their scores differ in the fourth decimal on real shops: not evidence) and the
tie goes to the best ``auc_p_alive``, the ranking the ``p_alive`` column is used for.

Shrinkage (a log-normal prior on the parameters, see :func:`~sendwise.predict.common.maximise`)
is what lets a shop whose likelihood peaks at "nobody drops out" still get a model with a real
``p_alive``: the prior decides where the likelihood is flat, and the holdout says how much of
it the data tolerate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from sendwise.predict.btyd_pair import KINDS, Btyd, rfm

SHRINKAGE = (0.0, 1e-4, 1e-3, 1e-2)
CRITERION = "brier"  # a proper score of the event the profiles act on: buys again or not
TOLERANCE = 0.001  # Brier differences below this are ties, broken by auc_p_alive


@dataclass
class Candidate:
    kind: str
    shrinkage: float
    btyd: Btyd
    metrics: dict[str, float]

    @property
    def name(self) -> str:
        return f"{KINDS[self.kind][0]} (shrinkage {self.shrinkage:g})"

    def row(self) -> dict:
        return {
            "model": KINDS[self.kind][0], "kind": self.kind, "shrinkage": self.shrinkage,
            **self.metrics, "flags": list(self.btyd.flags),
            "params": dict(self.btyd.purchases.params_),
            "log_likelihood": float(self.btyd.purchases.log_likelihood_),
        }  # fmt: skip


def holdout_metrics(btyd: Btyd, frame: pd.DataFrame, horizon_days: int) -> dict[str, float]:
    """The holdout errors of a fitted pair on labelled features (``label_orders``)."""
    _x, _tx, _t, _m, buyer = rfm(frame)
    pred = btyd.predict(frame.loc[buyer], horizon_days, 0.0)
    actual = frame.loc[buyer, "label_orders"].to_numpy(dtype=np.float64)
    expected = pred["expected_orders"].to_numpy()
    alive = pred["p_alive"].to_numpy()
    p_any = btyd.p_any(frame.loc[buyer], horizon_days)
    bought = actual > 0
    both = 0 < bought.sum() < bought.size
    repeat = _x[buyer] > 0
    return {
        "customers": int(buyer.sum()),
        "mae": float(np.mean(np.abs(expected - actual))),
        "rmse": float(np.sqrt(np.mean((expected - actual) ** 2))),
        "total_predicted": float(expected.sum()),
        "total_actual": float(actual.sum()),
        "brier": float(np.mean((p_any - bought) ** 2)),
        "auc_buys_again": float(roc_auc_score(bought, p_any)) if both else float("nan"),
        "auc_p_alive": float(roc_auc_score(bought, alive)) if both else float("nan"),
        "mean_p_alive": float(np.mean(alive)),
        "p_alive_repeat_min": float(np.min(alive[repeat])) if repeat.any() else float("nan"),
        "p_alive_repeat_max": float(np.max(alive[repeat])) if repeat.any() else float("nan"),
    }


def judge_candidates(
    frame: pd.DataFrame,
    horizon_days: int,
    kinds: Iterable[str] = tuple(KINDS),
    shrinkage: Iterable[float] = SHRINKAGE,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Fit every candidate on ``frame``'s history and judge it on its labels, best first
    (:func:`rank`)."""
    say = progress or (lambda _m: None)
    out = []
    for kind in kinds:
        for s in shrinkage:
            say(f"btyd: {KINDS[kind][0]}, shrinkage {s:g}")
            btyd = Btyd.fit(frame, kind, s)
            out.append(Candidate(kind, s, btyd, holdout_metrics(btyd, frame, horizon_days)))
    return rank(out)


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: unflagged candidates within ``TOLERANCE`` of the lowest ``CRITERION`` by
    ``auc_p_alive`` (highest first), then the other unflagged ones by ``CRITERION``, then the
    flagged ones."""

    def score(c: Candidate) -> float:
        value = c.metrics[CRITERION]
        return value if np.isfinite(value) else float("inf")

    def auc(c: Candidate) -> float:
        value = c.metrics["auc_p_alive"]
        return value if np.isfinite(value) else float("-inf")

    usable = [c for c in candidates if not c.btyd.flags]
    best = min((score(c) for c in usable), default=float("inf"))
    tied = [c for c in usable if score(c) <= best + TOLERANCE]
    return (
        sorted(tied, key=lambda c: (-auc(c), score(c)))
        + sorted((c for c in usable if c not in tied), key=score)
        + sorted((c for c in candidates if c.btyd.flags), key=score)
    )


__all__ = [
    "CRITERION",
    "SHRINKAGE",
    "TOLERANCE",
    "Candidate",
    "holdout_metrics",
    "judge_candidates",
    "rank",
]
