"""Buy-till-you-die models: BG/NBD and Gamma-Gamma against the published CDNOW fits, recovery
of known parameters from simulated customers, prediction shapes, dict round trips, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from sendwise.errors import InputError
from sendwise.predict import (
    BetaGeoFitter,
    GammaGammaFitter,
    simulate_bgnbd,
    summary_from_transactions,
)

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
CAL_END = "1997-09-30"  # calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout 39 weeks


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    if not CDNOW.exists():
        pytest.skip(f"CDNOW sample not found at {CDNOW}")
    names = ["master_id", "sample_id", "date", "cds", "dollar"]
    log = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=names, dtype={"date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


@pytest.fixture(scope="module")
def cal(cdnow: pd.DataFrame) -> pd.DataFrame:
    return summary_from_transactions(
        cdnow["sample_id"], cdnow["date"], CAL_END, freq_days=7, monetary=cdnow["dollar"]
    )


@pytest.fixture(scope="module")
def bgnbd(cal: pd.DataFrame) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cal["frequency"], cal["recency"], cal["T"])


@pytest.fixture(scope="module")
def gamma_gamma(cal: pd.DataFrame) -> GammaGammaFitter:
    repeat = cal[cal["frequency"] > 0]
    return GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])


def test_summary_follows_lifetimes_conventions() -> None:
    ids = ["a", "a", "a", "a", "b", "c", "c"]
    dates = ["2020-01-01", "2020-01-01", "2020-01-08", "2020-01-15 13:00", "2020-01-08",
             "2020-01-01", "2020-03-01"]  # fmt: skip
    spend = [1.0, 2.0, 10.0, 20.0, 5.0, 4.0, 99.0]
    s = summary_from_transactions(ids, dates, "2020-01-29", monetary=spend)
    assert s.loc["a"].tolist() == [2, 2.0, 4.0, 15.0]  # same-day buys are one; first excluded
    assert s.loc["b"].tolist() == [0, 0.0, 3.0, 0.0]
    assert s.loc["c"].tolist() == [0, 0.0, 4.0, 0.0]  # after observation end: ignored
    assert s["frequency"].dtype == np.int64


def test_cdnow_summary_shape(cal: pd.DataFrame) -> None:
    assert len(cal) == 2357
    assert cal["T"].max() == pytest.approx(272 / 7)  # first bought on 1997-01-01


def test_bgnbd_matches_published_cdnow_fit(bgnbd: BetaGeoFitter) -> None:
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert bgnbd.params_[name] == pytest.approx(value, abs=0.001), name
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert bgnbd.n_customers_ == 2357


def test_bgnbd_worked_example_of_the_paper(bgnbd: BetaGeoFitter) -> None:
    # Fader, Hardie & Lee (2005): x = 2, t_x = 30.43, T = 38.86 expects 1.226 in 39 weeks
    assert bgnbd.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.001)


def test_gamma_gamma_matches_published_cdnow_fit(gamma_gamma: GammaGammaFitter) -> None:
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert gamma_gamma.params_[name] == pytest.approx(value, abs=0.01), name
    assert gamma_gamma.n_customers_ == 946


def test_holdout_purchases(cdnow: pd.DataFrame, cal: pd.DataFrame, bgnbd: BetaGeoFitter) -> None:
    holdout = cdnow[cdnow["date"] > pd.Timestamp(CAL_END)]
    actual = len(holdout.groupby(["sample_id", "date"]))  # purchase days, as in calibration
    predicted = bgnbd.expected_purchases(39, cal["frequency"], cal["recency"], cal["T"]).sum()
    assert actual == 1882
    assert predicted == pytest.approx(1653.4, abs=1.0)
    # The published model under-predicts this holdout by 12 %: not the 10 % the brief hoped for.
    assert predicted == pytest.approx(actual, rel=0.15)


def test_clv(cal: pd.DataFrame, bgnbd: BetaGeoFitter, gamma_gamma: GammaGammaFitter) -> None:
    args = (cal["frequency"], cal["recency"], cal["T"], cal["monetary_value"])
    clv = gamma_gamma.customer_lifetime_value(bgnbd, *args)
    assert clv.shape == (2357,) and np.all(clv >= 0)
    undiscounted = gamma_gamma.customer_lifetime_value(bgnbd, *args, discount_rate=0.0)
    spend = gamma_gamma.conditional_expected_average_profit(cal["frequency"], cal["monetary_value"])
    year = bgnbd.expected_purchases(12 * 365.25 / 12 / 7, *args[:3])
    np.testing.assert_allclose(undiscounted, year * spend, rtol=1e-9)
    assert np.all(clv <= undiscounted)
    p, q, v = (gamma_gamma.params_[k] for k in "pqv")
    assert spend[cal["frequency"].to_numpy() == 0][0] == pytest.approx(p * v / (q - 1))


PARAMS = [(0.25, 4.0, 0.8, 2.5), (1.2, 8.0, 0.5, 4.0)]


def _fit_simulated(params: tuple[float, ...], seed: int) -> np.ndarray:
    T = np.random.default_rng(seed + 100).integers(7, 3 * 365, 20_000) / 7  # up to 3 years
    x, tx, t_end = simulate_bgnbd(20_000, *params, T, seed=seed)
    return np.array(list(BetaGeoFitter().fit(x, tx, t_end).params_.values()))


@pytest.mark.parametrize("params", PARAMS)
def test_recovers_simulated_parameters(params: tuple[float, ...]) -> None:
    # With 20,000 customers the estimates of r and alpha scatter by ~2 %, those of a and b by
    # ~4-7 % (standard deviations over 20 seeds), hence the wider bounds for a and b.
    fitted = _fit_simulated(params, seed=3)
    np.testing.assert_allclose(fitted[:2], params[:2], rtol=0.15)
    np.testing.assert_allclose(fitted[2:], params[2:], rtol=0.25)
    # averaged over several seeds, no bias: the mean of 8 fits is within 6 %
    mean = np.mean([_fit_simulated(params, seed) for seed in range(10, 18)], axis=0)
    np.testing.assert_allclose(mean, params, rtol=0.06)


def test_prediction_shapes(bgnbd: BetaGeoFitter) -> None:
    assert np.all(bgnbd.probability_alive([0, 0], [0, 0], [5, 30]) == 1.0)
    alive = bgnbd.probability_alive(3, [30, 20, 10, 1], 38)
    assert np.all(np.diff(alive) < 0)
    grows = bgnbd.expected_purchases([0, 1, 5, 20, 52], 2, 10, 30)
    assert grows[0] == 0 and np.all(np.diff(grows) > 0)
    new = bgnbd.expected_purchases_unconditional([0, 1, 10, 39, 78])
    assert new[0] == 0 and np.all(np.diff(new) > 0)
    # a brand-new customer (x = 0, T = 0) expects what the unconditional model says
    assert bgnbd.expected_purchases(10, 0, 0, 0) == pytest.approx(new[2])


def test_dict_round_trip(cal: pd.DataFrame, bgnbd: BetaGeoFitter, gamma_gamma) -> None:
    args = (cal["frequency"], cal["recency"], cal["T"])
    bg_back = BetaGeoFitter.from_dict(json.loads(json.dumps(bgnbd.to_dict())))
    np.testing.assert_array_equal(bg_back.expected_purchases(39, *args),
                                  bgnbd.expected_purchases(39, *args))  # fmt: skip
    np.testing.assert_array_equal(bg_back.probability_alive(*args), bgnbd.probability_alive(*args))
    gg_dict = json.loads(json.dumps(gamma_gamma.to_dict()))
    gg_back = GammaGammaFitter.from_dict(gg_dict)
    m = (cal["frequency"], cal["monetary_value"])
    np.testing.assert_array_equal(gg_back.conditional_expected_average_profit(*m),
                                  gamma_gamma.conditional_expected_average_profit(*m))  # fmt: skip
    assert gg_dict["model"] == "GammaGammaFitter"
    with pytest.raises(InputError, match="GammaGammaFitter"):
        BetaGeoFitter.from_dict(gg_dict)
    with pytest.raises(InputError, match="keys"):
        BetaGeoFitter.from_dict({"model": "BetaGeoFitter", "params": {"r": 1.0}})
    with pytest.raises(InputError, match="positive"):
        bad = {**bgnbd.to_dict(), "params": {**bgnbd.params_, "a": -1.0}}
        BetaGeoFitter.from_dict(bad)


def test_sklearn_contract() -> None:
    model = BetaGeoFitter(penalizer=0.1)
    assert model.get_params() == {"penalizer": 0.1, "shrinkage": 0.0}
    with pytest.raises(NotFittedError):
        model.probability_alive(1, 1, 2)
    with pytest.raises(NotFittedError):
        model.to_dict()
    x, tx, t_end = simulate_bgnbd(500, 0.5, 5.0, 1.0, 3.0, 30.0, seed=1)
    assert model.fit(x, tx, t_end) is model
    # the penalty pulls the parameters towards zero
    plain = BetaGeoFitter().fit(x, tx, t_end).params_
    assert sum(v * v for v in model.params_.values()) < sum(v * v for v in plain.values())


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, -1], [1, 0], [2, 2], "negative"),
        ([1, 2], [3, 1], [2, 2], "recency is larger than T"),
        ([0, 2], [1, 1], [2, 2], "frequency 0"),
        ([1.5, 2], [1, 1], [2, 2], "whole numbers"),
        ([1, 2], [1, 1], [2, 2, 3], "equal length"),
        ([1, np.nan], [1, 1], [2, 2], "NaN"),
        ([], [], [], "zero customers"),
        (["a"], [1], [2], "numeric"),
    ],
)
def test_bad_rfm_input(frequency, recency, T, message: str) -> None:
    with pytest.raises(InputError, match=message):
        BetaGeoFitter().fit(frequency, recency, T)


def test_frequency_with_zero_recency_is_allowed() -> None:
    x, tx, t_end = simulate_bgnbd(300, 0.5, 5.0, 1.0, 3.0, 30.0, seed=2)
    tx[np.flatnonzero(x > 0)[:3]] = 0.0  # repeat purchases on the first day, as lifetimes allows
    assert np.all(np.isfinite(BetaGeoFitter().fit(x, tx, t_end).probability_alive(x, tx, t_end)))


def test_bad_spend_input(bgnbd: BetaGeoFitter) -> None:
    with pytest.raises(InputError, match="frequency > 0"):
        GammaGammaFitter().fit([0, 2], [1.0, 2.0])
    with pytest.raises(InputError, match="positive"):
        GammaGammaFitter().fit([1, 2], [0.0, 2.0])
    with pytest.raises(InputError, match="mismatched"):
        bgnbd.probability_alive([1, 2, 3], [1, 1], [2, 2])
    gg = GammaGammaFitter.from_dict({"model": "GammaGammaFitter",
                                     "params": {"p": 6.0, "q": 3.0, "v": 15.0}})  # fmt: skip
    with pytest.raises(InputError, match="time_months"):
        gg.customer_lifetime_value(bgnbd, [1], [1], [2], [10.0], time_months=0)
    with pytest.raises(InputError, match="freq_days"):
        summary_from_transactions(["a"], ["2020-01-01"], "2020-02-01", freq_days=0)
    with pytest.raises(InputError, match="no transactions"):
        summary_from_transactions(["a"], ["2020-03-01"], "2020-02-01")
    with pytest.raises(InputError, match="length"):
        summary_from_transactions(["a", "b"], ["2020-01-01"], "2020-02-01")
