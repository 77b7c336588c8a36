"""Features and RFM for a large simulated shop, with peak memory.

Target (issue 3): features and RFM for 1,000,000 customers with 20,000,000 events and
5,000,000 order lines in under 60 s on a 2-core machine. The shop is simulated and loaded
first (not timed); the timed part materialises ``customer_features`` and the RFM scores in
the DuckDB warehouse.

    python bench/bench_features.py [--customers 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.features import customer_features
from sendwise.ingest.load import ingest
from sendwise.profiles import build_profiles
from sendwise.segments import rfm_scores
from sendwise.simulate import ShopConfig, simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="project folder to reuse between runs")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    init_project(folder)
    settings = load_settings(folder)
    with Warehouse.from_settings(settings) as wh:
        if wh.count("customer") == 0:
            t = time.perf_counter()
            # More items per order than the default shop, to reach ~5M order lines.
            shop = simulate_shop(
                customers=args.customers, days=365, seed=1, config=ShopConfig(**LARGE_BASKETS)
            )
            paths = shop.write(folder / "files")
            del shop
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            print(f"simulated and loaded in {time.perf_counter() - t:.0f} s (not timed)")
        counts = {n: wh.count(n) for n in ("customer", "order_line", "event", "email_event")}
        print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        end = wh.table("order").ordered_at.max().execute()
        as_of = (end - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
        t = time.perf_counter()
        wh.con.create_table("customer_features", customer_features(wh, as_of), overwrite=True)
        t_feat = time.perf_counter() - t
        wh.con.create_table(
            "rfm", rfm_scores(wh.table("customer_features"), ties="bottom"), overwrite=True
        )
        total = time.perf_counter() - t
        print(
            f"features: {t_feat:.1f} s, features + RFM: {total:.1f} s"
            f" for {wh.count('customer_features'):,} customers as of {as_of:%Y-%m-%d}"
        )
        t = time.perf_counter()
        built = build_profiles(wh, settings, as_of)
        print(
            "whole profile build (features, checks, RFM, rule segments, k-means, write):"
            f" {time.perf_counter() - t:.1f} s, {len(built.clusters)} clusters"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {peak:.2f} GiB (includes the simulation when it ran)")


LARGE_BASKETS = {"line_count_probs": (0.15, 0.25, 0.3, 0.3)}  # 2.75 lines an order


if __name__ == "__main__":
    main()
