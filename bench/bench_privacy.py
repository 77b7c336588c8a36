"""Erasure of many customers at once on a large shop: the whole :func:`sendwise.privacy.erase`
(tombstones, store rows, warehouse rows, the DuckDB file rewritten, the project's files walked,
the store compacted), timed end to end, with the steps' share.

The shop is written straight into the canonical tables with DuckDB (simulating a million
customers takes far longer than what is measured): per customer 3 orders of 2 lines, 10
browsing events, 4 email events, a consent, a feature row, a profile, a prediction and 5
recommendations; in the store (SQLite) one campaign message, a send event and a consent each.

    python bench/bench_privacy.py [--customers 1000000] [--erase 10000] [--folder DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.privacy.service import erase
from sendwise.store import open_store
from sendwise.warehouse.connection import Warehouse

NOW = datetime(2026, 1, 1)


def make_warehouse(wh: Warehouse, n: int) -> None:
    d = wh.engine
    d.execute(f"""INSERT INTO customer SELECT printf('C%08d', i), printf('c%08d@example.com', i),
        'First' || (i % 997), 'Last' || (i % 991),
        TIMESTAMP '2023-01-01' + to_seconds(i % 31536000),
        'GB', 'London', 'Europe/London', '{{}}' FROM range({n}) t(i)""")
    d.execute(f"""INSERT INTO "order" (order_id, customer_id, ordered_at, status)
        SELECT printf('O%09d', i), printf('C%08d', i // 3),
        TIMESTAMP '2024-01-01' + to_seconds(i % 31536000),
        'completed' FROM range({3 * n}) t(i)""")
    d.execute(f"""INSERT INTO order_line (order_id, line_number, product_id, quantity, unit_price)
        SELECT printf('O%09d', i // 2), i % 2, printf('P%05d', i % 5000), 1, 9.99
        FROM range({6 * n}) t(i)""")
    d.execute(f"""INSERT INTO event
        (message_id, type, customer_id, anonymous_id, event, occurred_at)
        SELECT printf('E%010d', i), 'track', printf('C%08d', i // 10), NULL, 'Product Viewed',
        TIMESTAMP '2024-01-01' + to_seconds(i % 31536000) FROM range({10 * n}) t(i)""")
    d.execute(f"""INSERT INTO email_event
        (event_id, customer_id, email, message_id, campaign_id, type, occurred_at)
        SELECT printf('M%010d', i), printf('C%08d', i // 4), printf('c%08d@example.com', i // 4),
        printf('K%08d', i // 4), 'camp', 'send', TIMESTAMP '2025-01-01' FROM range({4 * n}) t(i)""")
    d.execute(f"""INSERT INTO consent (customer_id, channel, purpose, status, source, recorded_at)
        SELECT printf('C%08d', i), 'email', 'marketing', 'granted', 'signup', TIMESTAMP '2023-01-01'
        FROM range({n}) t(i)""")
    d.execute(f"""CREATE TABLE prediction AS SELECT printf('C%08d', i) AS customer_id,
        TIMESTAMP '2026-01-01' AS as_of, random() AS p_purchase, random() AS churn_risk,
        random() * 500 AS clv_12m, ['recency_days', 'frequency'] AS top_reasons
        FROM range({n}) t(i)""")
    d.execute(f"""CREATE TABLE profile AS SELECT printf('C%08d', i) AS customer_id,
        printf('c%08d@example.com', i) AS email, 'First' || (i % 997) AS first_name,
        random() AS p_purchase, i % 5 AS r_score FROM range({n}) t(i)""")
    d.execute(f"""CREATE TABLE recommendation AS SELECT printf('C%08d', i // 5) AS customer_id,
        i % 5 AS rank, printf('P%05d', i % 5000) AS product_id, random() AS score,
        'als' AS source FROM range({5 * n}) t(i)""")
    d.execute("CHECKPOINT")


def make_store(settings, n: int) -> None:
    """The rows written straight with sqlite3 (the store's schema made by its migrations)."""
    import sqlite3

    open_store(settings).close()
    con = sqlite3.connect(settings.path("store.sqlite"))
    con.execute("PRAGMA journal_mode=WAL")
    at = NOW.isoformat(sep=" ")
    con.executemany(
        "INSERT INTO message (message_key, campaign_id, customer_id, email, variant, template,"
        " status, attempts, updated_at) VALUES (?, 'camp', ?, ?, 'A', 'a', 'sent', 1, ?)",
        ((f"K{i:08d}", f"C{i:08d}", f"c{i:08d}@example.com", at) for i in range(n)),
    )
    con.executemany(
        "INSERT INTO email_event (event_id, customer_id, email, message_id, campaign_id, variant,"
        " type, occurred_at, is_machine) VALUES (?, ?, ?, ?, 'camp', 'A', 'send', ?, 0)",
        (
            (f"K{i:08d}:send", f"C{i:08d}", f"c{i:08d}@example.com", f"K{i:08d}", at)
            for i in range(n)
        ),
    )
    con.executemany(
        "INSERT INTO consent (customer_id, email, channel, purpose, status, source, recorded_at)"
        " VALUES (?, ?, 'email', 'marketing', 'granted', 'signup', ?)",
        ((f"C{i:08d}", f"c{i:08d}@example.com", at) for i in range(n)),
    )
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--erase", type=int, default=10_000)
    ap.add_argument("--folder", type=Path, default=None, help="Where to build the shop.")
    args = ap.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="bench-privacy-"))
    init_project(root)
    settings = load_settings(root)
    t0 = time.perf_counter()
    with Warehouse.from_settings(settings) as wh:
        make_warehouse(wh, args.customers)
    make_store(settings, args.customers)
    size = (root / "warehouse.duckdb").stat().st_size / 1e6
    store_size = (root / "store.sqlite").stat().st_size / 1e6
    print(
        f"shop of {args.customers:,} customers built in {time.perf_counter() - t0:.1f} s"
        f" (warehouse {size:,.0f} MB, store {store_size:,.0f} MB)"
    )
    chosen = [f"C{i:08d}" for i in random.Random(0).sample(range(args.customers), args.erase)]
    steps: list[tuple[float, str]] = []
    started, cpu = time.perf_counter(), time.process_time()
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        report = erase(
            settings,
            chosen,
            wh=wh,
            store=store,
            progress=lambda m: steps.append((time.perf_counter(), m)),
        )
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    steps.append((started + total, "end"))
    rows = sum(report.warehouse.values()) + sum(report.store.values())
    print(
        f"erased {report.people:,} customers ({rows:,} rows) in {total:.1f} s"
        f" (CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    for (t, m), (t2, _) in itertools.pairwise(steps):
        print(f"  {m:<40} {t2 - t:6.1f} s")
    print(
        "  rows by table:",
        {**report.warehouse, **{f"store.{k}": v for k, v in report.store.items()}},
    )
    with Warehouse.from_settings(settings) as wh:
        left = wh.engine.execute(
            "SELECT count(*) FROM customer WHERE customer_id IN (SELECT unnest(?::VARCHAR[]))",
            [chosen],
        ).fetchone()[0]
    print(f"customers of the request still in the warehouse: {left}")
    if args.folder is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
