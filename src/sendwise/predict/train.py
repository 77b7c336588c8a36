"""Training one classifier end to end: backtest, refit, baselines, gate, registry.

``train_classifier`` is the use case behind ``sendwise train`` for ``propensity`` and
``churn``; both share the snapshot cache so features are computed once per date.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as pkg
from typing import Any

import numpy as np
import pandas as pd

from sendwise.config import ModelSettings
from sendwise.predict import backtest, plots, report
from sendwise.predict.classifier import fit_classifier
from sendwise.predict.dataset import (
    Plan,
    SnapshotCache,
    feature_types,
    input_features,
    stratified_sample,
)
from sendwise.predict.drift import psi_reference
from sendwise.predict.evaluation import calibration_table, gains_table
from sendwise.predict.explain import global_importance
from sendwise.predict.learners import as_matrix
from sendwise.predict.registry import Registry

logger = logging.getLogger(__name__)
IMPORTANCE_ROWS = 20_000
"""Rows whose exact contributions (tree SHAP) give the card's global importance."""

TARGETS = {
    "propensity": ("label_purchased", "purchase in the next {h} days"),
    "churn": ("label_churned", "an active customer places no order in the next {h} days"),
}


@dataclass
class TrainResult:
    name: str
    version: str
    promoted: bool
    gate: list[str]
    """Why the gate refused the version (empty when it passed)."""
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    learner: str
    rows: int
    plan: Plan
    extra: dict[str, Any] = field(default_factory=dict)


def library_versions() -> dict[str, str]:
    names = ("sendwise", "lightgbm", "scikit-learn", "numpy", "pandas", "duckdb", "ibis-framework")
    return {"python": platform.python_version(), **{n: pkg.version(n) for n in names}}


def fingerprint(frame: pd.DataFrame, label: str) -> str:
    keys = frame[["customer_id", "snapshot", label]].astype(str)
    return f"{int(pd.util.hash_pandas_object(keys, index=False).sum()) & (2**64 - 1):016x}"


def supervised_metadata(
    *, name: str, version: str, kind: str, target: str, meaning: str, plan: Plan,
    learner: str, params: dict[str, Any], model_file: str, features: list[str],
    train: pd.DataFrame, test: pd.DataFrame,
) -> dict[str, Any]:  # fmt: skip
    """What every trained model's metadata.json says about its data, window and libraries."""
    return {
        "name": name,
        "version": version,
        "kind": kind,
        "target": target,
        "meaning": meaning,
        "horizon_days": plan.horizon_days,
        "created_at": datetime.now(UTC).isoformat(),
        "learner": learner,
        "params": params,
        "model_file": model_file,
        "features": features,
        "feature_types": feature_types(train, features),
        "plan": {
            "as_of": plan.as_of,
            "evaluate_at": plan.evaluate_at,
            "train_at": list(plan.train_at),
        },
        "training_rows": len(train),
        "test_rows": len(test),
        "data_fingerprint": fingerprint(train, target),
        "library_versions": library_versions(),
    }


def gate(
    metrics: dict[str, float], baselines: dict[str, dict[str, float]], settings: ModelSettings
) -> list[str]:
    reasons = []
    if not metrics["roc_auc"] >= settings.min_auc:
        reasons.append(f"ROC-AUC {metrics['roc_auc']:.3f} is below the minimum {settings.min_auc}")
    if settings.must_beat_baselines:
        for name, m in baselines.items():
            if not metrics["roc_auc"] > m["roc_auc"]:
                reasons.append(
                    f"ROC-AUC {metrics['roc_auc']:.3f} does not beat the {name} baseline"
                    f" ({m['roc_auc']:.3f})"
                )
    return reasons


