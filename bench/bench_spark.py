"""The feature build on a local Spark beside DuckDB's, on the same simulated shop.

The shop is simulated and loaded into a DuckDB warehouse, then copied to a Spark warehouse
(``spark://local[N]``) through Parquet (neither step is timed). Timed, on each warehouse:
``customer_features`` as of 30 days before the end of the data, materialised as a table.
Printed: wall seconds, CPU seconds (this process, plus the Spark JVM for Spark) and the
machine's load average before and after, since the machine may be shared.

    python bench/bench_spark.py [--customers 100000] [--cores 2] [--memory 2g] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.features import customer_features
from sendwise.ingest.load import ingest
from sendwise.simulate import ShopConfig, simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE, TABLES

LARGE_BASKETS = {"line_count_probs": (0.15, 0.25, 0.3, 0.3)}  # as bench_features.py


def jvm_cpu() -> float:
    """CPU seconds of the Spark JVM this process launched (0 when there is none)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if proc is None:
        return 0.0
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(label: str, wh: Warehouse, as_of, jvm: bool) -> None:
    load0 = os.getloadavg()[0]
    cpu0, jvm0 = time.process_time(), jvm_cpu() if jvm else 0.0
    t = time.perf_counter()
    wh.write_table("customer_features", customer_features(wh, as_of))
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu0 + ((jvm_cpu() - jvm0) if jvm else 0.0)
    rows = wh.count("customer_features")
    print(
        f"{label}: features for {rows:,} customers in {wall:.1f} s wall, {cpu:.1f} s CPU"
        f" (load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", default="2g", help="Spark driver memory")
    ap.add_argument("--keep", type=Path, help="project folder to reuse between runs")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    init_project(folder)
    settings = load_settings(folder)
    parquet = folder / "parquet"
    with Warehouse.from_settings(settings) as wh:
        if wh.count("customer") == 0:
            t = time.perf_counter()
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
        parquet.mkdir(exist_ok=True)
        for name in TABLES:
            wh.table(name).to_parquet(parquet / f"{name}.parquet")
        timed("DuckDB", wh, as_of, jvm=False)
    spark = {"driver_memory": args.memory, "shuffle_partitions": 2 * args.cores}
    url = f"spark://local[{args.cores}]"
    settings = load_settings(folder, warehouse={"url": url, "spark": spark})
    t = time.perf_counter()
    with Warehouse.from_settings(settings) as sw:
        print(f"Spark session started in {time.perf_counter() - t:.0f} s (not timed)")
        t = time.perf_counter()
        for name in TABLES:
            sw.con.drop_table(name, force=True)
            sw.con.raw_sql(
                f"CREATE TABLE `{name}` USING parquet AS"
                f" SELECT * FROM parquet.`{parquet / (name + '.parquet')}`"
            )
        print(f"copied to Spark in {time.perf_counter() - t:.0f} s (not timed)")
        timed(f"Spark {url}, driver memory {args.memory}", sw, as_of, jvm=True)


if __name__ == "__main__":
    main()
