"""Evaluation metrics against hand computations, scikit-learn, and invariants (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    top_k_accuracy_score,
)

from sendwise.errors import InputError
from sendwise.predict.evaluation import (
    calibration_table,
    classification_metrics,
    expected_calibration_error,
    gains_table,
    multiclass_metrics,
    regression_metrics,
    wilson_interval,
)

Y = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_classification_metrics_by_hand_and_against_sklearn() -> None:
    m = classification_metrics(Y, P)
    assert m["n"] == 10 and m["positives"] == 4 and m["base_rate"] == 0.4
    # positive/negative pairs ranked correctly: 0.9 beats 6, 0.7 beats 5, 0.6 beats 5, 0.2 beats 2
    assert m["roc_auc"] == pytest.approx((6 + 5 + 5 + 2) / 24)
    # precision at each positive: 1/1, 2/3, 3/4, 4/8
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 8) / 4)
    brier = np.mean((P - Y) ** 2)
    assert m["brier"] == pytest.approx(brier)
    assert m["log_loss"] == pytest.approx(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
    assert m["top_decile_lift"] == pytest.approx(1 / 0.4)  # the top 1 of 10 is a positive
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P))
    assert m["pr_auc"] == pytest.approx(average_precision_score(Y, P))
    assert m["brier"] == pytest.approx(brier_score_loss(Y, P))
    assert m["log_loss"] == pytest.approx(log_loss(Y, P))


def test_scores_that_are_not_probabilities() -> None:
    recency_days = np.array([3, 200, 10, 15, 90, 120, 60, 40, 300, 365])
    m = classification_metrics(Y, -recency_days, probabilities=False)
    assert math.isnan(m["brier"]) and math.isnan(m["log_loss"])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, -recency_days))
    with pytest.raises(InputError, match="probabilities=False"):
        classification_metrics(Y, -recency_days)


def test_log_loss_clips_confident_misses() -> None:
    m = classification_metrics([1, 0], [0.0, 0.0])
    assert m["log_loss"] == pytest.approx(-(np.log(1e-6) + np.log(1 - 1e-6)) / 2)


def test_top_decile_ties_are_broken_by_input_order() -> None:
    y = np.array([0] * 10 + [1] * 10)
    same = np.ones(20)  # every score tied: the top decile is the first two rows, both negative
    assert classification_metrics(y, same)["top_decile_lift"] == 0.0
    assert classification_metrics(y[::-1], same)["top_decile_lift"] == 2.0


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "one class"),
        ([0, 1], [0.1, 0.2, 0.3], "differ in length"),
        ([0, 1, 0], [0.1, np.nan, 0.3], "NaN"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "0/1"),
        ([], [], "zero customers"),
    ],
)
def test_classification_metrics_refuses_bad_input(y, p, message) -> None:
    with pytest.raises(InputError, match=message):
        classification_metrics(y, p)


def test_pandas_nullable_inputs() -> None:
    y = pd.Series([True, False, True, False], dtype="boolean")
    p = pd.Series([0.9, 0.1, 0.8, 0.3], dtype="Float64")
    assert classification_metrics(y, p)["roc_auc"] == 1.0
    with pytest.raises(InputError, match="NaN"):
        classification_metrics(y, pd.Series([0.9, None, 0.8, 0.3], dtype="Float64"))


def test_gains_table_by_hand() -> None:
    t = gains_table(Y, P, bins=5)  # pairs of customers, highest scores first
    assert t["decile"].tolist() == [1, 2, 3, 4, 5]
    assert t["customers"].tolist() == [2, 2, 2, 2, 2]
    assert t["positives"].tolist() == [1, 2, 0, 1, 0]
    assert t["rate"].tolist() == [0.5, 1.0, 0.0, 0.5, 0.0]
    assert t["cum_positives_share"].tolist() == pytest.approx([0.25, 0.75, 0.75, 1.0, 1.0])
    assert t["cum_customers_share"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert t["lift"].tolist() == pytest.approx([1.25, 2.5, 0.0, 1.25, 0.0])
    assert t["cum_lift"].tolist() == pytest.approx([1.25, 1.875, 1.25, 1.25, 1.0])


def test_gains_table_with_fewer_customers_than_bins() -> None:
    t = gains_table([1, 0, 1], [0.2, 0.5, 0.9], bins=10)
    assert t["customers"].sum() == 3 and t["cum_positives_share"].iloc[-1] == 1.0
    assert t["decile"].tolist() == [1, 4, 7]


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 1), st.floats(-1e6, 1e6)), min_size=1, max_size=300),
    bins=st.integers(1, 20),
)
def test_gains_cumulative_share_is_monotone_and_ends_at_one(data, bins) -> None:
    y = np.array([d[0] for d in data])
    s = np.array([d[1] for d in data])
    if y.sum() == 0:
        y[0] = 1
    t = gains_table(y, s, bins)
    gain = t["cum_positives_share"].to_numpy()
    assert np.all(np.diff(gain) >= 0) and gain[-1] == pytest.approx(1.0)
    assert t["cum_customers_share"].iloc[-1] == pytest.approx(1.0)
    assert t["customers"].sum() == len(y) and t["positives"].sum() == y.sum()
    assert t["customers"].max() - t["customers"].min() <= 1


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.05, 0.5))
def test_lift_of_a_random_score_is_about_one(seed, rate) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(100_000) < rate).astype(int)
    m = classification_metrics(y, rng.random(y.size))
    se = math.sqrt(rate * (1 - rate) / 10_000) / rate  # standard error of the top-decile lift
    assert abs(m["top_decile_lift"] - 1) < 5 * se
    assert abs(m["roc_auc"] - 0.5) < 0.02


def test_calibration_table_by_hand() -> None:
    t = calibration_table(Y, P, bins=2)  # lowest five, then highest five p
    assert t["bin"].tolist() == [1, 2]
    assert t["customers"].tolist() == [5, 5]
    assert t["mean_predicted"].tolist() == pytest.approx([0.21, 0.7])
    assert t["observed_rate"].tolist() == pytest.approx([0.2, 0.6])
    # Wilson interval of 1/5 at 95%: 0.0362 .. 0.6245 (textbook value)
    assert t["low"].iloc[0] == pytest.approx(0.0362, abs=1e-4)
    assert t["high"].iloc[0] == pytest.approx(0.6245, abs=1e-4)
    ece = (5 * abs(0.2 - 0.21) + 5 * abs(0.6 - 0.7)) / 10
    assert expected_calibration_error(Y, P, bins=2) == pytest.approx(ece)


def test_wilson_interval_extremes() -> None:
    low, high = wilson_interval([0, 10], [10, 10])
    assert low[0] == pytest.approx(0.0) and high[1] == pytest.approx(1.0)
    assert high[0] == pytest.approx(0.2775, abs=1e-4) and low[1] == pytest.approx(0.7225, abs=1e-4)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_perfectly_calibrated_probabilities_have_small_ece(seed) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 2.0, 200_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(y, p) < 0.02
    skewed = np.clip(p * 1.5, 0, 1)  # over-confident by half: clearly miscalibrated
    assert expected_calibration_error(y, skewed) > 0.05
    t = calibration_table(y, p)
    inside = (t["low"] <= t["mean_predicted"]) & (t["mean_predicted"] <= t["high"])
    assert inside.sum() >= 7  # a 95% interval misses about one bin in twenty


def test_regression_metrics_by_hand() -> None:
    y = np.array([0.0, 10.0, 0.0, 30.0, 5.0, 0.0, 0.0, 100.0, 0.0, 5.0])
    pred = np.array([1.0, 8.0, 0.5, 20.0, 4.0, 0.0, 2.0, 50.0, 0.2, 6.0])
    m = regression_metrics(y, pred)
    err = pred - y
    assert m["n"] == 10
    assert m["mae"] == pytest.approx(np.abs(err).mean())
    assert m["rmse"] == pytest.approx(math.sqrt((err**2).mean()))
    assert m["total_actual"] == 150.0 and m["total_predicted"] == pytest.approx(91.7)
    assert m["top_decile_share"] == pytest.approx(100 / 150)  # top 1 prediction holds 100
    ranks = pd.Series(y).rank().corr(pd.Series(pred).rank())
    assert m["spearman"] == pytest.approx(ranks)
    assert math.isnan(regression_metrics([1.0, 1.0], [0.0, 2.0])["spearman"])
    assert math.isnan(regression_metrics([0.0, 0.0], [0.0, 2.0])["top_decile_share"])


def test_multiclass_metrics_against_sklearn() -> None:
    classes = ["Books", "Garden", "Home", "Toys"]  # sklearn wants them sorted
    rng = np.random.default_rng(1)
    raw = rng.dirichlet(np.ones(4), size=200)
    truth = np.array(classes)[rng.integers(0, 4, size=200)]
    proba = pd.DataFrame(raw, columns=classes)
    m = multiclass_metrics(truth, proba)
    assert m["top1_accuracy"] == pytest.approx(
        top_k_accuracy_score(truth, raw, k=1, labels=classes)
    )
    assert m["top3_accuracy"] == pytest.approx(
        top_k_accuracy_score(truth, raw, k=3, labels=classes)
    )
    assert m["log_loss"] == pytest.approx(log_loss(truth, raw, labels=classes))
    shuffled = proba[["Toys", "Books", "Home", "Garden"]]  # column order does not matter
    assert multiclass_metrics(pd.Series(truth), shuffled) == pytest.approx(m)


def test_multiclass_by_hand_and_unknown_classes() -> None:
    proba = pd.DataFrame(
        {"a": [0.7, 0.1, 0.2], "b": [0.2, 0.6, 0.2], "c": [0.1, 0.2, 0.3], "d": [0, 0.1, 0.3]}
    )
    m = multiclass_metrics(["a", "c", "zzz"], proba)
    assert m["top1_accuracy"] == pytest.approx(1 / 3)
    assert m["top3_accuracy"] == pytest.approx(2 / 3)  # "zzz" has no column: a miss
    assert m["log_loss"] == pytest.approx(-(np.log(0.7) + np.log(0.2) + np.log(1e-6)) / 3)
    with pytest.raises(InputError, match="missing"):
        multiclass_metrics(["a", None, "b"], proba)
    with pytest.raises(InputError, match="length"):
        multiclass_metrics(["a"], proba)
