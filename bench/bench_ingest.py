"""Ingest speed with full validation: order lines from CSV and Parquet, Segment JSON Lines.

Target (issue 2): >= 500,000 order lines/s (CSV or Parquet) and >= 100,000 Segment events/s on
a 2-core machine, 10 million rows each. The files are generated first (not timed); the timed
part is `ingest()` end to end: staging, typing, checks, duplicate keys, references, merge,
rejects, identity resolution and the load log.

    python bench/bench_ingest.py [--rows 10000000] [--events 10000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.warehouse.connection import Warehouse


def make_files(folder: Path, rows: int, events: int) -> dict[str, Path]:
    con = duckdb.connect()
    orders = max(1, rows // 4)
    paths = {
        name: folder / name
        for name in (
            "product.parquet",
            "order.parquet",
            "order_line.csv",
            "order_line.parquet",
            "events.jsonl",
        )
    }
    con.execute(f"""COPY (SELECT 'P' || i AS product_id, 'Product ' || i AS name, 12.5 AS price
        FROM range(50000) t(i)) TO '{paths["product.parquet"]}'""")
    con.execute(f"""COPY (SELECT 'O' || i AS order_id, 'C' || (i % 1000000) AS customer_id,
        TIMESTAMP '2024-01-01' + to_seconds(i * 7) AS ordered_at FROM range({orders}) t(i))
        TO '{paths["order.parquet"]}'""")
    lines = f"""SELECT 'O' || (i // 4) AS order_id, (i % 4) + 1 AS line_number,
        'P' || (hash(i) % 50000) AS product_id, 1 + (i % 5) AS quantity,
        round(1 + (i % 1000) / 10.0, 2) AS unit_price FROM range({rows}) t(i)"""
    con.execute(f"COPY ({lines}) TO '{paths['order_line.csv']}' (HEADER)")
    con.execute(f"COPY ({lines}) TO '{paths['order_line.parquet']}'")
    con.execute(f"""COPY (SELECT 'm' || i AS messageId, 'track' AS type,
        CASE i % 3 WHEN 0 THEN 'Product Viewed' WHEN 1 THEN 'Product Added' ELSE 'Cart Viewed' END
            AS event,
        CASE WHEN i % 5 = 0 THEN NULL ELSE 'U' || (i % 200000) END AS userId,
        'a' || (i % 300000) AS anonymousId,
        strftime(TIMESTAMP '2024-01-01' + to_seconds(i), '%Y-%m-%dT%H:%M:%SZ') AS timestamp,
        {{'product_id': 'P' || (i % 50000), 'price': 9.99}} AS properties
        FROM range({events}) t(i)) TO '{paths["events.jsonl"]}' (FORMAT json)""")
    return paths


def timed(wh, settings, path, **kw) -> None:
    start = time.perf_counter()
    r = ingest(wh, settings, path, **kw)
    secs = time.perf_counter() - start
    print(
        f"  {path.name:22s} read {r.read:>12,}  loaded {r.loaded:>12,}  rejected {r.rejected:>8,}"
        f"  {secs:7.1f} s  {r.read / secs:>12,.0f} rows/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        paths = make_files(folder, args.rows, args.events)
        print(f"generated files in {time.perf_counter() - t:.1f} s (not timed below)")
        for fmt in ("csv", "parquet"):
            project = folder / f"p_{fmt}"
            init_project(project)
            settings = load_settings(project)
            with Warehouse.from_settings(settings) as wh:
                ingest(wh, settings, paths["product.parquet"], table="product")
                ingest(wh, settings, paths["order.parquet"], table="order")
                timed(wh, settings, paths[f"order_line.{fmt}"], table="order_line")
        project = folder / "p_events"
        init_project(project)
        settings = load_settings(project)
        with Warehouse.from_settings(settings) as wh:
            timed(wh, settings, paths["events.jsonl"], preset="segment")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
