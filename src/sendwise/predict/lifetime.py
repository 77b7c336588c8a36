"""Lifetime value: BG/NBD + Gamma-Gamma, and a LightGBM model of revenue over the horizon.

BTYD models need no labels, so the version in use is fitted on the history up to the scoring
date; its report judges a twin fitted at the evaluation date on the window that follows
(predicted vs actual repeat purchases, the classic holdout check). The revenue model is trained
on the training snapshots and judged against BG/NBD x Gamma-Gamma spend and a naive "the same
as the last period" on the evaluation snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from sendwise.config import ModelSettings
from sendwise.predict import report
from sendwise.predict.baselines import Btyd, holdout_table
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
    say = progress or (lambda _m: None)
    h = plan.horizon_days
    say("btyd: fitting BG/NBD and Gamma-Gamma")
    test = cache.labelled(plan.evaluate_at, h, settings.active_days)
    judged = Btyd.fit(test)
    table = holdout_table(test, judged, h)
    pred = judged.predict(test, h, settings.discount_rate)
    buyers = pred["expected_orders"].notna()
    metrics = regression_metrics(
        test.loc[buyers, "label_orders"].to_numpy(dtype=np.float64),
        pred.loc[buyers, "expected_orders"].to_numpy(),
    )
    alive = pred.loc[buyers, "p_alive"]
    metrics["mean_p_alive"] = float(alive.mean())
    production = Btyd.fit(cache.features(plan.as_of))
    version, folder = registry.new_folder("btyd")
    (folder / "model.json").write_text(report.dumps(production.to_dict()))
    meta: dict[str, Any] = {
        "name": "btyd",
        "version": version,
        "kind": "btyd",
        "horizon_days": h,
        "meaning": f"repeat purchases in the next {h} days, probability alive, 12-month value",
        "created_at": datetime.now(UTC).isoformat(),
        "learner": "BG/NBD + Gamma-Gamma",
        "params": production.to_dict(),
        "judged_params": judged.to_dict(),
        "features": ["btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value"],
        "feature_types": {
            f: "float" for f in ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value")
        },
        "plan": {"as_of": plan.as_of, "evaluate_at": plan.evaluate_at, "train_at": []},
        "metrics": metrics,
        "holdout": table.to_dict(orient="records"),
        "gate": {"passed": True, "reasons": []},
        "library_versions": library_versions(),
    }
    (folder / "report.md").write_text(_btyd_report(meta, table))
    registry.seal(folder, meta)
    registry.promote("btyd", version)
    return TrainResult(
        "btyd",
        version,
        True,
        [],
        metrics,
        {},
        "BG/NBD + Gamma-Gamma",
        len(test),
        plan,
        extra={"holdout": table},
    )


def _btyd_report(meta: dict[str, Any], table: pd.DataFrame) -> str:
    bg = meta["judged_params"]["bgnbd"]
    gg = meta["judged_params"]["gamma_gamma"]
    fmt = ", ".join(f"{k} = {v:.4f}" for k, v in bg["params"].items())
    gfmt = ", ".join(f"{k} = {v:.4f}" for k, v in gg["params"].items()) if gg else "not fitted"
    m = meta["metrics"]
    return f"""# btyd {meta["version"]}: evaluation

Fitted on the history before {str(meta["plan"]["evaluate_at"])[:10]} and judged on the
{meta["horizon_days"]} days that follow (BG/NBD counts purchase days; the holdout counts orders).

- BG/NBD: {fmt}; log-likelihood {bg["log_likelihood"]:.1f} over {bg["n_customers"]:,} customers.
- Gamma-Gamma: {gfmt}.
- Expected vs actual orders per customer: MAE {m["mae"]:.3f}, RMSE {m["rmse"]:.3f},
  Spearman {m["spearman"]:.3f}; total predicted {m["total_predicted"]:,.0f} vs actual
  {m["total_actual"]:,.0f}; mean probability alive {m["mean_p_alive"]:.3f}.

## Predicted vs actual purchases in the holdout, by repeat purchases in calibration

{report.markdown_table(table)}

The version in use is refitted on the history up to {str(meta["plan"]["as_of"])[:10]}.
"""


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
