"""The pieces of the model layer on their own: learners, calibration, anchoring, reasons,
the registry and the snapshot plan."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sendwise.config import ModelSettings
from sendwise.errors import InputError, NotFoundError
from sendwise.predict.anchor import anchor_shift, shifted
from sendwise.predict.classifier import Calibrator, fit_classifier
from sendwise.predict.dataset import make_plan
from sendwise.predict.explain import phrase, top_reasons
from sendwise.predict.learners import as_matrix, load_learner
from sendwise.predict.registry import ModelError, Registry, check_features


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = rng.poisson(2, n).astype(float)
    noise = rng.normal(size=n)
    logit = 1.0 - recency / 30 + 0.5 * orders
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    recency[rng.random(n) < 0.1] = np.nan  # never ordered
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "recency_days": recency,
            "frequency": orders,
            "noise": noise,
            "y": y,
        }
    )


@pytest.mark.parametrize("learner", ["logistic", "lightgbm"])
def test_learner_recovers_signal_and_round_trips_without_pickle(learner: str, tmp_path: Path):
    df = _frame()
    feats = ["recency_days", "frequency", "noise"]
    fitted = fit_classifier(df, "y", feats, learners=[learner], iterations=2, folds=3, seed=1)
    X = as_matrix(df, feats)
    p = fitted.predict_proba(X)
    assert roc_auc_score(df.y, p) > 0.8
    assert abs(p.mean() - df.y.mean()) < 0.03  # calibrated on the out-of-fold scores
    fitted.learner.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl"))
    again = load_learner(tmp_path)
    np.testing.assert_allclose(again.decision(X), fitted.learner.decision(X), rtol=1e-9)
    contrib = again.contributions(X)
    # Contributions add up to the raw score (SHAP for trees, exact terms for the linear model).
    np.testing.assert_allclose(contrib.sum(axis=1), again.decision(X), rtol=1e-6, atol=1e-6)
    imp = np.abs(contrib[:, :3]).mean(axis=0)
    assert imp[0] > imp[2]  # recency matters more than noise
    if learner == "lightgbm":  # the fast path attributions add up too and agree on the order
        path = again.contributions(X, method="path")
        np.testing.assert_allclose(path.sum(axis=1), again.decision(X), rtol=1e-6, atol=1e-6)
        path_imp = np.abs(path[:, :3]).mean(axis=0)
        assert np.argsort(path_imp).tolist() == np.argsort(imp).tolist()


def test_one_class_is_a_clear_error():
    df = _frame()
    df["y"] = 0
    with pytest.raises(InputError, match="nothing to learn"):
        fit_classifier(df, "y", ["frequency"], learners=["logistic"], iterations=1, folds=3, seed=0)


def test_calibrator_round_trip_and_monotone():
    rng = np.random.default_rng(3)
    raw = rng.normal(size=5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-2 * raw))).astype(int)
    cal = Calibrator().fit(raw, y)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    grid = np.linspace(-3, 3, 50)
    np.testing.assert_array_equal(cal(grid), again(grid))
    assert np.all(np.diff(again(grid)) > 0)  # strictly: the raw score's order is kept
    assert again(grid).min() > 0
    assert again(grid).max() < 1


def test_anchor_moves_the_mean_and_keeps_the_order():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, 1000)
    target = np.full(1000, 0.3)
    target[:100] = np.nan  # rows without a target do not count
    d = anchor_shift(p, target)
    q = shifted(p, d)
    assert abs(q[100:].mean() - 0.3) < 1e-6
    assert (np.argsort(q) == np.argsort(p)).all()
    assert anchor_shift(p, np.full(1000, np.nan)) == 0.0


def test_reasons_are_words():
    assert phrase("recency_days", 94.2) == "no order for 94 days"
    assert phrase("recency_days", float("nan")) == "never ordered"
    assert phrase("orders_90d", 3) == "3 order(s) in the last 90 days"
    assert phrase("open_rate", 0.25) == "opens 25% of emails"
    frame = pd.DataFrame({"recency_days": [94.0, 3.0], "orders_90d": [0, 4]})
    contrib = np.array([[-1.2, 0.1, 0.0], [0.8, 0.9, 0.0]])
    reasons = top_reasons(contrib, frame, ["recency_days", "orders_90d"], k=2)
    assert reasons[0] == [
        "no order for 94 days (lowers)",
        "0 order(s) in the last 90 days (raises)",
    ]
    assert reasons[1][0] == "4 order(s) in the last 90 days (raises)"


def test_registry_versions_promotion_and_integrity(tmp_path: Path):
    reg = Registry(tmp_path / "models")
    with pytest.raises(NotFoundError):
        reg.get("propensity")
    v1, f1 = reg.new_folder("propensity")
    (f1 / "model.json").write_text("{}")
    reg.seal(f1, {"gate": {"passed": True}, "feature_types": {"recency_days": "float"}})
    v2, f2 = reg.new_folder("propensity")
    (f2 / "model.json").write_text("{}")
    reg.seal(f2, {"gate": {"passed": False}, "feature_types": {}})
    assert (v1, v2) == ("v0001", "v0002") and reg.versions("propensity") == [v1, v2]
    reg.promote("propensity", v1)
    assert reg.get("propensity").version == v1
    assert reg.latest("propensity").version == v2
    (f1 / "model.json").write_text('{"x": 1}')
    with pytest.raises(ModelError, match="changed after training"):
        reg.get("propensity")
    with pytest.raises(InputError):
        reg.new_folder("../escape")
    mv = reg.get("propensity", verify=False)
    check_features(mv, {"recency_days": "int"})  # int and float are both numbers
    with pytest.raises(ModelError, match="missing recency_days"):
        check_features(mv, {"frequency": "int"})
    with pytest.raises(ModelError, match="changed type"):
        check_features(mv, {"recency_days": "string"})


def test_plan_judges_the_last_window_and_trains_before_it():
    s = ModelSettings(snapshots=3, snapshot_step_days=30, min_history_days=0)
    plan = make_plan(datetime(2025, 12, 31), 30, s, datetime(2025, 1, 1))
    assert plan.evaluate_at == datetime(2025, 12, 1)
    assert plan.train_at == (datetime(2025, 11, 1), datetime(2025, 10, 2), datetime(2025, 9, 2))
    # Every training label window ends on or before the judged date.
    assert all(t.toordinal() + 30 <= plan.evaluate_at.toordinal() for t in plan.train_at)
    short = make_plan(datetime(2025, 2, 1), 30, ModelSettings(), datetime(2025, 1, 1))
    assert short.train_at == ()
    with pytest.raises(InputError, match="not enough history"):
        short.require_training()
