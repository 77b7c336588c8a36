"""Training one classifier end to end: data, search, backtest, baselines, gate, registry.

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
from sendwise.errors import InputError
from sendwise.predict import plots, report
from sendwise.predict.anchor import anchor_shift, anchor_target, shifted
from sendwise.predict.baselines import Btyd, recency_score, rfm_total
from sendwise.predict.classifier import fit_classifier
from sendwise.predict.dataset import (
    Plan,
    SnapshotCache,
    feature_types,
    input_features,
    stratified_sample,
)
from sendwise.predict.drift import psi_reference
from sendwise.predict.evaluation import (
    calibration_table,
    classification_metrics,
    expected_calibration_error,
    gains_table,
)
from sendwise.predict.explain import global_importance
from sendwise.predict.learners import as_matrix
from sendwise.predict.registry import Registry

logger = logging.getLogger(__name__)

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
    plan.require_training()
    say = progress or (lambda _m: None)
    label, meaning = TARGETS[name]
    h = plan.horizon_days
    say(f"{name}: features and labels of {len(plan.train_at) + 1} snapshot(s)")
    parts = [cache.labelled(t, h, settings.active_days) for t in plan.train_at]
    train = pd.concat(parts, ignore_index=True)
    test = cache.labelled(plan.evaluate_at, h, settings.active_days)
    if name == "churn":  # only active customers can churn
        train, test = train[train[label].notna()], test[test[label].notna()]
    if len(test) == 0 or test[label].nunique() < 2:
        raise InputError(f"{name}: the evaluation snapshot has no positive or no negative rows")
    train = stratified_sample(train, label, settings.max_train_rows, settings.seed)
    features = input_features(train)
    fitted = fit_classifier(
        train,
        label,
        features,
        learners=settings.learners,
        iterations=settings.search_iterations,
        folds=settings.cv_folds,
        seed=settings.seed,
        search_rows=settings.search_rows,
        progress=say,
    )
    say(f"{name}: judging on {plan.evaluate_at:%Y-%m-%d}")
    X_test = as_matrix(test, features)
    y_test = test[label].to_numpy().astype(np.int8)
    btyd = Btyd.fit(test)
    sign = -1.0 if name == "churn" else 1.0  # churn risk is the opposite of buying soon
    target = anchor_target(name, btyd, test, h) if settings.anchor_base_rate else None

    def predict(model, cal) -> np.ndarray:
        p = cal(model.decision(X_test))
        return p if target is None else shifted(p, anchor_shift(p, target))

    unanchored = fitted.predict_proba(X_test)
    p_test = predict(fitted.learner, fitted.calibrator)
    metrics = classification_metrics(y_test, p_test)
    metrics["calibration_error"] = expected_calibration_error(y_test, p_test)
    metrics["calibration_error_unanchored"] = expected_calibration_error(y_test, unanchored)
    per_learner = {
        lname: classification_metrics(y_test, predict(model, cal))
        for lname, (model, cal, _c) in fitted.best_per_learner.items()
    }
    expected = btyd.predict(test, h, 0.0)["expected_orders"].fillna(0.0).to_numpy()
    base_scores = {
        "recency": sign * recency_score(test),
        "RFM score": sign * rfm_total(test),
        "BG/NBD expected purchases": sign * expected,
    }
    baselines = {
        b: classification_metrics(y_test, s, probabilities=False) for b, s in base_scores.items()
    }
    reasons = gate(metrics, baselines, settings)
    contributions = fitted.learner.contributions(X_test)
    importance = global_importance(contributions, features)

    version, folder = registry.new_folder(name)
    model_file = fitted.learner.save(folder)
    (folder / "calibrator.json").write_text(report.dumps(fitted.calibrator.to_dict()))
    curves = {
        f"model ({fitted.chosen.learner})": (y_test, p_test),
        **{b: (y_test, s) for b, s in base_scores.items()},
    }
    plots.save_roc(folder / "roc.png", curves)
    plots.save_gains(folder / "gains.png", curves)
    plots.save_calibration(folder / "calibration.png", y_test, p_test)
    references = {
        f: psi_reference(train[f].to_numpy(dtype=np.float64, na_value=np.nan)) for f in features
    }
    references["__score__"] = psi_reference(fitted.predict_proba(as_matrix(train, features)))
    meta = supervised_metadata(
        name=name, version=version, kind="classifier", target=label,
        meaning=meaning.format(h=h), plan=plan, learner=fitted.chosen.learner,
        params=fitted.chosen.params, model_file=model_file, features=features,
        train=train, test=test,
    )  # fmt: skip
    meta |= {
        "metrics": metrics,
        "learners": per_learner,
        "anchored": settings.anchor_base_rate,
        "baselines": baselines,
        "cv": [
            {"learner": c.learner, "params": c.params, "cv_auc": c.cv_auc}
            for c in fitted.candidates
        ],
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
        "gains": gains_table(y_test, p_test),
        "calibration": calibration_table(y_test, p_test),
    }
    report.write_classifier_report(folder, meta, tables)
    registry.seal(folder, meta)
    if not reasons:
        registry.promote(name, version)
    return TrainResult(
        name,
        version,
        not reasons,
        reasons,
        metrics,
        baselines,
        fitted.chosen.learner,
        len(train),
        plan,
    )
