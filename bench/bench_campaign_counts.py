"""A campaign's counts in the store (the console's campaign page) and what keeping them fast
costs the send path (issue 17, docs/adr/0156).

Builds a store (SQLite file, or PostgreSQL with --postgres URL, in a schema of its own) with
--campaigns older campaigns of --other messages each and one campaign of --messages messages
with their send, open (25%, some twice, a few by machines) and click (5%) events, then times:

- ``counts``: ``store.console.campaign_counts`` of the big campaign, first and warm median
  (the first is after the database's caches were dropped as far as this process can: a new
  connection pool; the OS page cache stays);
- ``send path``: one more campaign of --send messages planned, claimed in batches of 500 and
  its outcomes recorded (``claim_due`` + ``record_outcomes``: the store's share of a send), and
  --send tracking events written in batches of 500 (``events.add``), in messages a second.

Run it with the indexes of a given migration: --at 0010 (before) or --at 0011 (the covering
indexes). Every figure is printed with the process's CPU time and the machine's load.

    python bench/bench_campaign_counts.py [--messages 300000] [--at 0010|0011] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_cpu(database: str | None) -> float:
    """CPU seconds of this machine's PostgreSQL backends serving ``database`` (0 for SQLite:
    it runs in this process). A backend that ended took its time with it."""
    if not database:
        return 0.0
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not cmd.startswith(b"postgres: ") or f" {database} ".encode() not in cmd:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def open_at(url: str, schema: str | None, revision: str) -> Any:
    from alembic import command

    from sendwise.store import Store
    from sendwise.store.connection import _alembic_config

    store = Store(url, schema=schema, upgrade=False)
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)
    return store


def fill(store: Any, cid: str, n: int, rng: random.Random, t0: datetime) -> None:
    from sendwise.store.records import utcnow
    from sendwise.store.repositories import CampaignRecord

    store.campaigns.save(CampaignRecord(cid, f"name-{cid}", "created", {}), t0)
    arms = rng.choices(["A", "B", "holdout"], weights=[45, 45, 10], k=n)
    plan, events = [], []
    for i, arm in enumerate(arms):
        key = f"{cid}-{i:09d}"
        sent = arm != "holdout"
        plan.append({"message_key": key, "customer_id": f"c{i}", "email": f"c{i}@x.example",
                     "variant": arm, "template": None, "status": "sent" if sent else "holdout",
                     "reason": None, "scheduled_at": t0, "timezone": "UTC"})  # fmt: skip
        if not sent:
            continue
        at = t0 + timedelta(minutes=rng.randrange(0, 40_000))
        base = {"customer_id": f"c{i}", "email": f"c{i}@x.example", "message_id": key,
                "campaign_id": cid, "variant": arm, "url": None, "user_agent": None,
                "is_machine": False, "reason": None}  # fmt: skip
        events.append({**base, "event_id": f"s{key}", "type": "send", "occurred_at": at})
        if rng.random() < 0.25:
            for j in range(1 + (rng.random() < 0.2)):
                events.append({**base, "event_id": f"o{j}{key}", "type": "open",
                               "is_machine": rng.random() < 0.05,
                               "occurred_at": at + timedelta(hours=2 + j)})  # fmt: skip
        if rng.random() < 0.05:
            events.append({**base, "event_id": f"c{key}", "type": "click",
                           "occurred_at": at + timedelta(hours=3)})  # fmt: skip
    store.messages.add_plan(cid, plan, utcnow())
    store.campaigns.set_status(cid, "done", at=utcnow())
    for i in range(0, len(events), 20_000):
        store.events.add(events[i : i + 20_000])


def time_counts(store: Any, cid: str, repeat: int, db: str | None) -> tuple[float, float, float]:
    """(first ms, warm median ms, CPU ms of the first: this process's and the database's)."""
    from sendwise.store.console import campaign_counts

    store.engine.dispose()
    with store.begin() as conn:  # the connection made before the clock starts
        conn.exec_driver_sql("SELECT 1")
    c0, s0, t = cpu(), server_cpu(db), time.perf_counter()
    campaign_counts(store, cid)
    first = 1000 * (time.perf_counter() - t)
    first_cpu = 1000 * (cpu() - c0 + server_cpu(db) - s0)
    warm = []
    for _ in range(repeat):
        t = time.perf_counter()
        campaign_counts(store, cid)
        warm.append(1000 * (time.perf_counter() - t))
    return first, statistics.median(warm), first_cpu


def time_send(
    store: Any, n: int, rng: random.Random, t0: datetime, db: str | None
) -> tuple[float, float, float, float]:
    """(messages claimed and recorded a second, tracking events written a second, CPU
    seconds of each: this process's and the database's)."""
    from sendwise.delivery.policy import SendPolicy
    from sendwise.store.repositories import CampaignRecord

    cid = f"send-{uuid.uuid4().hex[:8]}"
    store.campaigns.save(CampaignRecord(cid, f"name-{cid}", "created", {}), t0)
    plan = [{"message_key": f"{i % 16:x}{cid}{i:09d}", "customer_id": f"s{i}",
             "email": f"s{i}@y.example", "variant": rng.choice("AB"), "template": None,
             "status": "pending", "reason": None, "scheduled_at": t0, "timezone": None}
            for i in range(n)]  # fmt: skip
    store.messages.add_plan(cid, plan, t0)
    c0, s0, t = cpu(), server_cpu(db), time.perf_counter()
    while True:
        claim = store.messages.claim_due(SendPolicy(), campaign_id=cid, now=t0, limit=500, at=t0)
        if not claim.claimed:
            break
        store.messages.record_outcomes(cid, [(m, "sent", "") for m in claim.ready], t0)
    sends = n / (time.perf_counter() - t)
    sends_cpu = cpu() - c0 + server_cpu(db) - s0
    events = [{"event_id": f"t{cid}{i}", "type": "open", "customer_id": f"s{i}",
               "email": f"s{i}@y.example", "message_id": plan[i]["message_key"],
               "campaign_id": cid, "variant": plan[i]["variant"], "url": None,
               "user_agent": "x", "is_machine": False, "reason": None,
               "occurred_at": t0} for i in range(n)]  # fmt: skip
    c0, s0, t = cpu(), server_cpu(db), time.perf_counter()
    for i in range(0, n, 500):
        store.events.add(events[i : i + 500])
    rate = n / (time.perf_counter() - t)
    return sends, rate, sends_cpu, cpu() - c0 + server_cpu(db) - s0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--campaigns", type=int, default=3)
    ap.add_argument("--other", type=int, default=50_000)
    ap.add_argument("--send", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="send path measured this many times")
    ap.add_argument("--at", default="head", help="migration to run to (0010: before, 0011)")
    ap.add_argument("--postgres", default=None, help="postgres://user:pw@host/db")
    ap.add_argument("--vacuum", action="store_true", help="PostgreSQL: VACUUM ANALYZE first")
    args = ap.parse_args()
    rng, t0 = random.Random(7), datetime(2026, 11, 1)
    schema = db = None
    if args.postgres:
        db = args.postgres.rsplit("/", 1)[1].split("?")[0]
        from sqlalchemy import create_engine, text

        url = "postgresql+psycopg://" + args.postgres.split("://", 1)[1]
        schema = f"bench_counts_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-counts-"))
        url = f"sqlite:///{folder / 'store.sqlite'}"
    try:
        store = open_at(url, schema, args.at)
        t = time.perf_counter()
        for k in range(args.campaigns):
            fill(store, f"old{k}", args.other, rng, t0)
        fill(store, "big", args.messages, rng, t0)
        print(f"store at {args.at} ({store.engine.dialect.name}): {args.messages:,} messages of"
              f" the campaign, {args.campaigns} x {args.other:,} others; filled in"
              f" {time.perf_counter() - t:.0f} s")  # fmt: skip
        if args.vacuum and db:  # as autovacuum leaves an older campaign's rows
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM ANALYZE message")
                conn.exec_driver_sql("VACUUM ANALYZE email_event")
        first, warm, first_cpu = time_counts(store, "big", args.repeat, db)
        print(f"counts: first {first:.0f} ms (CPU {first_cpu:.0f} ms), warm median"
              f" {warm:.0f} ms; {load()}")  # fmt: skip
        for _ in range(args.rounds):
            sends, events, s_cpu, e_cpu = time_send(store, args.send, rng, t0, db)
            print(f"send path: {sends:,.0f} messages/s claimed+recorded (CPU"
                  f" {1e6 * s_cpu / args.send:.0f} us a message), {events:,.0f} events/s written"
                  f" (CPU {1e6 * e_cpu / args.send:.0f} us an event); {load()}")  # fmt: skip
        store.close()
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
