"""Issue 4 acceptance: the models recover the simulator's truth, match the published CDNOW
figures, beat the baselines on Online Retail, and the gate refuses a model that is not good
enough."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.predict.registry import ModelError
from sendwise.predict.score import score_customers
from sendwise.predict.service import registry_of, train_models
from sendwise.profiles.build import attach_predictions, build_profiles
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CDNOW = DATA / "cdnow" / "CDNOW_sample.txt"
RETAIL = DATA / "online_retail" / "online_retail_2010-12-01_2011-09-09.csv.gz"


def _open(folder: Path, **overrides):
    init_project(folder)
    settings = load_settings(folder, **overrides)
    return settings, Warehouse.from_settings(settings)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulated shop with 90 days of future truth, profiled, trained and scored."""
    folder = tmp_path_factory.mktemp("sim")
    settings, wh = _open(folder)
    settings.models.horizon_days = 90
    shop = simulate_shop(customers=4000, days=365, seed=21)
    paths = shop.write(folder / "files")
    for name in LOADABLE:
        if name in paths:
            ingest(wh, settings, paths[name], table=name)
    build_profiles(wh, settings)
    results = {r.name: r for r in train_models(wh, settings)}
    scored = score_customers(wh, settings)
    attach_predictions(wh)
    profile = wh.table("profile").to_pandas()
    wh.close()
    truth = shop.truth.to_pandas().set_index("customer_id")
    return folder, results, scored, profile.set_index("customer_id"), truth


def test_propensity_ranks_the_simulators_future_buyers(sim) -> None:
    _, results, scored, profile, truth = sim
    joined = profile.merge(truth, left_index=True, right_index=True, suffixes=("", "_truth"))
    bought = (joined.future_orders > 0).astype(int)
    auc = roc_auc_score(bought, joined.p_purchase)
    print(f"propensity AUC against the simulator's future purchases: {auc:.3f}")
    assert auc > 0.72
    # The backtest's own AUC and calibration, judged on labels the model never saw.
    assert results["propensity"].metrics["roc_auc"] > 0.7
    assert results["propensity"].metrics["calibration_error"] < 0.06
    # The future quarter (January to March) is quieter than the Q4 windows the model was
    # trained and anchored on; one year of history cannot teach the calendar. Print the gap.
    print(f"mean p_purchase {joined.p_purchase.mean():.3f}, future buyers {bought.mean():.3f}")
    assert "propensity" in scored.versions


def test_probability_alive_separates_dead_from_alive(sim) -> None:
    _, results, _, profile, truth = sim
    joined = profile.merge(truth, left_index=True, right_index=True, suffixes=("", "_truth"))
    # BG/NBD lets a customer drop out only after a repeat purchase, so one-time buyers are
    # alive by construction (p_alive = 1); MBG/NBD and Pareto/NBD give them a real one.
    one_time = joined[joined.frequency == 1].p_alive.dropna()
    served = results["btyd"].learner
    print(f"btyd serving: {served}; p_alive of one-time buyers {one_time.describe().to_dict()}")
    assert (one_time == 1.0).all() if served.startswith("BG/NBD") else (one_time < 1.0).all()
    repeat = joined[(joined.frequency > 1) & joined.p_alive.notna()]
    assert repeat.p_alive.nunique() > 100  # never one constant value
    auc = roc_auc_score(repeat.alive_at_end.astype(int), repeat.p_alive)
    alive, dead = repeat[repeat.alive_at_end], repeat[~repeat.alive_at_end]
    print(
        f"p_alive of repeat buyers: alive {alive.p_alive.mean():.3f},"
        f" dead {dead.p_alive.mean():.3f}, AUC {auc:.3f}"
    )
    assert alive.p_alive.mean() > dead.p_alive.mean() + 0.1
    assert auc > 0.7


