"""Lifetime value: a BTYD purchase model + Gamma-Gamma, and a LightGBM model of revenue.

BTYD models need no labels, so the version in use is fitted on the history up to the scoring
date. Which model serves (BG/NBD, MBG/NBD or Pareto/NBD, and its shrinkage) is chosen on the
holdout: every candidate is fitted at the evaluation date and judged on the window that follows
(``btyd_select``); degenerate fits are never chosen and a degenerate refit is not promoted.
The revenue model is trained on the training snapshots and judged against BTYD x Gamma-Gamma
spend and a naive "the same as the last period" on the evaluation snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from sendwise.config import ModelSettings
from sendwise.predict import report
from sendwise.predict.btyd_pair import Btyd, holdout_table
from sendwise.predict.btyd_report import btyd_card, btyd_report
from sendwise.predict.btyd_select import CRITERION, TOLERANCE, Candidate, judge_candidates
from sendwise.predict.dataset import Plan, SnapshotCache, input_features
from sendwise.predict.evaluation import regression_metrics
from sendwise.predict.learners import LightGBMLearner, as_matrix
from sendwise.predict.registry import Registry
from sendwise.predict.train import TrainResult, library_versions, supervised_metadata

SPEND_PARAMS = {
    "num_leaves": 31,
    "learning_rate": 0.05,
    "num_boost_round": 300,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "tweedie_variance_power": 1.3,
}


def train_btyd(
    cache: SnapshotCache,
    plan: Plan,
    settings: ModelSettings,
    registry: Registry,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Judge every BTYD candidate at the evaluation date, refit the best unflagged one on the
    history up to the scoring date, and promote it unless every refit is degenerate."""
    say = progress or (lambda _m: None)
    h = plan.horizon_days
    test = cache.labelled(plan.evaluate_at, h, settings.active_days)
    candidates = judge_candidates(test, h, progress=say)
    history = cache.features(plan.as_of)
    production: Btyd | None = None
    chosen: Candidate | None = None
    refused: list[str] = []
    for cand in (c for c in candidates if not c.btyd.flags):
        say(f"btyd: refitting {cand.name} as of {plan.as_of:%Y-%m-%d}")
        refit = Btyd.fit(history, cand.kind, cand.shrinkage)
        if not refit.flags:
            production, chosen = refit, cand
            break
        refused.append(f"{cand.name} as of {plan.as_of:%Y-%m-%d}: " + "; ".join(refit.flags))
    reasons = [] if chosen is not None else [
        "every BTYD candidate is degenerate (see the report); the previous version keeps serving"
    ]  # fmt: skip
    judged = chosen or candidates[0]
    table = holdout_table(test, judged.btyd, h)
    pred = judged.btyd.predict(test, h, settings.discount_rate)
    buyers = pred["expected_orders"].notna()
    metrics = regression_metrics(
        test.loc[buyers, "label_orders"].to_numpy(dtype=np.float64),
        pred.loc[buyers, "expected_orders"].to_numpy(),
    )
    metrics |= {k: v for k, v in judged.metrics.items() if k not in metrics}
    serving = production or judged.btyd
    others: dict[str, Candidate] = {}  # the best candidate of every other model
    for c in candidates:
        if c.kind != judged.kind and all(o.kind != c.kind for o in others.values()):
            others[c.name] = c
    version, folder = registry.new_folder("btyd")
    (folder / "model.json").write_text(report.dumps(serving.to_dict()))
    learner = f"{serving.label} + Gamma-Gamma"
    meta: dict[str, Any] = {
        "name": "btyd",
        "version": version,
        "kind": "btyd",
        "horizon_days": h,
        "meaning": f"repeat purchases in the next {h} days, probability alive, 12-month value",
        "created_at": datetime.now(UTC).isoformat(),
        "learner": learner,
        "params": serving.to_dict(),
        "judged_params": judged.btyd.to_dict(),
        "selection": {
            "criterion": CRITERION,
            "tolerance": TOLERANCE,
            "chosen": judged.name if chosen else None,
            "candidates": [c.row() for c in candidates],
            "refused_refits": refused,
        },
        "features": list(BTYD_FEATURES),
        "feature_types": dict.fromkeys(BTYD_FEATURES, "float"),
        "plan": {"as_of": plan.as_of, "evaluate_at": plan.evaluate_at, "train_at": []},
        "metrics": metrics,
        "baselines": {name: c.metrics for name, c in others.items()},
        "holdout": table.to_dict(orient="records"),
        "gate": {"passed": not reasons, "reasons": reasons},
        "library_versions": library_versions(),
    }
    (folder / "report.md").write_text(btyd_report(meta, table))
    (folder / "card.md").write_text(btyd_card(meta))
    registry.seal(folder, meta)
    if not reasons:
        registry.promote("btyd", version)
    return TrainResult(
        "btyd", version, not reasons, reasons, metrics, meta["baselines"], learner, len(test),
        plan, extra={"holdout": table, "candidates": candidates},
    )  # fmt: skip


