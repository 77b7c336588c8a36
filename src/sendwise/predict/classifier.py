"""Choosing, fitting and calibrating one classifier inside the training window.

For each learner, a bounded random search draws ``search_iterations`` candidates and scores
each by ROC-AUC over stratified k-fold splits grouped by customer (a customer's rows from
several snapshots never sit on both sides of a split). The best candidate of the best learner
wins. The search runs on a stratified sample of at most ``search_rows`` rows (time stays
bounded on large shops). Its out-of-fold scores fit an isotonic calibration, so that a
calibrated 0.8 means 80% in the training window, and the winner is refitted on every row.
Class imbalance is a search dimension (class weights / ``scale_pos_weight``); the calibration
undoes the shift in probabilities that the weights cause.

The folds: scikit-learn's ``StratifiedGroupKFold`` up to ``EXACT_FOLD_GROUPS`` customers; above
it a vectorised equivalent (:func:`group_folds`), because its per-customer Python loop took 55 s
of a 100,000-customer training run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from sendwise.errors import InputError
from sendwise.predict.learners import as_matrix, make_learner, sample_params

logger = logging.getLogger(__name__)
EPS = 1e-4
TIE_BREAK = 1e-6
EXACT_FOLD_GROUPS = 20_000


class Calibrator:
    """Isotonic map from raw log-odds to probability, stored as its breakpoints."""

    def __init__(self, x: np.ndarray | None = None, y: np.ndarray | None = None) -> None:
        self.x_, self.y_ = x, y

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS).fit(raw, y)
        self.x_, self.y_ = iso.X_thresholds_.copy(), iso.y_thresholds_.copy()
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        # Isotonic steps tie customers the raw score tells apart (the backtest lost 0.0015
        # ROC-AUC on Online Retail to them): a millionth of the logistic of the raw score,
        # below any meaningful probability, breaks the ties in the raw score's order.
        return np.interp(raw, self.x_, self.y_) + TIE_BREAK * expit(raw)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": self.x_.tolist(), "y": self.y_.tolist()}  # type: ignore[union-attr]

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Calibrator:
        return cls(np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.float64))


@dataclass
class Candidate:
    learner: str
    params: dict[str, Any]
    cv_auc: float
    fold_aucs: list[float]


@dataclass
class FittedClassifier:
    learner: Any
    calibrator: Calibrator
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    best_per_learner: dict[str, Any] = field(default_factory=dict)
    """learner name -> (fitted learner, calibrator) of its best candidate, for the report."""
    search_rows: np.ndarray | None = None
    """Positions (in the training frame) of the rows the search and calibration used."""
    oof: np.ndarray | None = None
    """The winner's out-of-fold raw scores on ``search_rows`` (customers held out)."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator(self.learner.decision(X))


def fit_classifier(
    frame: pd.DataFrame,
    label: str,
    features: list[str],
    *,
    learners: list[str],
    iterations: int,
    folds: int,
    seed: int,
    search_rows: int = 50_000,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    fixed: list[tuple[str, dict[str, Any]]] | None = None,
) -> FittedClassifier:
    """``fixed``: the candidates to cross-validate instead of a random search (the refit of a
    configuration the backtest chose passes just that one)."""
    say = progress or (lambda _m: None)
    y = frame[label].to_numpy().astype(np.int8)
    if y.min() == y.max():
        raise InputError(
            f"every training row has {label} = {int(y[0])}: nothing to learn."
            " Use a longer history, another date, or a longer horizon."
        )
    X = as_matrix(frame, features)
    # OpenMP threads cost more than they save on small data (and under load they spin).
    threads = threads or (1 if len(y) < 100_000 else 2)
    # The search runs on a stratified sample; the winner is refitted on every row.
    search = _sample_rows(y, search_rows, seed)
    Xs, ys = X[search], y[search]
    groups = frame["customer_id"].to_numpy()[search]
    splits = group_folds(ys, groups, folds, seed, label)
    rng = np.random.default_rng(seed)
    candidates: list[Candidate] = []
    oof_of: dict[int, np.ndarray] = {}
    drawn = fixed or [(n, p) for n in learners for p in sample_params(n, iterations, rng)]
    learners = list(dict.fromkeys(name for name, _ in drawn))
    for name, params in drawn:
        say(f"{label}: {name} {_short(params)}")
        oof, aucs = out_of_fold(Xs, ys, splits, name, features, params, threads, seed)
        candidates.append(Candidate(name, params, float(np.mean(aucs)), aucs))
        oof_of[len(candidates) - 1] = oof
    best_per_learner: dict[str, Any] = {}
    for name in learners:
        idx = max(
            (i for i, c in enumerate(candidates) if c.learner == name),
            key=lambda i: candidates[i].cv_auc,
        )
        cand = candidates[idx]
        say(f"{label}: refitting {name} on {len(y):,} rows")
        model = make_learner(name, features, cand.params, threads=threads, seed=seed).fit(X, y)
        best_per_learner[name] = (model, Calibrator().fit(oof_of[idx], ys), cand)
    winner = max(best_per_learner, key=lambda n: best_per_learner[n][2].cv_auc)
    model, calibrator, chosen = best_per_learner[winner]
    logger.info("%s: chose %s (cv auc %.4f)", label, winner, chosen.cv_auc)
    oof = oof_of[candidates.index(chosen)]
    return FittedClassifier(model, calibrator, chosen, candidates, best_per_learner, search, oof)


