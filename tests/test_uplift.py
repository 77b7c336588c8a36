"""Uplift: the metrics against hand-computed values and invariants, the models' contract and
JSON round trip, Hillstrom (real, randomised) as the published benchmark, the simulator's known
persuadables as ground truth, and Thompson sampling in waves against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.errors import InputError
from sendwise.uplift import metrics
from sendwise.uplift.bandit import ThompsonAllocator, confidence_sequence, split
from sendwise.uplift.models import LEARNERS, make_model, model_from_dict

HILLSTROM = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom_dev.csv"
)


def toy(n: int = 4000, seed: int = 0):
    """Uplift 0.2 * x[:, 0] on a 0.1 base rate: the first feature decides who is persuaded."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + 0.2 * X[:, 0] * t).astype(float)
    return X, y, t


def test_qini_by_hand() -> None:
    # scores 3,2,1,0: rows (t, y) = (1,1), (0,0), (1,0), (0,1)
    y, u, t = [1, 0, 0, 1], [3, 2, 1, 0], [1, 0, 1, 0]
    n, q = metrics.qini_curve(y, u, t)
    assert n.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, 1, 0]  # at 4: 1 - 1 * 2/2
    # area above the straight line to (4, 0): trapezoids of heights 0,1,1,1,0 = 3, / 16
    assert metrics.qini_coefficient(y, u, t) == pytest.approx(3 / 16)
    assert metrics.uplift_at_k(y, u, t, 0.5) == 1.0  # top 2: treated 1/1, control 0/1
    assert metrics.uplift_at_k(y, u, t, 0.5, "by_group") == 1.0  # best treated 1, best control 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 200))