BTYD_FEATURES = ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value")


def train_spend(
    cache: SnapshotCache,
    plan: Plan,
    settings: ModelSettings,
    registry: Registry,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    say = progress or (lambda _m: None)
    h = plan.horizon_days
    plan.require_training()
    say("spend: revenue over the horizon (LightGBM, Tweedie)")
    train = pd.concat(
        [cache.labelled(t, h, settings.active_days) for t in plan.train_at], ignore_index=True
    )
    if len(train) > settings.max_train_rows:
        train = train.sample(settings.max_train_rows, random_state=settings.seed)
    test = cache.labelled(plan.evaluate_at, h, settings.active_days)
    features = input_features(train)
    model = LightGBMLearner(features, SPEND_PARAMS, objective="tweedie", seed=settings.seed)
    model.fit(as_matrix(train, features), train["label_revenue"].to_numpy(dtype=np.float64))
    y = test["label_revenue"].to_numpy(dtype=np.float64)
    pred = np.exp(model.decision(as_matrix(test, features)))
    btyd = Btyd.fit(test).predict(test, h, settings.discount_rate)["btyd_spend"].fillna(0.0)
    last = _last_period(test, h)
    metrics = regression_metrics(y, pred)
    baselines = {
        "BG/NBD x Gamma-Gamma": regression_metrics(y, btyd.to_numpy()),
        "same as the last period": regression_metrics(y, last),
    }
    reasons = [
        f"MAE {metrics['mae']:.3f} does not beat {b} ({m['mae']:.3f})"
        for b, m in baselines.items()
        if not metrics["mae"] < m["mae"]
    ]
    if not settings.must_beat_baselines:
        reasons = []
    version, folder = registry.new_folder("spend")
    model_file = model.save(folder)
    meta = supervised_metadata(
        name="spend", version=version, kind="regressor", target="label_revenue",
        meaning=f"revenue in the next {h} days", plan=plan, learner="lightgbm (tweedie)",
        params=SPEND_PARAMS, model_file=model_file, features=features, train=train, test=test,
    )  # fmt: skip
    meta |= {
        "metrics": metrics,
        "baselines": baselines,
        "gate": {"passed": not reasons, "reasons": reasons},
    }
    rows = pd.DataFrame(
        [
            {"model": "spend (LightGBM)", **metrics},
            *({"model": f"baseline: {b}", **m} for b, m in baselines.items()),
        ]
    )
    (folder / "report.md").write_text(
        f"# spend {version}: evaluation\n\nRevenue in the {h} days after"
        f" {str(plan.evaluate_at)[:10]}, per customer.\n\n{report.markdown_table(rows)}\n\n"
        + ("Promoted." if not reasons else "Not promoted: " + "; ".join(reasons) + ".")
        + "\n"
    )
    registry.seal(folder, meta)
    if not reasons:
        registry.promote("spend", version)
    return TrainResult(
        "spend", version, not reasons, reasons, metrics, baselines, "lightgbm", len(train), plan
    )


def _last_period(frame: pd.DataFrame, h: int) -> np.ndarray:
    window = min((w for w in (7, 30, 90, 365) if w >= h), default=365)
    return frame[f"revenue_{window}d"].fillna(0.0).to_numpy(dtype=np.float64) * h / window
