"""RFM: quintile scores from cume_dist, checked against an independent pandas implementation of
the documented formula and segment table, plus properties over random data."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.segments import NO_PURCHASE, RFM_SEGMENTS, SegmentError, rfm_scores, rfm_segment
from sendwise.segments.rfm import OTHER

DOC = Path(__file__).resolve().parents[1] / "docs" / "segments.md"
NAMES = [name for name, _ in RFM_SEGMENTS]


def features(
    frequency: list[int], recency: list[float | None], monetary: list[float]
) -> ibis.Table:
    n = len(frequency)
    return ibis.memtable(
        pa.table(
            {
                "customer_id": pa.array([f"c{i:04d}" for i in range(n)]),
                "recency_days": pa.array(recency, pa.float64()),
                "frequency": pa.array(frequency, pa.int64()),
                "monetary": pa.array(monetary, pa.float64()),
            }
        )
    )


def scores(table: ibis.Table, **kwargs: Any) -> pd.DataFrame:
    return (
        rfm_scores(table, **kwargs).to_pyarrow().to_pandas().set_index("customer_id").sort_index()
    )


def oracle_scores(df: pd.DataFrame, ties: str = "top") -> pd.DataFrame:
    """ceil(5 * cume_dist) over the buyers, by counting: cume_dist = (buyers at or before) / n."""
    buyers = df[df.frequency >= 1]
    n = len(buyers)

    def score(values: pd.Series, at_or_before: str) -> pd.Series:
        v = values.to_numpy()
        if ties == "bottom":  # at or before in the reversed order, score turned over
            at_or_before = "<=" if at_or_before == ">=" else ">="
        count = [(v >= x).sum() if at_or_before == ">=" else (v <= x).sum() for x in v]
        ceil = [(5 * c + n - 1) // n for c in count]
        return pd.Series([6 - s if ties == "bottom" else s for s in ceil], index=values.index)

    return pd.DataFrame(
        {
            "r_score": score(buyers.recency_days, ">="),  # descending: more recent comes later
            "f_score": score(buyers.frequency, "<="),
            "m_score": score(buyers.monetary, "<="),
        }
    )


def oracle_segment(r: int, f: int, m: int) -> str:
    """The table of docs/segments.md, written out again by hand."""
    if r >= 4 and f >= 4 and m >= 4:
        return "Champions"
    if r <= 1 and f >= 4 and m >= 4:
        return "Can't Lose Them"
    if r <= 2 and f >= 3 and m >= 3:
        return "At Risk"
    if r >= 3 and f >= 3 and m >= 3:
        return "Loyal"
    if r >= 4 and f <= 1:
        return "New"
    if r >= 3 and f <= 1:
        return "Promising"
    if r >= 3 and f >= 2:
        return "Potential Loyalist"
    if r == 2 and f >= 2 and m >= 2:
        return "Need Attention"
    if r == 2:
        return "About to Sleep"
    if r <= 1 and f >= 2 and m >= 2:
        return "Hibernating"
    return "Lost"


@pytest.fixture(scope="module")
def shop() -> pd.DataFrame:
    """2,000 customers, a fifth without an order, many ties (whole days, whole amounts)."""
    rng = np.random.default_rng(3)
    n = 2000
    freq = rng.poisson(1.6, n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "frequency": freq,
            "recency_days": np.where(freq > 0, rng.integers(0, 400, n), np.nan),
            "monetary": np.where(freq > 0, np.round(rng.gamma(2.0, 60.0, n)), 0.0),
        }
    ).set_index("customer_id")


def table_of(df: pd.DataFrame) -> ibis.Table:
    recency = [None if np.isnan(x) else float(x) for x in df.recency_days]
    t = features(df.frequency.tolist(), recency, df.monetary.tolist())
    assert t.customer_id.to_pyarrow().to_pylist() == df.index.tolist()
    return t


def test_a_small_example_by_hand() -> None:
    t = features([1] * 10, [float(d) for d in range(1, 11)], [10.0] * 9 + [99.0])
    got = scores(t)
    assert got.r_score.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert got.f_score.tolist() == [5] * 10  # one tie: every buyer at the top
    assert got.m_score.tolist() == [5] * 10  # cume_dist 0.9 for the nine tied: ceil(4.5) = 5
    assert got.rfm_score.tolist()[:3] == ["555", "555", "455"]
    bottom = scores(t, ties="bottom")
    assert bottom.f_score.tolist() == [1] * 10
    assert bottom.m_score.tolist() == [1] * 9 + [5]


@pytest.mark.parametrize("ties", ["top", "bottom"])
def test_scores_and_segments_match_the_documented_formula_and_table(
    shop: pd.DataFrame, ties: str
) -> None:
    got = scores(table_of(shop), ties=ties)
    expected = oracle_scores(shop, ties)
    buyers = got.loc[expected.index]
    for col in ("r_score", "f_score", "m_score"):
        assert buyers[col].astype(int).tolist() == expected[col].tolist(), col
    no_order = got.drop(expected.index)
    assert len(no_order) == (shop.frequency == 0).sum() > 0
    assert no_order.r_score.isna().all() and no_order.rfm_score.isna().all()
    assert set(no_order.rfm_segment) == {NO_PURCHASE}
    segments = [oracle_segment(*cell) for cell in expected.itertuples(index=False)]
    assert Counter(buyers.rfm_segment) == Counter(segments)
    assert OTHER not in set(got.rfm_segment)


def test_the_table_names_every_cell_and_uses_every_segment() -> None:
    cells = list(itertools.product(range(1, 6), repeat=3))
    grid = ibis.memtable(pa.table({k: [c[i] for c in cells] for i, k in enumerate("rfm")}))
    grid = grid.rename(r_score="r", f_score="f", m_score="m")
    named = grid.mutate(s=rfm_segment(grid)).to_pyarrow().to_pylist()
    assert [row["s"] for row in named] == [oracle_segment(*c) for c in cells]
    assert set(row["s"] for row in named) == set(NAMES)


def test_the_docs_show_the_table_the_code_uses() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for name, rule in RFM_SEGMENTS:
        assert f"| {name} | `{rule}` |" in doc


def test_a_custom_table_and_its_fallback() -> None:
    t = features([1, 3, 0], [5.0, 50.0, None], [10.0, 20.0, 0.0])
    got = scores(t, segments=[("Regular", "f_score >= 5")])  # F: 3 and 5 for the two buyers
    assert got.rfm_segment.tolist() == [OTHER, "Regular", NO_PURCHASE]
    assert got.f_score.tolist()[:2] == [3, 5]
    with pytest.raises(SegmentError, match="monetary"):
        rfm_scores(t.drop("monetary"))
    with pytest.raises(SegmentError, match="ties"):
        rfm_scores(t, ties="middle")  # type: ignore[arg-type]


customers = st.lists(
    st.tuples(
        st.integers(0, 6),  # frequency
        st.integers(0, 30).map(float),  # recency_days: few values, so many ties
        st.integers(1, 8).map(lambda x: x * 25.0),  # monetary
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(customers, st.sampled_from(["top", "bottom"]))
def test_rfm_properties(rows: list[tuple[int, float, float]], ties: str) -> None:
    freq = [r[0] for r in rows]
    recency = [r[1] if r[0] else None for r in rows]
    monetary = [r[2] if r[0] else 0.0 for r in rows]
    got = rfm_scores(features(freq, recency, monetary), ties=ties).to_pyarrow().to_pylist()
    assert len(got) == len(rows)
    by_id = {g["customer_id"]: g for g in got}
    buyers = [(by_id[f"c{i:04d}"], rows[i]) for i in range(len(rows)) if rows[i][0] >= 1]
    for g, _ in buyers:
        assert all(1 <= g[c] <= 5 for c in ("r_score", "f_score", "m_score"))
        assert g["rfm_score"] == f"{g['r_score']}{g['f_score']}{g['m_score']}"
        assert g["rfm_segment"] in NAMES
    for (a, ra), (b, rb) in itertools.combinations(buyers, 2):
        for col, i, higher_is_better in (("r_score", 1, False), ("f_score", 0, True)):
            if ra[i] == rb[i]:
                assert a[col] == b[col]
            elif (ra[i] > rb[i]) == higher_is_better:
                assert a[col] >= b[col]
            else:
                assert a[col] <= b[col]
        if ra[2] == rb[2]:
            assert a["m_score"] == b["m_score"]
    for i, row in enumerate(rows):
        if row[0] == 0:
            assert by_id[f"c{i:04d}"]["rfm_segment"] == NO_PURCHASE
            assert by_id[f"c{i:04d}"]["r_score"] is None
