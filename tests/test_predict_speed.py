"""The shortcuts that keep training fast on large shops give what the slow path gives: the
vectorised customer-grouped folds, and the backtest's reuse of the ranking's model at an origin
(only the calibration folds are fitted again)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import StratifiedGroupKFold

from sendwise.predict import classifier
from sendwise.predict.classifier import calibrate, fit_classifier, group_folds
from sendwise.predict.explain import strongest
from sendwise.predict.learners import as_matrix, make_learner


def _frame(n: int, seed: int, snapshots: int = 3) -> pd.DataFrame:
    """``n`` customers seen at ``snapshots`` dates, with a label that depends on recency."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(snapshots):
        recency = rng.exponential(60, n)
        orders = rng.poisson(2, n).astype(float)
        logit = 1.0 - recency / 30 + 0.5 * orders
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        rows.append(pd.DataFrame({
            "customer_id": [f"C{i}" for i in range(n)], "snapshot": s,
            "recency_days": recency, "frequency": orders, "y": y,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


@given(
    customers=st.integers(30, 3000),
    rows_per=st.integers(1, 4),
    rate=st.floats(0.05, 0.95),
    folds=st.integers(2, 5),
    seed=st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_fast_group_folds_partition_rows_keep_customers_apart_and_balance_labels(
    customers, rows_per, rate, folds, seed
) -> None:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(customers), rows_per).astype(str)
    y = (rng.random(groups.size) < rate).astype(np.int8)
    if np.bincount(y, minlength=2).min() < folds:
        return
    old, classifier.EXACT_FOLD_GROUPS = classifier.EXACT_FOLD_GROUPS, 0  # force the fast path
    try:
        splits = group_folds(y, groups, folds, seed)
    finally:
        classifier.EXACT_FOLD_GROUPS = old
    assert len(splits) == folds
    held = np.concatenate([va for _tr, va in splits])
    assert np.array_equal(np.sort(held), np.arange(y.size))  # every row held out exactly once
    for tr, va in splits:
        assert np.union1d(tr, va).size == y.size and np.intersect1d(tr, va).size == 0
        assert not set(groups[tr]) & set(groups[va])  # a customer on one side only
        # Dealt round-robin after sorting by positive share: the folds' positive counts
        # differ from the even share by at most two customers' rows.
        assert abs(y[va].sum() - y.sum() / folds) <= 2 * rows_per
    assert len(group_folds(y, groups, folds, seed)) == folds  # the exact path agrees in shape


def test_small_shops_keep_scikit_learns_folds() -> None:
    frame = _frame(500, 1)
    y = frame["y"].to_numpy()
    ours = group_folds(y, frame["customer_id"].to_numpy(), 3, 7)
    theirs = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=7).split(
        frame, y, frame["customer_id"].astype(str).to_numpy()
    )
    for (a_tr, a_va), (b_tr, b_va) in zip(ours, theirs, strict=True):
        assert np.array_equal(a_tr, b_tr) and np.array_equal(a_va, b_va)


def test_fast_folds_give_the_same_quality_on_many_customers() -> None:
    """Above the threshold, the calibrated out-of-fold scores are as good as with sklearn's."""
    frame = _frame(8000, 2)
    feats = ["recency_days", "frequency"]
    kw = dict(learners=["lightgbm"], iterations=1, folds=3, seed=0, search_rows=100_000)
    exact = fit_classifier(frame, "y", feats, **kw)
    old, classifier.EXACT_FOLD_GROUPS = classifier.EXACT_FOLD_GROUPS, 0
    try:
        fast = fit_classifier(frame, "y", feats, **kw)
    finally:
        classifier.EXACT_FOLD_GROUPS = old
    assert abs(fast.chosen.cv_auc - exact.chosen.cv_auc) < 0.005
    assert min(fast.chosen.fold_aucs) > exact.chosen.cv_auc - 0.02


@pytest.mark.parametrize("learner", ["logistic", "lightgbm"])
def test_the_backtest_reuses_exactly_the_model_and_calibration_of_the_full_pipeline(
    learner: str,
) -> None:
    """``out_of_time`` takes the ranking's test scores and fits only the calibration: both
    equal what ``fit_classifier`` with the fixed configuration gives on the same rows."""
    train, test = _frame(1500, 3), _frame(1500, 4, snapshots=1)
    feats = ["recency_days", "frequency"]
    params = (
        {"C": 0.3, "class_weight": None}
        if learner == "logistic"
        else {"num_leaves": 15, "learning_rate": 0.05, "num_boost_round": 100,
              "min_data_in_leaf": 20, "feature_fraction": 0.8, "lambda_l2": 1.0,
              "balanced": True}
    )  # fmt: skip
    full = fit_classifier(
        train, "y", feats, learners=[learner], iterations=1, folds=3, seed=5,
        fixed=[(learner, params)],
    )  # fmt: skip
    ranked = make_learner(learner, feats, params, threads=1, seed=5)
    ranked.fit(as_matrix(train, feats), train["y"].to_numpy().astype(np.int8))
    X_test = as_matrix(test, feats)
    np.testing.assert_array_equal(ranked.decision(X_test), full.learner.decision(X_test))
    cal = calibrate(train, "y", feats, (learner, params), folds=3, seed=5)
    np.testing.assert_array_equal(cal.x_, full.calibrator.x_)
    np.testing.assert_array_equal(cal.y_, full.calibrator.y_)


@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 8),
    k=st.integers(1, 5),
    levels=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
@settings(max_examples=150, deadline=None)
def test_strongest_reasons_match_a_stable_sort_ties_included(rows, cols, k, levels, seed) -> None:
    """Few distinct values make ties common: the argmax passes pick what the stable sort did."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-levels, levels + 1, size=(rows, cols)).astype(np.float64)
    expected = np.argsort(-np.abs(values), axis=1, kind="stable")[:, : min(k, cols)]
    assert np.array_equal(strongest(values.copy(), k), expected)


def test_as_matrix_reads_mixed_columns_like_pandas() -> None:
    frame = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="Int64"), "f": [0.5, np.nan, 2.0],
        "b": [True, False, True], "n": pd.array([None, 2, 3], dtype="Int32"),
    })  # fmt: skip
    cols = ["n", "b", "f", "i"]
    expected = frame[cols].astype("float64").to_numpy(na_value=np.nan)
    np.testing.assert_array_equal(as_matrix(frame, cols), expected)
