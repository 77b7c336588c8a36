"""The rolling-origin backtest: it chooses the learner and its settings and gives the figures.

At each origin E of the plan (dataset.py), candidate configurations are trained on the
stacked snapshots whose label windows end by E (a stratified sample of ``search_rows`` rows)
and scored by ROC-AUC on [E, E + h), a window none of them saw. Every candidate is judged at
the freshest origin; for LightGBM only its ``FINALISTS`` best there go on to the older origins
(successive halving: 10 LightGBM fits instead of 18, docs/adr/0090), and the finalist with
the best mean over the origins wins. At each origin the winner then goes through the whole
production pipeline (isotonic calibration on customer-grouped out-of-fold scores, anchoring to
BG/NBD at the origin), so the card's figures, their mean and spread, are those of the procedure
in use; the baselines are scored on the same customers and windows. The winner's model at an
origin is the one the ranking fitted (its scores are kept); only its calibration folds are
fitted again.

A history too short for a single out-of-time origin (less than two horizons plus
``min_history_days``) falls back to the search's customer-grouped folds on the refit's
snapshots: the freshest snapshot's held-out customers are the one, *in-time*, origin, and the
card says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from sendwise.errors import InputError
from sendwise.predict.anchor import (
    anchor_shift,
    anchor_target,
    season_shift,
    seasonal_target,
    shifted,
)
from sendwise.predict.baselines import Btyd, recency_score, rfm_total
from sendwise.predict.classifier import Calibrator, FittedClassifier, calibrate, fit_classifier
from sendwise.predict.dataset import Origin, SnapshotCache, first_order_at, stratified_sample
from sendwise.predict.evaluation import classification_metrics, expected_calibration_error
from sendwise.predict.learners import as_matrix, make_learner, sample_params

if TYPE_CHECKING:
    from sendwise.config import ModelSettings

Config = tuple[str, dict[str, Any]]
FINALISTS = {"lightgbm": 2}
"""Configurations of a learner that go on from the freshest origin to the older ones (a learner
not named: all). Logistic fits are cheap, and its candidates differ in the fourth decimal, where
one origin cannot tell them apart (on Online Retail keeping only two cost churn 0.0015)."""
BTYD_FIT_ROWS = 100_000
"""The BG/NBD of an origin's anchor and baseline is fitted on at most this many customers (a
seeded sample; four parameters are as well determined by them as by a million)."""
Judged = tuple[dict[str, float], np.ndarray, dict[str, np.ndarray], dict[str, dict[str, float]]]


@dataclass
class OriginResult:
    at: datetime
    train_at: tuple[datetime, ...]
    out_of_time: bool
    rows: int
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    y: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    base_scores: dict[str, np.ndarray] = field(repr=False)
    test: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "train_at": list(self.train_at),
            "out_of_time": self.out_of_time,
            "training_rows": self.rows,
            "metrics": self.metrics,
            "baselines": {b: m["roc_auc"] for b, m in self.baselines.items()},
        }


def draw_configs(settings: ModelSettings) -> list[Config]:
    rng = np.random.default_rng(settings.seed)
    return [
        (name, params)
        for name in settings.learners
        for params in sample_params(name, settings.search_iterations, rng)
    ]


def origin_frames(
    cache: SnapshotCache, at: datetime, train_at: tuple[datetime, ...], h: int,
    label: str, settings: ModelSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    parts = [cache.labelled(t, h, settings.active_days) for t in train_at]
    train = pd.concat(parts, ignore_index=True)
    test = cache.labelled(at, h, settings.active_days)
    train, test = train[train[label].notna()], test[test[label].notna()]
    return train.reset_index(drop=True), test.reset_index(drop=True)


@dataclass
class Ranking:
    """ROC-AUC of every configuration (columns) at every origin (rows), and each origin's raw
    test scores of every configuration (the chosen one's are reused by ``out_of_time``)."""

    aucs: np.ndarray
    raw: list[list[np.ndarray]]


def rank_configs(
    cache: SnapshotCache, origins: tuple[Origin, ...], h: int, label: str,
    features: list[str], configs: list[Config], settings: ModelSettings,
    say: Callable[[str], None],
) -> Ranking:  # fmt: skip
    """Every configuration at the freshest origin; the ``FINALISTS`` best of a learner there
    at the older origins too (successive halving). A configuration left out is NaN."""
    aucs = np.full((len(origins), len(configs)), np.nan)
    raw = [[np.empty(0) for _ in configs] for _ in origins]
    active = list(range(len(configs)))
    for i, origin in enumerate(origins):
        train, test = origin_frames(cache, origin.at, origin.train_at, h, label, settings)
        if test[label].nunique() < 2 or train[label].nunique() < 2:
            continue
        train = stratified_sample(train, label, settings.search_rows, settings.seed)
        X, y = as_matrix(train, features), train[label].to_numpy().astype(np.int8)
        X_test, y_test = as_matrix(test, features), test[label].to_numpy().astype(np.int8)
        threads = 1 if len(y) < 100_000 else 2
        say(f"{label}: backtest at {origin.at:%Y-%m-%d}, {len(active)} configurations")
        for j in active:
            name, params = configs[j]
            model = make_learner(name, features, params, threads=threads, seed=settings.seed)
            raw[i][j] = model.fit(X, y).decision(X_test)
            aucs[i, j] = roc_auc_score(y_test, raw[i][j])
        if len(active) == len(configs):
            active = finalists(configs, aucs[i])
    if np.isnan(aucs).all(axis=1).any():
        raise InputError(f"{label}: a backtest origin has no positive or no negative rows")
    return Ranking(aucs, raw)


def finalists(configs: list[Config], aucs: np.ndarray) -> list[int]:
    """The ``FINALISTS`` configurations of each learner with the best ``aucs``."""
    keep: list[int] = []
    for name in dict.fromkeys(c[0] for c in configs):
        mine = [j for j, c in enumerate(configs) if c[0] == name]
        keep += sorted(mine, key=lambda j: -aucs[j])[: FINALISTS.get(name, len(mine))]
    return sorted(keep)


def chosen_config(aucs: np.ndarray) -> int:
    """The configuration judged at every origin with the best mean ROC-AUC."""
    complete = ~np.isnan(aucs).any(axis=0)
    mean = np.where(complete, np.nanmean(np.where(complete, aucs, 0.0), axis=0), -np.inf)
    return int(np.argmax(mean))


def baseline_scores(name: str, test: pd.DataFrame, btyd: Btyd, h: int) -> dict[str, np.ndarray]:
    sign = -1.0 if name == "churn" else 1.0  # churn risk is the opposite of buying soon
    expected = btyd.predict(test, h, 0.0)["expected_orders"].fillna(0.0).to_numpy()
    return {
        "recency": sign * recency_score(test),
        "RFM score": sign * rfm_total(test),
        "BG/NBD expected purchases": sign * expected,
    }


def judge(
    name: str, label: str, test: pd.DataFrame, raw: np.ndarray, calibrator: Calibrator,
    h: int, settings: ModelSettings, season: float | None = None,
) -> Judged:  # fmt: skip
    """Calibrated (and anchored) probabilities of ``raw`` scores on ``test``, their metrics,
    and the baselines on the same rows. ``season``: the seasonal shift of the anchor."""
    y = test[label].to_numpy().astype(np.int8)
    btyd = Btyd.fit(customer_sample(test, BTYD_FIT_ROWS, settings.seed))
    unanchored = calibrator(raw)
    p = unanchored
    if settings.anchor_base_rate:
        target = seasonal_target(anchor_target(name, btyd, test, h), name, season)
        p = shifted(p, anchor_shift(p, target))
    metrics = classification_metrics(y, p)
    metrics["mean_predicted"] = float(np.mean(p))
    metrics["mean_predicted_unanchored"] = float(np.mean(unanchored))
    metrics["calibration_error"] = expected_calibration_error(y, p)
    metrics["calibration_error_unanchored"] = expected_calibration_error(y, unanchored)
    metrics["season_shift"] = float(season or 0.0)
    scores = baseline_scores(name, test, btyd, h)
    baselines = {b: classification_metrics(y, s, probabilities=False) for b, s in scores.items()}
    return metrics, p, scores, baselines


def out_of_time(
    name: str, label: str, cache: SnapshotCache, origin: Origin, h: int, features: list[str],
    config: Config, settings: ModelSettings, raw: np.ndarray,
) -> OriginResult:  # fmt: skip
    """The chosen configuration through the production pipeline at one origin. ``raw``: its
    test scores from ``rank_configs``, by the model the pipeline would fit (same rows, same
    settings, deterministic LightGBM): only the calibration's folds are fitted here."""
    train, test = origin_frames(cache, origin.at, origin.train_at, h, label, settings)
    train = stratified_sample(train, label, settings.search_rows, settings.seed)
    calibrator = calibrate(
        train.reset_index(drop=True), label, features, config,
        folds=settings.cv_folds, seed=settings.seed,
    )  # fmt: skip
    season = seasonal(cache.source, origin.at, h, settings)
    metrics, p, scores, baselines = judge(name, label, test, raw, calibrator, h, settings, season)
    y = test[label].to_numpy().astype(np.int8)
    return OriginResult(
        origin.at, origin.train_at, True, len(train), metrics, baselines, y, p, scores, test
    )


def in_time(
    name: str, label: str, frame: pd.DataFrame, fitted: FittedClassifier, h: int,
    settings: ModelSettings,
) -> OriginResult:  # fmt: skip
    """The freshest snapshot's customers held out by the search's grouped folds."""
    assert fitted.search_rows is not None and fitted.oof is not None
    rows = frame.iloc[fitted.search_rows].reset_index(drop=True)
    at = rows["snapshot"].max()
    fresh = (rows["snapshot"] == at).to_numpy()
    test = rows[fresh].reset_index(drop=True)
    if test[label].nunique() < 2:
        raise InputError(f"{name}: the freshest snapshot has no positive or no negative rows")
    metrics, p, scores, baselines = judge(
        name, label, test, fitted.oof[fresh], fitted.calibrator, h, settings
    )
    y = test[label].to_numpy().astype(np.int8)
    train_at = tuple(sorted(set(rows["snapshot"]), reverse=True))
    return OriginResult(at, train_at, False, len(frame), metrics, baselines, y, p, scores, test)


def seasonal(source: Any, at: datetime, h: int, settings: ModelSettings) -> float | None:
    if not (settings.anchor_base_rate and settings.seasonal_anchor):
        return None
    return season_shift(source, at, h, first_order_at(source), settings.min_history_days)


def customer_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame`` (a seeded random sample, in the frame's order)."""
    if len(frame) <= rows:
        return frame
    return frame.sample(rows, random_state=seed).sort_index()


def fit_one(
    frame: pd.DataFrame, label: str, features: list[str], config: Config,
    settings: ModelSettings, say: Callable[[str], None],
) -> FittedClassifier:  # fmt: skip
    return fit_classifier(
        frame, label, features, learners=[config[0]], iterations=1, folds=settings.cv_folds,
        seed=settings.seed, search_rows=settings.search_rows, progress=say, fixed=[config],
    )  # fmt: skip


def summarise(results: list[OriginResult]) -> tuple[dict[str, float], dict[str, dict]]:
    """Mean of every metric over the origins, with the ROC-AUC's spread; the same for the
    baselines (so the gate compares like with like)."""
    keys = results[0].metrics.keys()
    metrics = {k: float(np.mean([r.metrics[k] for r in results])) for k in keys}
    aucs = np.array([r.metrics["roc_auc"] for r in results])
    metrics |= {
        "roc_auc_std": float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0,
        "roc_auc_min": float(aucs.min()),
        "roc_auc_max": float(aucs.max()),
        "origins": float(len(results)),
    }
    baselines = {
        b: {
            k: float(np.mean([r.baselines[b][k] for r in results])) for k in results[0].baselines[b]
        }
        for b in results[0].baselines
    }
    return metrics, baselines
