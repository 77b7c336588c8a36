"""The batch plane's warehouse stages on a local Spark beside DuckDB's, on the same simulated
shop: the figures behind docs/scaling.md's capacity plan.

The shop is simulated and loaded into a DuckDB warehouse, then copied to a Spark warehouse
(``spark://local[N]``) through Parquet (neither step is timed). Timed, on each warehouse:

- ``features``: ``customer_features`` as of 30 days before the end of the data, written as a
  table (the default);
- with ``--stages all``, also ``profiles`` (features, RFM and segments: ``build_profiles``),
  ``training set`` (a 30-day propensity/churn training set as of 60 days before), ``score``
  (the propensity, churn and next-category models, trained once on DuckDB before anything is
  timed, scoring every customer) and ``recommend`` (``build_recommendations``, no evaluation).

Printed per stage: wall seconds, CPU seconds (this process, plus the Spark JVM for Spark) and the
machine's load average before and after, since the machine may be shared.

    python bench/bench_spark.py [--customers 100000] [--cores 2] [--memory 2g] [--keep DIR]
    python bench/bench_spark.py --customers 1000000 --memory 8g --stages all --skip recommend
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.features import customer_features, training_set
from sendwise.ingest.load import ingest
from sendwise.predict.score import score_customers
from sendwise.predict.service import train_models
from sendwise.profiles.build import build_profiles
from sendwise.recommend import build_recommendations
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


FAST_MODELS = ["propensity", "churn", "next_category"]


def stages(settings, as_of) -> dict[str, Callable[[Warehouse], str]]:
    """Each timed stage: what it runs, and what it prints of its result."""

    def features(wh: Warehouse) -> str:
        wh.write_table("customer_features", customer_features(wh, as_of))
        return f"{wh.count('customer_features'):,} customers"

    def profiles(wh: Warehouse) -> str:
        build_profiles(wh, settings, as_of)
        return f"{wh.count('profile'):,} profiles"

    def training(wh: Warehouse) -> str:
        frame = training_set(wh, as_of - timedelta(days=60), horizon_days=30).to_pandas()
        return f"{len(frame):,} rows"

    def score(wh: Warehouse) -> str:
        score_customers(wh, settings, horizon_days=30)
        return f"{wh.count('prediction'):,} predictions"

    def recommend(wh: Warehouse) -> str:
        build_recommendations(wh, settings, as_of, evaluate_first=False)
        return f"{wh.count('recommendation'):,} recommendations"

    return {"features": features, "profiles": profiles, "training set": training,
            "score": score, "recommend": recommend}  # fmt: skip


def timed(label: str, stage: str, run: Callable[[Warehouse], str], wh: Warehouse, jvm: bool):
    load0 = os.getloadavg()[0]
    cpu0, jvm0 = time.process_time(), jvm_cpu() if jvm else 0.0
    t = time.perf_counter()
    what = run(wh)
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu0 + ((jvm_cpu() - jvm0) if jvm else 0.0)
    print(
        f"{label}: {stage:<12} {wall:8.1f} s wall {cpu:8.1f} s CPU  {what}"
        f" (load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", default="2g", help="Spark driver memory")
    ap.add_argument("--keep", type=Path, help="project folder to reuse between runs")
    ap.add_argument("--stages", choices=["features", "all"], default="features")
    ap.add_argument("--skip", nargs="*", default=[], help="stages left out of --stages all")
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
        chosen = stages(settings, as_of)
        if args.stages == "features":
            chosen = {"features": chosen["features"]}
        else:
            t = time.perf_counter()
            train_models(wh, settings, as_of=as_of, horizon_days=30, models=FAST_MODELS)
            print(f"models trained on DuckDB in {time.perf_counter() - t:.0f} s (not timed)")
        chosen = {k: v for k, v in chosen.items() if k not in args.skip}
        for stage, run in chosen.items():
            timed("DuckDB", stage, run, wh, jvm=False)
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
        print(f"Spark {url}, driver memory {args.memory}:")
        for stage, run in stages(settings, as_of).items():
            if stage in chosen:
                timed("Spark ", stage, run, sw, jvm=True)


if __name__ == "__main__":
    main()