def calibrate(
    frame: pd.DataFrame, label: str, features: list[str], config: tuple[str, dict[str, Any]],
    *, folds: int, seed: int,
) -> Calibrator:  # fmt: skip
    """The isotonic calibration ``fit_classifier`` would give ``config`` on ``frame`` (all of
    its rows searched), without the refit: for a backtest origin whose model, the same
    configuration fitted on the same rows, the backtest's ranking already fitted."""
    y = frame[label].to_numpy().astype(np.int8)
    X = as_matrix(frame, features)
    threads = 1 if len(y) < 100_000 else 2
    splits = group_folds(y, frame["customer_id"].to_numpy(), folds, seed, label)
    oof, _ = out_of_fold(X, y, splits, config[0], features, config[1], threads, seed)
    return Calibrator().fit(oof, y)


def out_of_fold(
    X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], name: str,
    features: list[str], params: dict[str, Any], threads: int, seed: int,
) -> tuple[np.ndarray, list[float]]:  # fmt: skip
    """Raw scores of every row by the model of the folds that held it out, and each fold's AUC."""
    oof = np.zeros(len(y))
    aucs = []
    for tr, va in splits:
        model = make_learner(name, features, params, threads=threads, seed=seed)
        model.fit(X[tr], y[tr])
        oof[va] = model.decision(X[va])
        aucs.append(float(roc_auc_score(y[va], oof[va])))
    return oof, aucs


def group_folds(
    y: np.ndarray, groups: np.ndarray, folds: int, seed: int, label: str = "the label"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold splits that keep each group (customer) on one side.

    Up to ``EXACT_FOLD_GROUPS`` groups: ``StratifiedGroupKFold``. Above: the groups, shuffled
    with ``seed``, are ordered by their share of positive rows and dealt round-robin to the
    folds, so that every fold gets the same mix of all-negative, mixed and all-positive
    customers (the positive rate of the folds differs in the fourth decimal).
    """
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise InputError(f"too few positive or negative rows of {label} to cross-validate")
    codes, inverse = np.unique(groups.astype(str), return_inverse=True)
    if len(codes) <= EXACT_FOLD_GROUPS:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros((len(y), 1)), y, inverse))
    share = np.bincount(inverse, weights=y) / np.bincount(inverse)
    order = np.random.default_rng(seed).permutation(len(codes))
    order = order[np.argsort(share[order], kind="stable")]
    fold_of = np.empty(len(codes), dtype=np.int64)
    fold_of[order] = np.arange(len(codes)) % k
    row_fold = fold_of[inverse]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(k)]


def _sample_rows(y: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Indices of a stratified sample of at most ``rows`` rows (all of them when fewer)."""
    if len(y) <= rows:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = [
        rng.choice(
            np.flatnonzero(y == c), size=max(1, round(rows * np.mean(y == c))), replace=False
        )
        for c in (0, 1)
    ]
    return np.sort(np.concatenate(keep))


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
