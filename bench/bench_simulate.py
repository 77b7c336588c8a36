"""Benchmark the simulated shop: wall time, rows per table, peak memory, Parquet write time.

    python bench/bench_simulate.py                      # 1,000,000 customers x 365 days
    python bench/bench_simulate.py --customers 100000 --out bench/out/shop

The target: 1M customers x 365 days simulated in under 3 minutes and under 8 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from sendwise.simulate import simulate_shop

logger = logging.getLogger(__name__)


def peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the Parquet files here")
    parser.add_argument("--no-write", action="store_true", help="skip the Parquet write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    began = time.perf_counter()
    shop = simulate_shop(customers=args.customers, days=args.days, seed=args.seed)
    simulated = time.perf_counter() - began
    rss_simulate = peak_rss_gib()

    print(f"simulate_shop(customers={args.customers:,}, days={args.days}): {simulated:.1f} s")
    print(f"peak RSS after simulating: {rss_simulate:.2f} GiB")
    total = 0
    for name, table in {**shop.tables, "truth": shop.truth}.items():
        total += table.num_rows
        mib = table.nbytes / 2**20
        print(f"  {name:<12} {table.num_rows:>12,} rows  {mib:>9,.0f} MiB in memory")
    print(f"  {'all':<12} {total:>12,} rows")

    if not args.no_write:
        with tempfile.TemporaryDirectory(dir=args.out.parent if args.out else None) as tmp:
            folder = args.out or Path(tmp)
            began = time.perf_counter()
            paths = shop.write(folder)
            written = time.perf_counter() - began
            size = sum(p.stat().st_size for p in paths.values()) / 2**20
            print(f"write(): {written:.1f} s, {size:,.0f} MiB of Parquet")
    print(f"peak RSS overall: {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
