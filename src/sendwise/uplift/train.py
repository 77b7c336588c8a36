"""Choosing an uplift model: every learner and setting is cross-validated on the experiment,
the one with the largest Qini coefficient on the rows it did not see wins, and it is refitted
on every row.

The folds are stratified by arm and outcome together (each fold keeps the experiment's split
and response rates). The winner's out-of-fold scores, one per row from the model that did not
see that row, make the report: its Qini curve, uplift by decile and uplift at k are figures on
unseen rows. The search runs on a stratified sample of at most ``search_rows`` rows, so that a
million-row experiment is searched in bounded time; the refit uses all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from sendwise.errors import InputError
from sendwise.uplift import metrics
from sendwise.uplift.data import Experiment
from sendwise.uplift.models import LEARNERS, make_model

logger = logging.getLogger(__name__)

GRID: tuple[dict[str, Any], ...] = (
    {"num_leaves": 7, "min_child_samples": 100, "n_estimators": 300, "learning_rate": 0.02},
    {"num_leaves": 4, "min_child_samples": 200, "n_estimators": 300, "learning_rate": 0.03},
)
"""Small trees, many rows per leaf: an email's effect is a small difference of two noisy rates,
and deeper trees fit the noise (cross-validated on Hillstrom, docs/uplift.md)."""
KS = (0.1, 0.2, 0.3, 0.5)


@dataclass
class Candidate:
    learner: str
    params: dict[str, Any]
    qini: float
    auuc: float
    uplift_at_30: float
    fold_qini: list[float]


@dataclass
class FittedUplift:
    model: Any
    chosen: Candidate
    candidates: list[Candidate]
    oof: np.ndarray
    """The winner's out-of-fold uplift for each row of ``rows``."""
    rows: np.ndarray
    features: list[str]
    report: dict[str, Any] = field(default_factory=dict)


def _strata(exp: Experiment) -> np.ndarray:
    return exp.treatment.astype(np.int64) * 2 + (exp.y > 0).astype(np.int64)


def _sample(strata: np.ndarray, rows: int, seed: int) -> np.ndarray:
    if len(strata) <= rows:
        return np.arange(len(strata))
    rng = np.random.default_rng(seed)
    keep = [
        rng.choice(
            np.flatnonzero(strata == s),
            size=max(1, round(rows * np.mean(strata == s))),
            replace=False,
        )
        for s in np.unique(strata)
    ]
    return np.sort(np.concatenate(keep))


def cross_validate(
    exp: Experiment,
    learner: str,
    params: dict[str, Any],
    *,
    folds: int,
    seed: int,
    rows: np.ndarray,
    threads: int = 1,
) -> tuple[np.ndarray, list]:
    """Out-of-fold uplift of each row in ``rows``, and each fold's Qini coefficient."""
    X = exp.X.to_numpy(np.float64)[rows]
    y, t = exp.y[rows], exp.treatment[rows]
    oof = np.zeros(len(rows))
    scores = []
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, va in split.split(X, _strata(exp)[rows]):
        model = make_model(learner, **params, n_jobs=threads, random_state=seed)
        oof[va] = model.fit(X[tr], y[tr], t[tr]).predict(X[va])
        scores.append(metrics.qini_coefficient(y[va], oof[va], t[va]))
    return oof, scores


def fit_uplift(
    exp: Experiment,
    *,
    learners: tuple[str, ...] = tuple(LEARNERS),
    grid: tuple[dict[str, Any], ...] = GRID,
    folds: int = 3,
    seed: int = 0,
    search_rows: int = 100_000,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> FittedUplift:
    say = progress or (lambda _m: None)
    if len(exp) == 0:
        raise InputError("the experiment has no rows")
    unknown = [name for name in learners if name not in LEARNERS]
    if unknown or not learners:
        raise InputError(f"learners are among {', '.join(LEARNERS)}, got {list(learners)}")
    # One LightGBM thread by default: the search runs on at most 100,000 rows, where threads
    # cost more than they save, and on a shared machine OpenMP threads spin (bench_uplift.py:
    # 1,000,000 rows took 91 s with one thread, and had not finished after 15 minutes with two
    # under a load of 10).
    threads = threads or 1
    rows = _sample(_strata(exp), search_rows, seed)
    best: tuple[Candidate, np.ndarray] | None = None
    candidates = []
    for learner in learners:
        for params in grid:
            say(f"cross-validating {learner} {params}")
            oof, fold_qini = cross_validate(
                exp, learner, params, folds=folds, seed=seed, rows=rows, threads=threads
            )
            y, t = exp.y[rows], exp.treatment[rows]
            cand = Candidate(
                learner,
                dict(params),
                float(np.mean(fold_qini)),
                metrics.auuc(y, oof, t),
                metrics.uplift_at_k(y, oof, t, 0.3),
                fold_qini,
            )
            candidates.append(cand)
            if best is None or cand.qini > best[0].qini:
                best = (cand, oof)
    assert best is not None
    chosen, oof = best
    say(f"refitting {chosen.learner} on {len(exp):,} rows")
    model = make_model(chosen.learner, **chosen.params, n_jobs=threads, random_state=seed)
    model.fit(exp.X.to_numpy(np.float64), exp.y, exp.treatment)
    logger.info("uplift: chose %s (cv qini %.5f)", chosen.learner, chosen.qini)
    fitted = FittedUplift(model, chosen, candidates, oof, rows, list(exp.X.columns))
    fitted.report = report(exp.y[rows], oof, exp.treatment[rows], candidates=candidates)
    return fitted


def report(
    y: np.ndarray,
    uplift: np.ndarray,
    treatment: np.ndarray,
    *,
    candidates: list[Candidate] | None = None,
) -> dict[str, Any]:
    """Figures of ``uplift`` on an experiment: Qini, AUUC, uplift at k, deciles, the curve."""
    n, q = metrics.qini_curve(y, uplift, treatment)
    points = np.unique(np.searchsorted(n, np.linspace(0, n[-1], 101)).clip(0, len(n) - 1))
    sent, held = treatment == 1, treatment == 0
    out: dict[str, Any] = {
        "rows": len(y),
        "treated": int(sent.sum()),
        "control": int(held.sum()),
        "average_effect": float(y[sent].mean() - y[held].mean()),
        "qini_coefficient": metrics.qini_coefficient(y, uplift, treatment),
        "auuc": metrics.auuc(y, uplift, treatment),
        "uplift_at_k": {f"{k:g}": metrics.uplift_at_k(y, uplift, treatment, k) for k in KS},
        "uplift_at_k_by_group": {
            f"{k:g}": metrics.uplift_at_k(y, uplift, treatment, k, "by_group") for k in KS
        },
        "deciles": metrics.uplift_by_decile(y, uplift, treatment).to_dict("records"),
        "qini_curve": {"share": (n[points] / n[-1]).tolist(), "qini": q[points].tolist()},
    }
    if candidates is not None:
        out["candidates"] = [vars(c) for c in candidates]
    return out


def candidates_frame(fitted: FittedUplift) -> pd.DataFrame:
    return pd.DataFrame([vars(c) for c in fitted.candidates]).drop(columns="fold_qini")