def test_best_send_hour_matches_the_true_hour(sim) -> None:
    _, _, _, profile, truth = sim
    joined = profile.merge(truth, left_index=True, right_index=True, suffixes=("", "_truth"))
    own = joined[joined.send_hour_source == "own"]
    share = float((own.best_send_hour.astype(int) == own.preferred_hour_truth).mean())
    print(f"best send hour = true hour for {share:.1%} of {len(own)} engaged customers")
    assert len(own) >= 50
    assert share > 0.5
    assert profile.best_send_hour.between(0, 23).all()


def test_clv_and_next_category_follow_the_truth(sim) -> None:
    _, results, _, profile, truth = sim
    joined = profile.merge(truth, left_index=True, right_index=True, suffixes=("", "_truth"))
    buyers = joined[joined.clv_12m.notna()]
    rho = buyers.clv_12m.corr(buyers.future_revenue, method="spearman")
    print(f"Spearman(clv_12m, future revenue) = {rho:.3f}")
    assert rho > 0.3
    fav = joined.favourite_category_truth
    model_share = float((joined.next_category == fav).mean())
    popular_share = float((fav == fav.value_counts().index[0]).mean())
    print(f"next category = true favourite: {model_share:.1%}; most popular: {popular_share:.1%}")
    assert model_share > popular_share
    assert joined.p_next_category.between(0, 1).all()
    assert results["next_category"].metrics["hit_rate"] > 0.3


def test_profile_export_has_every_prediction_column(sim) -> None:
    _, _, _, profile, _ = sim
    for col in (
        "p_purchase",
        "churn_risk",
        "expected_orders",
        "p_alive",
        "predicted_spend",
        "clv_12m",
        "next_category",
        "p_next_category",
        "best_send_hour",
        "top_reasons",
    ):
        assert col in profile.columns, col
    assert profile.p_purchase.between(0, 1).all()
    never = profile.frequency == 0
    assert profile.loc[never, "churn_risk"].isna().all()
    assert profile.loc[~never, "churn_risk"].between(0, 1).all()
    reasons = profile.top_reasons
    assert reasons.map(len).between(1, 3).all()
    assert all(" (raises)" in r or " (lowers)" in r for rs in reasons.head(200) for r in rs)
    assert not any("nan" in r for rs in reasons for r in rs)


def test_every_version_is_a_complete_safe_folder(sim) -> None:
    folder, results, _, _, _ = sim
    registry = registry_of(load_settings(folder))
    for name, result in results.items():
        mv = registry.get(name, result.version)
        files = set(mv.metadata["files"])
        assert "report.md" in files
        assert not any(f.endswith((".pkl", ".pickle", ".joblib")) for f in files)
        if mv.metadata["kind"] == "classifier":
            assert {"card.md", "roc.png", "gains.png", "calibration.png"} <= files
            assert mv.metadata["feature_types"]
            assert mv.metadata["library_versions"]["lightgbm"]


def test_a_changed_model_file_is_refused(sim) -> None:
    folder = sim[0]
    registry = registry_of(load_settings(folder))
    mv = registry.get("propensity")
    model_file = mv.folder / mv.metadata["model_file"]
    original = model_file.read_bytes()
    try:
        model_file.write_bytes(original + b"\n")
        with pytest.raises(ModelError, match="changed after training"):
            registry.get("propensity")
    finally:
        model_file.write_bytes(original)


def test_scoring_refuses_features_that_do_not_match(sim, tmp_path: Path) -> None:
    folder, _, _, _, _ = sim
    settings, wh = _open(folder)
    try:
        feats = wh.table("customer_features")
        wh.con.create_table(
            "customer_features", feats.drop("recency_days").to_pyarrow(), overwrite=True
        )
        with pytest.raises(ModelError, match="recency_days"):
            score_customers(wh, settings)
    finally:
        build_profiles(wh, settings)
        wh.close()


