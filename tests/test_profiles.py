"""Profiles: RFM counts on real data against an independent computation of the documented rules,
the built-in rule segments, and the CLI (segment, profile, export) as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.profiles import build_profiles
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = DATA / "online_retail" / "online_retail_2010-12-01_2011-09-09.csv.gz"

# The table of docs/segments.md, written out again here on purpose (first match wins).
RFM_TABLE = [
    ("Champions", lambda r, f, m: (r >= 4) & (f >= 4) & (m >= 4)),
    ("Can't Lose Them", lambda r, f, m: (r <= 1) & (f >= 4) & (m >= 4)),
    ("At Risk", lambda r, f, m: (r <= 2) & (f >= 3) & (m >= 3)),
    ("Loyal", lambda r, f, m: (r >= 3) & (f >= 3) & (m >= 3)),
    ("New", lambda r, f, m: (r >= 4) & (f <= 1)),
    ("Promising", lambda r, f, m: (r >= 3) & (f <= 1)),
    ("Potential Loyalist", lambda r, f, m: (r >= 3) & (f >= 2)),
    ("Need Attention", lambda r, f, m: (r == 2) & (f >= 2) & (m >= 2)),
    ("About to Sleep", lambda r, f, m: r == 2),
    ("Hibernating", lambda r, f, m: (r <= 1) & (f >= 2) & (m >= 2)),
    ("Lost", lambda r, f, m: r <= 1),
]


def _score_low_ties(values: pd.Series, smaller_is_better: bool) -> pd.Series:
    """Quintile score 1..5 where tied values take the lowest score they span."""
    n = len(values)
    # buyers as good or better than this one, ties included: ties land on the lowest score
    if smaller_is_better:
        at_least_as_good = values.rank(method="max")
    else:
        at_least_as_good = n - values.rank(method="min") + 1
    share_ceil = (5 * at_least_as_good.astype(int) + n - 1) // n
    return 6 - share_ceil


def _project(folder: Path):
    init_project(folder)
    settings = load_settings(folder)
    return settings, Warehouse.from_settings(settings)


@pytest.mark.skipif(not RETAIL.exists(), reason="../shared/data/online_retail is not present")
def test_rfm_segment_counts_on_online_retail(tmp_path: Path) -> None:
    settings, wh = _project(tmp_path)
    ingest(wh, settings, RETAIL, preset="online-retail")
    settings.segments.clusters = False
    built = build_profiles(wh, settings, "2011-09-10")
    p = wh.table("profile").to_pandas()
    buyers = p[p.frequency >= 1].copy()
    assert len(buyers) == int((p.frequency >= 1).sum()) > 3000
    r = _score_low_ties(buyers.recency_days, smaller_is_better=True)
    f = _score_low_ties(buyers.frequency, smaller_is_better=False)
    m = _score_low_ties(buyers.monetary, smaller_is_better=False)
    assert (r.values == buyers.r_score.values).all()
    assert (f.values == buyers.f_score.values).all()
    assert (m.values == buyers.m_score.values).all()
    names = np.full(len(buyers), "Other", dtype=object)
    free = np.ones(len(buyers), dtype=bool)
    for name, rule in RFM_TABLE:
        hit = rule(r.values, f.values, m.values) & free
        names[hit] = name
        free &= ~hit
    expected = pd.Series(names).value_counts().to_dict()
    expected["No purchase yet"] = int((p.frequency == 0).sum())
    got = {k: v for k, v in built.rfm_sizes.items() if v}
    assert got == {k: v for k, v in expected.items() if v}
    wh.close()


@pytest.fixture(scope="module")
def shop_project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    settings, wh = _project(folder)
    shop = simulate_shop(customers=1200, days=200, seed=11)
    paths = shop.write(folder / "files")
    for name in LOADABLE:
        if name in paths:
            ingest(wh, settings, paths[name], table=name)
    wh.close()
    return folder


def test_builtin_segments_match_an_independent_count(shop_project: Path) -> None:
    settings, wh = _project(shop_project)
    built = build_profiles(wh, settings)
    p = wh.table("profile").to_pandas()
    inactive = (p.days_since_last_activity > 60) | p.days_since_last_activity.isna()
    expected = {
        "Frequent Buyers": int((p.orders_30d > 3).sum()),
        "Browsed but Not Purchased": int(((p.product_views_30d > 5) & (p.orders_30d == 0)).sum()),
        "Inactive": int(inactive.sum()),
    }
    assert built.segment_sizes == expected
    assert expected["Inactive"] > 0
    assert p.cluster.notna().all()
    assert p.cluster_description.str.len().min() > 0
    assert len(p) == built.customers == wh.count("customer_features")
    wh.close()


def _cli(*args: str, project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_cli_segment_profile_export(shop_project: Path, tmp_path: Path) -> None:
    r = _cli("segment", "--rule", "Big spenders=monetary > 200", project=shop_project)
    assert r.returncode == 0, r.stderr
    assert "Big spenders" in r.stdout and "RFM segments" in r.stdout
    out = tmp_path / "profiles.parquet"
    r = _cli("export", "profiles", "--out", str(out), project=shop_project)
    assert r.returncode == 0, r.stderr
    exported = pd.read_parquet(out)
    assert exported.customer_id.is_unique and "rfm_segment" in exported
    assert (exported.seg_big_spenders == (exported.monetary > 200)).all()
    cid = exported.sort_values("monetary").customer_id.iloc[-1]
    r = _cli("profile", cid, project=shop_project)
    assert r.returncode == 0, r.stderr
    assert cid in r.stdout and "rfm_segment" in r.stdout


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("X=order_30d > 3", "did you mean 'orders_30d'"),
        ("X=frequency > 'a'", "frequency"),
        ("X=__import__('os').system('true')", "a function call is not allowed"),
        ("no equals sign", "NAME=EXPRESSION"),
    ],
)
def test_cli_bad_rules_are_one_message(shop_project: Path, rule: str, message: str) -> None:
    r = _cli("segment", "--rule", rule, project=shop_project)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_unknown_customer(shop_project: Path) -> None:
    _cli("segment", project=shop_project)
    r = _cli("profile", "nobody", project=shop_project)
    assert r.returncode == 1
    assert "no customer 'nobody'" in r.stderr


def test_a_hard_quality_check_stops_the_build(shop_project: Path, tmp_path: Path) -> None:
    from sendwise.errors import ConfigError, DataQualityError

    settings, wh = _project(shop_project)
    settings.quality.hard = ["stale_data"]
    settings.segments.clusters = False
    before = wh.table("profile").count().execute() if "profile" in wh.con.list_tables() else None
    with pytest.raises(DataQualityError, match="stale_data: newest order is"):
        build_profiles(wh, settings, "2030-01-01")  # years after the last order
    after = wh.table("profile").count().execute() if "profile" in wh.con.list_tables() else None
    assert before == after  # the stored profiles were left alone
    wh.close()
    (tmp_path / "sendwise.toml").write_text('[quality]\nhard = ["stale"]\n')
    with pytest.raises(ConfigError, match="unknown check"):
        load_settings(tmp_path)
