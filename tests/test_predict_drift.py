"""Population stability index: hand-computed values, known shifts, JSON round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.errors import InputError
from sendwise.predict.drift import EPSILON, drift_table, psi, psi_reference


def test_psi_of_a_sample_against_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=10_000)
    ref = psi_reference(x)
    assert psi(ref, x) == pytest.approx(0.0, abs=1e-12)
    assert len(ref["shares"]) == 11  # ten deciles and the bin above the training maximum
    assert ref["shares"][:10] == pytest.approx([0.1] * 10)
    assert ref["shares"][10] == 0.0 and ref["missing_share"] == 0.0


def test_psi_by_hand_on_fixed_bins() -> None:
    ref = {"format": 1, "n": 100, "cuts": [1.0, 2.0], "shares": [0.5, 0.3, 0.2],
           "missing_share": 0.0}  # fmt: skip
    today = [0.5] * 2 + [1.5] * 4 + [3.0] * 3 + [np.nan]  # shares 0.2, 0.4, 0.3, missing 0.1
    expected = (
        (0.2 - 0.5) * math.log(0.2 / 0.5)
        + (0.4 - 0.3) * math.log(0.4 / 0.3)
        + (0.3 - 0.2) * math.log(0.3 / 0.2)
        + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    )
    assert psi(ref, today) == pytest.approx(expected)
    assert psi(ref, [2.0] * 3 + [1.0] * 5 + [9.0] * 2) == pytest.approx(0.0)  # edges: right-closed


def test_a_shift_of_one_standard_deviation_is_flagged() -> None:
    rng = np.random.default_rng(1)
    ref = psi_reference(rng.normal(0, 1, 20_000))
    assert psi(ref, rng.normal(0, 1, 20_000)) < 0.01
    shifted = psi(ref, rng.normal(1, 1, 20_000))
    assert shifted > 0.5  # well above the 0.2 "worth a look" line (about 1.0 with deciles)


def test_missing_values_constant_columns_and_booleans() -> None:
    ref = psi_reference(pd.Series([1.0, None, 3.0, 2.0], dtype="Float64"))
    assert ref["missing_share"] == 0.25 and sum(ref["shares"]) == pytest.approx(0.75)
    assert psi(ref, [np.nan] * 4) > 1.0

    constant = psi_reference([5.0] * 100)
    assert constant["shares"] == [0.0, 1.0, 0.0]  # below, at and above the value
    assert psi(constant, [5.0] * 50) == pytest.approx(0.0)
    assert psi(constant, [4.0] * 50 + [5.0] * 50) > 0.2
    assert psi(constant, [5.0] * 50 + [6.0] * 50) > 0.2

    flags = psi_reference(pd.Series([True, False, False, None], dtype="boolean"))
    assert flags["shares"] == [0.5, 0.25, 0.0] and flags["missing_share"] == 0.25
    assert psi(flags, np.array([True, True, True, False])) > 0.2


def test_infinite_values_count_as_missing() -> None:
    ref = psi_reference([1.0, 2.0, np.inf, -np.inf])
    assert ref["missing_share"] == 0.5


def test_reference_survives_json() -> None:
    x = np.random.default_rng(2).lognormal(size=5000)
    ref = psi_reference(x, bins=7)
    back = json.loads(json.dumps(ref))
    assert back == ref
    y = np.random.default_rng(3).lognormal(0.3, size=5000)
    assert psi(back, y) == psi(ref, y)


def test_bad_references_and_values() -> None:
    with pytest.raises(InputError, match="not a PSI reference"):
        psi({"cuts": [1.0]}, [1.0])
    with pytest.raises(InputError, match="corrupt"):
        psi({"format": 1, "cuts": [2.0, 1.0], "shares": [0.5, 0.5, 0.0], "missing_share": 0}, [1])
    with pytest.raises(InputError, match="zero values"):
        psi_reference([])
    with pytest.raises(InputError, match="numeric"):
        psi_reference(["a", "b"])
    with pytest.raises(InputError, match="bins"):
        psi_reference([1.0, 2.0], bins=1)


def test_drift_table_sorts_flags_and_names_missing_features() -> None:
    rng = np.random.default_rng(4)
    train = pd.DataFrame({"stable": rng.normal(size=5000), "moved": rng.normal(size=5000)})
    refs = {name: psi_reference(train[name]) for name in train}
    today = pd.DataFrame({"stable": rng.normal(size=5000), "moved": rng.normal(2, 1, 5000)})
    table = drift_table(refs, today)
    assert table["feature"].tolist() == ["moved", "stable"]
    assert table["flagged"].tolist() == [True, False]
    assert table["psi"].is_monotonic_decreasing
    with pytest.raises(InputError, match=r"lacks feature.*moved"):
        drift_table(refs, today[["stable"]])


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), min_size=1, max_size=200),
    today=st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), min_size=1, max_size=200),
    bins=st.integers(2, 20),
)
def test_psi_is_finite_non_negative_and_zero_on_itself(values, today, bins) -> None:
    x = np.array([np.nan if v is None else v for v in values])
    ref = psi_reference(x, bins)
    assert sum(ref["shares"]) + ref["missing_share"] == pytest.approx(1.0)
    assert psi(ref, x) == pytest.approx(0.0, abs=1e-12)
    value = psi(ref, np.array([np.nan if v is None else v for v in today]))
    assert math.isfinite(value) and value >= 0