def test_the_gate_keeps_the_previous_version(sim) -> None:
    folder = sim[0]
    settings, wh = _open(folder)
    settings.models.horizon_days = 90
    settings.models.min_auc = 0.99
    settings.models.search_iterations = 1
    registry = registry_of(settings)
    before = registry.promoted("propensity")
    try:
        [result] = train_models(wh, settings, models=["propensity"])
    finally:
        wh.close()
    assert not result.promoted
    assert any("below the minimum 0.99" in r for r in result.gate)
    assert result.version != before
    assert registry.promoted("propensity") == before
    meta = registry.get("propensity", result.version).metadata
    assert meta["gate"]["passed"] is False
    report = (registry.root / "propensity" / result.version / "report.md").read_text()
    assert "not promoted" in report


def _cli(*args: str, project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=900,
    )


def test_cli_models_list_show_score_build(sim) -> None:
    folder, _, _, _, _ = sim
    r = _cli("models", "list", project=folder)
    assert r.returncode == 0, r.stderr
    for name in ("propensity", "churn", "btyd", "spend", "next_category"):
        assert name in r.stdout
    r = _cli("models", "show", "propensity", project=folder)
    assert r.returncode == 0, r.stderr
    assert "baseline: recency" in r.stdout and "drift (PSI" in r.stdout
    r = _cli("models", "show", "nope", project=folder)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "nope" in r.stderr
    r = _cli("build", "--horizon", "90", project=folder)
    assert r.returncode == 0, r.stderr
    assert "scored 4,000 customers" in r.stdout
    r = _cli("train", "--as-of", "2030-01-01", project=folder)
    assert r.returncode == 1 and "after the end of the data" in r.stderr


@pytest.mark.skipif(not CDNOW.exists(), reason="../shared/data/cdnow is not present")
def test_cdnow_btyd_matches_the_published_fit(tmp_path: Path) -> None:
    settings, wh = _open(tmp_path)
    ingest(wh, settings, CDNOW, preset="cdnow")
    # As of 1998-07-01 with a 39-week horizon, the judged fit uses 1997-01-01 .. 1997-09-30.
    [result] = train_models(wh, settings, as_of="1998-07-01", horizon_days=273, models=["btyd"])
    wh.close()
    mv = registry_of(settings).get("btyd", result.version)
    # Every candidate was judged; the unshrunk BG/NBD and Pareto/NBD are the published fits.
    fits = {(c["kind"], c["shrinkage"]): c for c in mv.metadata["selection"]["candidates"]}
    bg = fits[("bgnbd", 0.0)]
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for k, v in published.items():
        assert abs(bg["params"][k] - v) <= 0.001, (k, bg["params"][k])
    assert abs(bg["log_likelihood"] - (-9582.4)) < 0.05
    pareto = fits[("pareto_nbd", 0.0)]
    for k, v in {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}.items():
        assert abs(pareto["params"][k] - v) <= 0.01, (k, pareto["params"][k])
    assert not any(c["flags"] for c in fits.values())  # nothing degenerate on CDNOW
    for (kind, shrink), c in sorted(fits.items()):
        print(
            f"CDNOW {kind} shrinkage {shrink:g}: 39-week buys-again AUC"
            f" {c['auc_buys_again']:.4f}, p_alive AUC {c['auc_p_alive']:.4f},"
            f" Brier {c['brier']:.4f}"
        )
    assert mv.metadata["selection"]["chosen"] is not None
    assert "serves" in (mv.folder / "card.md").read_text()
    gg = mv.metadata["judged_params"]["gamma_gamma"]["params"]
    for k, v in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert abs(gg[k] - v) <= 0.01, (k, gg[k])
    report = (mv.folder / "report.md").read_text()
    assert "Predicted vs actual purchases in the holdout" in report
    table = pd.DataFrame(mv.metadata["holdout"])
    assert int(table.loc[table.repeat_purchases == "all", "customers"].iloc[0]) == 2357
    groups = table[table.repeat_purchases != "all"]
    # More calibration purchases, more holdout purchases: predicted and actual agree in order.
    assert groups.predicted_mean.is_monotonic_increasing
    assert np.corrcoef(groups.predicted_mean, groups.actual_mean)[0, 1] > 0.98


