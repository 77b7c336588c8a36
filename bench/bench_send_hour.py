"""Best send hour on a simulated shop: time of ``best_send_hours`` and how often it finds the
customer's true preferred local hour.

The shop is simulated and ingested into a throw-away project first (not timed); the timed part
is ``best_send_hours`` from the DuckDB warehouse (read, time-zone conversion, estimate).

    python bench/bench_send_hour.py [--customers 50000] [--days 365] [--seed 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.predict.send_hour import best_send_hours
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        init_project(folder)
        settings = load_settings(folder)
        start = time.perf_counter()
        shop = simulate_shop(customers=args.customers, days=args.days, seed=args.seed)
        paths = shop.write(folder / "files")
        with Warehouse.from_settings(settings) as wh:
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            print(f"simulated and ingested in {time.perf_counter() - start:.1f} s")
            end = datetime.combine(shop.params["end"], datetime.min.time())
            events = wh.engine.execute("select count(*) from email_event").fetchone()[0]
            start = time.perf_counter()
            best = best_send_hours(wh, end)
            seconds = time.perf_counter() - start
        truth = shop.truth.to_pandas() if hasattr(shop.truth, "to_pandas") else shop.truth

    print(f"best_send_hours: {len(best):,} customers, {events:,} email events in {seconds:.2f} s")
    m = best.merge(truth[["customer_id", "preferred_hour"]], on="customer_id")
    for source, part in m.groupby("send_hour_source", observed=True):
        gap = (part["best_send_hour"] - part["preferred_hour"]) % 24
        print(
            f"  {source:8s} {len(part):>8,} customers: exact {(gap == 0).mean():.1%}, "
            f"within 1 hour {gap.isin([0, 1, 23]).mean():.1%}"
        )


if __name__ == "__main__":
    main()
