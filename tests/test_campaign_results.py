"""Results statistics: against published figures (Hillstrom's randomized email experiment),
textbook values, and invariants (property tests)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.campaigns import stats
from sendwise.campaigns.results import analyze, lift

HILLSTROM = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom_dev.csv"
)
# Published effects on the full 64,000 customers (Hillstrom 2008; Radcliffe 2008):
# visit +7.7 points (Mens) and +4.5 (Womens); conversion +0.68 and +0.31 points;
# spend per customer +$0.77 and +$0.42.
PUBLISHED = {
    ("Mens", "visit"): 0.077,
    ("Womens", "visit"): 0.045,
    ("Mens", "conversion"): 0.0068,
    ("Womens", "conversion"): 0.0031,
    ("Mens", "spend_per_unit"): 0.77,
    ("Womens", "spend_per_unit"): 0.42,
}


@pytest.fixture(scope="module")
def hillstrom() -> pd.DataFrame:
    if not HILLSTROM.exists():
        pytest.skip(f"Hillstrom data not found at {HILLSTROM}")
    d = pd.read_csv(HILLSTROM)
    arm = d["segment"].map(
        {"Mens E-Mail": "Mens", "Womens E-Mail": "Womens", "No E-Mail": "holdout"}
    )
    return pd.DataFrame(
        {"arm": arm, "visit": d.visit, "conversion": d.conversion, "spend": d.spend}
    )


def test_hillstrom_lifts_contain_the_published_effects(hillstrom) -> None:
    res = analyze(
        hillstrom,
        shares={"Mens": 1, "Womens": 1, "holdout": 1},
        engagement=(),
        outcomes=("visit", "conversion"),
        value="spend",
        control="Womens",
        sequential_tau=0.02,
    )
    for (arm, metric), effect in PUBLISHED.items():
        row = lift(res, arm, metric)
        assert row["low"] <= effect <= row["high"], (arm, metric, row.to_dict())
    assert lift(res, "Mens", "visit")["p_holm"] < 1e-20
    assert lift(res, "Mens", "visit", baseline="Womens")["estimate"] > 0
    assert not res.srm.mismatch
    inc = res.incremental.set_index("arm")
    assert inc.at["Mens", "visit_low"] < inc.at["Mens", "visit"] < inc.at["Mens", "visit_high"]
    # a 3-way split of 2:1:1 designed shares would be a glaring mismatch
    bad = analyze(hillstrom, shares={"Mens": 2, "Womens": 1, "holdout": 1}, engagement=(),
                  outcomes=("visit",), value=None)  # fmt: skip
    assert bad.srm.mismatch


def test_wilson_matches_the_textbook() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662
    low, high = stats.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert stats.wilson(0, 10)[0] == 0.0 and math.isclose(stats.wilson(10, 10)[1], 1.0)


def test_small_counts_use_fishers_exact_test() -> None:
    d = stats.two_proportions(3, 40, 0, 40)
    assert d.test == "fisher" and math.isclose(d.p_value, 0.2405, abs_tol=1e-3)
    assert stats.two_proportions(300, 1000, 250, 1000).test == "z"


def test_welch_against_scipy() -> None:
    from scipy import stats as sps

    rng = np.random.default_rng(1)
    a, b = rng.exponential(2.0, 300), rng.exponential(1.5, 200)
    d = stats.welch(a, b)
    assert math.isclose(d.p_value, sps.ttest_ind(a, b, equal_var=False).pvalue, rel_tol=1e-9)
    assert d.low < a.mean() - b.mean() < d.high


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_is_monotone_and_never_below_raw(p) -> None:
    adj = stats.holm(p)
    assert all(a >= r - 1e-12 and a <= 1 for a, r in zip(adj, p, strict=True))
    order = np.argsort(p)
    assert all(np.diff(np.asarray(adj)[order]) >= -1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31))
def test_msprt_under_the_null_rarely_rejects_at_any_look(seed) -> None:
    """Always valid: peeking every 200 customers under no effect keeps the chance of ever
    rejecting at 5% small (a single seed rejects or not; the frequency is checked below)."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(4000) < 0.1, rng.random(4000) < 0.1
    ps = [
        stats.msprt(int(a[:n].sum()), n, int(b[:n].sum()), n, 0.02) for n in range(200, 4001, 200)
    ]
    assert all(0 < p <= 1 for p in ps)


def test_msprt_controls_false_positives_across_peeks() -> None:
    rng = np.random.default_rng(7)
    ever_naive = ever_msprt = 0
    for _ in range(300):
        a, b = rng.random(3000) < 0.1, rng.random(3000) < 0.1
        looks = range(150, 3001, 150)
        naive = [
            stats.two_proportions(int(a[:n].sum()), n, int(b[:n].sum()), n).p_value for n in looks
        ]
        seq = [stats.msprt(int(a[:n].sum()), n, int(b[:n].sum()), n, 0.02) for n in looks]
        ever_naive += min(naive) < 0.05
        ever_msprt += min(seq) < 0.05
    assert ever_msprt / 300 <= 0.05 < ever_naive / 300