@pytest.mark.skipif(not RETAIL.exists(), reason="../shared/data/online_retail is not present")
def test_online_retail_propensity_beats_the_baselines(tmp_path: Path) -> None:
    settings, wh = _open(tmp_path)
    ingest(wh, settings, RETAIL, preset="online-retail")
    # Judged at 2011-06-11 on the 90 days to 2011-09-09, inside the file.
    [result] = train_models(
        wh, settings, as_of="2011-09-09", horizon_days=90, models=["propensity"]
    )
    wh.close()
    assert result.plan.evaluate_at.date().isoformat() == "2011-06-11"
    auc = result.metrics["roc_auc"]
    print(
        f"Online Retail propensity AUC {auc:.4f}; baselines "
        + ", ".join(f"{b} {m['roc_auc']:.4f}" for b, m in result.baselines.items())
    )
    for name, m in result.baselines.items():
        assert auc > m["roc_auc"], name
    assert result.metrics["calibration_error"] < 0.05
    assert result.promoted
    mv = registry_of(settings).get("propensity", result.version)
    report = (mv.folder / "report.md").read_text()
    assert "beats every baseline" in report and "## Calibration" in report
    calibration = report.split("## Calibration")[1]
    assert "mean_predicted" in calibration and "observed_rate" in calibration
    json.loads((mv.folder / "metadata.json").read_text())


PG_URL = os.environ.get("SENDWISE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not PG_URL, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
def test_the_same_models_on_a_postgres_warehouse(tmp_path: Path, monkeypatch) -> None:
    import ibis

    pg = ibis.connect(PG_URL)
    for name in [
        *LOADABLE,
        "ingest_log",
        "identity",
        "reject",
        "customer_features",
        "profile",
        "prediction",
    ]:
        pg.drop_table(name, force=True)
    pg.disconnect()
    shop = simulate_shop(customers=1500, days=300, seed=5)
    paths = shop.write(tmp_path / "files")
    scores = []
    for url in (None, PG_URL):
        folder = tmp_path / ("pg" if url else "duck")
        if url:
            monkeypatch.setenv("SENDWISE_WAREHOUSE__URL", url)
        settings, wh = _open(folder)
        settings.segments.clusters = False
        try:
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            build_profiles(wh, settings)
            results = train_models(wh, settings, models=["btyd", "propensity"])
            score_customers(wh, settings)
            scores.append(wh.table("prediction").to_pandas().set_index("customer_id").sort_index())
        finally:
            wh.close()
        assert all(r.promoted for r in results)
    duck, pg_scores = scores
    assert list(duck.index) == list(pg_scores.index)
    for col in ("p_purchase", "expected_orders", "p_alive", "clv_12m"):
        np.testing.assert_allclose(duck[col], pg_scores[col], rtol=1e-6, atol=1e-6, err_msg=col)
    assert (duck.best_send_hour == pg_scores.best_send_hour).all()


def test_the_guide_score_table_on_real_predictions(sim) -> None:
    """The newsletter's offer slot, counted by content on the real scores and by pandas."""
    from sendwise.content.render import Renderer

    folder = sim[0]
    settings, wh = _open(folder)
    try:
        counts = Renderer(settings, wh).variant_counts("newsletter.html")["offer"]
        p = wh.table("profile").to_pandas()
    finally:
        wh.close()
    pp, churn = p.p_purchase.to_numpy(dtype=float), p.churn_risk.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        chosen = np.select(
            [(churn >= 0.7) | (pp < 0.3), pp > 0.8, pp >= 0.4],
            ["reengage", "premium", "browsing"],
            default="generic",
        )
    expected = pd.Series(chosen).value_counts().to_dict()
    print(f"newsletter offers on real scores: {counts}")
    assert counts == {k: expected.get(k, 0) for k in counts}
    assert sum(counts.values()) == len(p) == 4000
