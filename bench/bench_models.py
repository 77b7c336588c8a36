"""Training and scoring the models on a large simulated shop, with peak memory and the load.

Targets (issues 4 and 14), on this 2-core machine:
- train propensity, with its rolling-origin backtest (which chooses the configuration) and the
  refit on the freshest snapshots, on 1,000,000 customers in under 5 minutes;
- score 1,000,000 customers in under 30 seconds;
- fit BG/NBD to 1,000,000 customers in under 30 seconds (see also bench_btyd.py).

The shop is simulated, loaded and profiled first (not timed). "Train propensity" covers the
features of every snapshot, the search, calibration, the backtest with its baselines, the
explanations, the plots and the registry. "Score" covers reading the features, every promoted
model, the reasons of each score, best send hours and writing the ``prediction`` table.
Every step prints its wall time, the CPU time of this process (all its threads: on a machine
shared with other jobs the wall time depends on them, the CPU time much less) and the load.

    python bench/bench_models.py [--customers 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.predict.backtest import FINALISTS
from sendwise.predict.baselines import Btyd
from sendwise.predict.score import score_customers
from sendwise.predict.service import train_models
from sendwise.profiles import build_profiles
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="project folder to reuse between runs")
    ap.add_argument("--score-only", action="store_true", help="reuse the trained models")
    args = ap.parse_args()
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    folder = args.keep or Path(tempfile.mkdtemp())
    init_project(folder)
    settings = load_settings(folder)
    with Warehouse.from_settings(settings) as wh:
        if wh.count("customer") == 0:
            t = time.perf_counter()
            shop = simulate_shop(customers=args.customers, days=365, seed=1)
            paths = shop.write(folder / "files")
            del shop
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            print(f"simulated and loaded in {time.perf_counter() - t:.0f} s (not timed)")
        if "customer_features" not in wh.con.list_tables():
            t = time.perf_counter()
            build_profiles(wh, settings)
            print(f"profiles built in {time.perf_counter() - t:.0f} s (not timed)")
        print(
            f"customers: {wh.count('customer'):,}, order lines {wh.count('order_line'):,},"
            f" events {wh.count('event'):,}"
        )

        if not args.score_only:
            train(wh, settings)
        with Clock() as c:
            scored = score_customers(wh, settings)
        print(
            f"score {scored.customers:,} customers ({', '.join(scored.versions)}), with the"
            f" reasons of every score: {c}"
        )
        settings.models.explain_scores = False
        with Clock() as c:
            score_customers(wh, settings)
        print(f"score without per-customer reasons: {c}")
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {peak:.2f} GiB (includes the simulation when it ran)")


class Clock:
    """Wall and CPU seconds of a step, and the load average when it ends."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s (CPU {self.cpu:.0f} s, load {os.getloadavg()[0]:.1f})"


def train(wh, settings) -> None:
    with Clock() as c:
        train_models(wh, settings, models=["btyd"])
    print(f"train btyd (judged and production fits, holdout table): {c}")
    feats = wh.table("customer_features").to_pandas()
    with Clock() as c:
        Btyd.fit(feats)
    print(f"BG/NBD + Gamma-Gamma fit on {len(feats):,} customers: {c}")
    del feats

    ms = settings.models
    with Clock() as c:
        [prop] = train_models(wh, settings, models=["propensity"])
    m, plan = prop.metrics, prop.plan
    print(
        f"train propensity with the rolling backtest ({prop.learner} chosen;"
        f" {ms.search_iterations} candidates x {len(ms.learners)} learners at the freshest of"
        f" {len(plan.origins)} origins, LightGBM's {FINALISTS['lightgbm']} finalists and every"
        f" logistic candidate at the others, on samples of {ms.search_rows:,} rows of"
        f" {ms.snapshot_customers:,} customers; the winner's {ms.cv_folds} calibration folds at"
        f" each origin; the refit on {prop.rows:,} rows of {len(plan.fit_at)} snapshots): {c}"
    )
    print(
        f"  backtest ROC-AUC {m['roc_auc']:.3f} (sd {m['roc_auc_std']:.3f}, {m['roc_auc_min']:.3f}"
        f" to {m['roc_auc_max']:.3f}); mean predicted {m['mean_predicted']:.3f} vs observed"
        f" {m['base_rate']:.3f}; best baseline "
        + max(f"{v['roc_auc']:.3f} ({b})" for b, v in prop.baselines.items())
    )


if __name__ == "__main__":
    main()