def train_classifier(
    name: str,
    cache: SnapshotCache,
    plan: Plan,
    settings: ModelSettings,
    registry: Registry,
    *,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Judge on the rolling backtest, refit the chosen configuration on the freshest
    snapshots, gate on the backtest, store (docs/adr/0006)."""
    plan.require_fit()
    say = progress or (lambda _m: None)
    label, meaning = TARGETS[name]
    h = plan.horizon_days
    say(f"{name}: features and labels of the refit's {len(plan.fit_at)} snapshot(s)")
    train = pd.concat(
        [cache.labelled(t, h, settings.active_days) for t in plan.fit_at], ignore_index=True
    )
    train = train[train[label].notna()].reset_index(drop=True)
    train = stratified_sample(train, label, settings.max_train_rows, settings.seed)
    train = train.reset_index(drop=True)
    features = input_features(train)
    configs = backtest.draw_configs(settings)
    per_learner: dict[str, dict[str, float]] = {}
    ranking: list[dict[str, Any]] = []
    if plan.origins:
        ranked = backtest.rank_configs(
            cache, plan.origins, h, label, features, configs, settings, say
        )
        aucs = ranked.aucs
        best_at = backtest.chosen_config(aucs)
        chosen = configs[best_at]
        ranking = [
            {
                "learner": c[0], "params": c[1], "finalist": bool(~np.isnan(a).any()),
                "backtest_auc": float(np.nanmean(a)),
                "per_origin": [None if np.isnan(v) else float(v) for v in a],
            }
            for c, a in zip(configs, aucs.T, strict=True)
        ]  # fmt: skip
        for lname in settings.learners:
            top = max((r for r in ranking if r["learner"] == lname and r["finalist"]),
                      key=lambda r: r["backtest_auc"])  # fmt: skip
            per_learner[lname] = {"roc_auc": top["backtest_auc"]}
        say(f"{name}: {chosen[0]} chosen; calibration folds at every origin")
        origins = [
            backtest.out_of_time(
                name, label, cache, o, h, features, chosen, settings, ranked.raw[i][best_at]
            )
            for i, o in enumerate(plan.origins)
        ]
        say(f"{name}: refitting {chosen[0]} on {len(train):,} rows of the freshest snapshots")
        fitted = backtest.fit_one(train, label, features, chosen, settings, say)
    else:
        say(f"{name}: no out-of-time origin fits in the history; judging on held-out customers")
        fitted = fit_classifier(
            train, label, features, learners=settings.learners,
            iterations=settings.search_iterations, folds=settings.cv_folds,
            seed=settings.seed, search_rows=settings.search_rows, progress=say,
        )  # fmt: skip
        chosen = (fitted.chosen.learner, fitted.chosen.params)
        ranking = [
            {"learner": c.learner, "params": c.params, "cv_auc": c.cv_auc}
            for c in fitted.candidates
        ]
        per_learner = {
            lname: {"roc_auc": best[2].cv_auc} for lname, best in fitted.best_per_learner.items()
        }
        origins = [backtest.in_time(name, label, train, fitted, h, settings)]
    metrics, baselines = backtest.summarise(origins)
    reasons = gate(metrics, baselines, settings)
    fresh = origins[0]
    # Global importance: exact contributions of a seeded sample of the freshest origin's rows.
    sample = backtest.customer_sample(fresh.test, IMPORTANCE_ROWS, settings.seed)
    importance = global_importance(
        fitted.learner.contributions(as_matrix(sample, features)), features
    )

    version, folder = registry.new_folder(name)
    model_file = fitted.learner.save(folder)
    (folder / "calibrator.json").write_text(report.dumps(fitted.calibrator.to_dict()))
    curves = {f"model ({chosen[0]})": (fresh.y, fresh.p),
              **{b: (fresh.y, s) for b, s in fresh.base_scores.items()}}  # fmt: skip
    plots.save_roc(folder / "roc.png", curves)
    plots.save_gains(folder / "gains.png", curves)
    plots.save_calibration(folder / "calibration.png", fresh.y, fresh.p)
    references = {
        f: psi_reference(train[f].to_numpy(dtype=np.float64, na_value=np.nan)) for f in features
    }
    references["__score__"] = psi_reference(fitted.predict_proba(as_matrix(train, features)))
    meta = supervised_metadata(
        name=name, version=version, kind="classifier", target=label,
        meaning=meaning.format(h=h), plan=plan, learner=chosen[0],
        params=chosen[1], model_file=model_file, features=features,
        train=train, test=fresh.test,
    )  # fmt: skip
    meta["plan"] |= {
        "fit_at": list(plan.fit_at),
        "origins": [{"at": o.at, "train_at": list(o.train_at)} for o in plan.origins],
    }
    meta |= {
        "metrics": metrics,
        "learners": per_learner,
        "anchored": settings.anchor_base_rate,
        "baselines": baselines,
        "backtest": [o.summary() for o in origins],
        "out_of_time": fresh.out_of_time,
        "cv": ranking,
        "gate": {
            "passed": not reasons,
            "reasons": reasons,
            "min_auc": settings.min_auc,
            "must_beat_baselines": settings.must_beat_baselines,
        },
        "importance": importance.head(20).to_dict(orient="records"),
        "drift_reference": references,
    }
    tables = {
        "gains": gains_table(fresh.y, fresh.p),
        "calibration": calibration_table(fresh.y, fresh.p),
    }
    report.write_classifier_report(folder, meta, tables)
    registry.seal(folder, meta)
    if not reasons:
        registry.promote(name, version)
    return TrainResult(
        name, version, not reasons, reasons, metrics, baselines, chosen[0], len(train), plan
    )