def test_metrics_do_not_depend_on_row_order(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y, t = rng.integers(0, 2, n), np.r_[0, 1, rng.integers(0, 2, n - 2)]
    u = rng.integers(0, 5, n).astype(float)  # many ties
    perm = rng.permutation(n)
    for f in (metrics.qini_coefficient, metrics.auuc, metrics.uplift_at_k):
        assert f(y, u, t) == pytest.approx(f(y[perm], u[perm], t[perm]))
    deciles = metrics.uplift_by_decile(y, u, t)
    assert deciles["n_treated"].sum() + deciles["n_control"].sum() == n  # no row lost


def test_bad_experiments_are_refused() -> None:
    with pytest.raises(InputError, match="treated and held-out"):
        metrics.qini_coefficient([1, 0], [1, 2], [1, 1])
    with pytest.raises(InputError, match="0 \\(held out\\)"):
        metrics.auuc([1, 0], [1, 2], [2, 0])
    with pytest.raises(InputError, match="finite"):
        metrics.uplift_at_k([1, 0], [np.nan, 2], [1, 0])


@pytest.mark.parametrize("kind", list(LEARNERS))
def test_each_learner_finds_the_persuaded_and_round_trips(kind: str) -> None:
    X, y, t = toy()
    model = make_model(kind, n_estimators=100, min_child_samples=50)
    assert model.fit(X, y, t) is model
    Xt, yt, tt = toy(seed=1)
    u = model.predict(Xt)
    assert np.corrcoef(u, Xt[:, 0])[0, 1] > 0.5
    assert metrics.qini_coefficient(yt, u, tt) > 0
    again = model_from_dict(model.to_dict())
    np.testing.assert_array_equal(again.predict(Xt), u)
    with pytest.raises(ValueError):
        model.predict(Xt[:, :2])  # the wrong number of features


def test_fit_refuses_a_non_binary_treatment() -> None:
    X, y, t = toy()
    with pytest.raises(InputError, match="treatment"):
        make_model("t_learner").fit(X, y, t * 2)


# --- Hillstrom ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hillstrom_model(tmp_path_factory):
    if not HILLSTROM.exists():
        pytest.skip(f"Hillstrom data not found at {HILLSTROM}")
    from sendwise.predict.registry import Registry
    from sendwise.uplift.artifact import save_uplift
    from sendwise.uplift.data import read_hillstrom
    from sendwise.uplift.train import fit_uplift

    exp = read_hillstrom(HILLSTROM, arm="Womens", outcome="visit")
    fitted = fit_uplift(exp, folds=3, seed=0)
    registry = Registry(tmp_path_factory.mktemp("models"))
    mv = save_uplift(registry, "womens_visit", fitted, exp, layout="hillstrom", source="dev")
    return fitted, registry, mv


def test_hillstrom_womens_visit_uplift_at_30_on_unseen_rows(hillstrom_model) -> None:
    fitted, _, mv = hillstrom_model
    # out-of-fold: every row scored by a model that did not see it (published: ~0.066)
    assert fitted.report["uplift_at_k"]["0.3"] >= 0.070
    assert fitted.report["average_effect"] == pytest.approx(0.045, abs=0.01)
    assert fitted.chosen.qini == max(c.qini for c in fitted.candidates)
    assert mv.metadata["gate"]["passed"]


def test_scoring_never_reads_the_arm_or_the_outcome(hillstrom_model, tmp_path) -> None:
    from sendwise.uplift.artifact import load_uplift
    from sendwise.uplift.score import score_file

    _, registry, _ = hillstrom_model
    model, mv = load_uplift(registry, "womens_visit")
    raw = pd.read_csv(HILLSTROM, dtype=str, keep_default_na=False).head(3000)
    bare = raw.drop(columns=["segment", "visit", "conversion", "spend"])
    lying = raw.assign(segment="nonsense", visit="x", spend="")  # unreadable if it were read
    scores = []
    for name, frame in (("bare", bare), ("lying", lying)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        assert score_file(model, mv, tmp_path / f"{name}.csv", tmp_path / f"{name}_out.csv") == 3000
        out = pd.read_csv(tmp_path / f"{name}_out.csv", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(out.drop(columns="uplift"), frame)  # rows kept as they were
        scores.append(out["uplift"].astype(float).to_numpy())
    np.testing.assert_array_equal(scores[0], scores[1])


def test_a_bad_row_is_named(hillstrom_model, tmp_path) -> None:
    from sendwise.uplift.artifact import load_uplift
    from sendwise.uplift.score import score_file

    model, mv = load_uplift(hillstrom_model[1], "womens_visit")
    raw = pd.read_csv(HILLSTROM, dtype=str, keep_default_na=False).head(10)
    raw.loc[4, "channel"] = "Pigeon"
    raw.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="line 6, column channel: 'Pigeon'"):
        score_file(model, mv, tmp_path / "bad.csv", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# --- the simulator's ground truth -----------------------------------------------------------


@pytest.mark.slow
def test_uplift_targets_more_true_incremental_conversion_than_propensity() -> None:
    from sendwise.uplift.data import Experiment
    from sendwise.uplift.train import fit_uplift
    from uplift_sim import sim_experiment

    sim = sim_experiment(customers=100_000, seed=5)
    e = sim.experiment
    train = np.random.default_rng(0).random(len(e)) < 0.5
    part = Experiment(
        e.X[train].reset_index(drop=True), e.treatment[train], e.y[train], "A", "conversion"
    )
    model = fit_uplift(part).model
    propensity = lgb.LGBMClassifier(
        n_estimators=200, learning_rate=0.03, num_leaves=15, verbose=-1
    ).fit(part.X, part.y)
    unseen = e.X[~train]
    true = sim.true_uplift[~train]
    k = int(0.3 * len(true))
    by_uplift = true[np.argsort(-model.predict(unseen.to_numpy()))[:k]].sum()
    by_propensity = true[np.argsort(-propensity.predict_proba(unseen)[:, 1])[:k]].sum()
    at_random = true.mean() * k
    print(
        f"true incremental conversions, top 30%: uplift {by_uplift:.1f}, "
        f"propensity {by_propensity:.1f}, random {at_random:.1f}"
    )
    assert by_uplift > by_propensity
    assert by_uplift > at_random


# --- Thompson sampling ----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.dictionaries(st.sampled_from("ABCD"), st.floats(0, 1), min_size=1))
def test_split_keeps_every_customer(n: int, shares: dict[str, float]) -> None:
    if sum(shares.values()) == 0:
        return
    total = sum(shares.values())
    counts = split(n, {a: s / total for a, s in shares.items()})
    assert sum(counts.values()) == n and min(counts.values()) >= 0


def test_confidence_sequence_holds_at_every_look() -> None:
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(200):
        x = np.cumsum(rng.random(5000) < 0.3)
        n = np.arange(1, 5001)
        lo_hi = [confidence_sequence(int(x[i - 1]), int(i)) for i in n[::50]]
        misses += any(not lo <= 0.3 <= hi for lo, hi in lo_hi)
    assert misses <= 10  # alpha 0.05 over all looks at once: at most ~5% of the runs


def test_allocator_keeps_the_floor_and_the_holdout() -> None:
    alloc = ThompsonAllocator(["A", "B", "C"], holdout=0.1, floor=0.05, seed=1)
    shares = alloc.shares({"A": 500, "B": 10, "C": 10}, {"A": 1000, "B": 1000, "C": 1000})
    assert shares["holdout"] == 0.1
    assert sum(shares.values()) == pytest.approx(1.0)
    assert min(shares["B"], shares["C"]) == pytest.approx(0.9 * 0.05)
    with pytest.raises(InputError):
        ThompsonAllocator(["A", "B"], floor=0.6)


@pytest.fixture(scope="module")
def sim_truth():
    from sendwise.simulate import simulate_shop

    return simulate_shop(customers=60_000, days=365, seed=2).truth.to_pandas()


def test_thompson_moves_traffic_to_the_best_variant_and_loses_less(sim_truth) -> None:
    from uplift_sim import conversion_probabilities, run_waves

    p = conversion_probabilities(sim_truth, {"A": 0.5, "B": 1.0, "C": 2.0})
    assert p["C"].mean() > p["B"].mean() > p["A"].mean()  # C is truly best
    alloc = ThompsonAllocator(["A", "B", "C"], holdout=0.1, floor=0.03, seed=4)
    log, lost = run_waves(p, lambda lg: alloc.shares(lg.successes, lg.trials), waves=10, seed=4)
    equal = {"A": 0.3, "B": 0.3, "C": 0.3, "holdout": 0.1}
    _, lost_equal = run_waves(p, lambda lg: equal, waves=10, seed=4)
    best_share = [s["C"] / (1 - s["holdout"]) for s in log.shares]
    print("share of C by wave:", np.round(best_share, 3), f"lost {lost:.1f} vs {lost_equal:.1f}")
    assert max(best_share[-3:]) > 0.8
    assert all(s["holdout"] == 0.1 for s in log.shares)
    assert lost < lost_equal
    ci = log.intervals()
    assert ci["C"]["lift_low"] <= p["C"].mean() - p["holdout"].mean() <= ci["C"]["lift_high"]


# --- targeting groups -----------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(50, 600), st.floats(1, 100), st.integers(0, 10_000))
def test_uplift_groups_are_equal_and_independent_of_row_order(n, top, seed) -> None:
    from sendwise.uplift.targeting import in_targeted_half, uplift_groups

    rng = np.random.default_rng(seed)
    ids = [f"C{i:05d}" for i in range(n)]
    score = rng.integers(0, 4, n).astype(float)  # many ties
    groups = uplift_groups(ids, score, top, "camp")
    perm = rng.permutation(n)
    again = uplift_groups([ids[i] for i in perm], score[perm], top, "camp")
    pd.testing.assert_series_equal(groups, again.reindex(groups.index))
    half = in_targeted_half("camp", ids)
    g = groups.fillna("").to_numpy()
    assert set(groups[half].dropna()) <= {"targeted"}
    assert set(groups[~half].dropna()) <= {"random"}
    for name, members in (("targeted", half), ("random", ~half)):
        assert (g == name).sum() == round(members.sum() * top / 100)
    # the targeted half's chosen ones have the best scores of that half
    chosen = g == "targeted"
    if chosen.any() and (half & ~chosen).any():
        assert score[chosen].min() >= score[half & ~chosen].max()


def test_a_campaign_experiment_refuses_customers_without_features() -> None:
    from sendwise.uplift.data import experiment_from_units

    units = pd.DataFrame({"customer_id": ["a", "b", "c"], "arm": ["A", "holdout", "A"],
                          "conversion": [1, 0, 0]})  # fmt: skip
    features = pd.DataFrame({"f": [1.0, 2.0]}, index=["a", "b"])
    with pytest.raises(InputError, match="1 customer\\(s\\) of the campaign have no features"):
        experiment_from_units(units, features, arm="A", outcome="conversion")
    with pytest.raises(InputError, match="needs arm 'B' and a holdout"):
        experiment_from_units(units, features, arm="B", outcome="conversion")
