"""Streaming intake speed on Kafka: Segment calls through a topic into the event log, in events/s,
side by side with the plain confluent-kafka consumer doing consume + commit alone (no parsing,
no store): the ceiling of the broker and the client on this machine, so that sendwise's own
cost shows.

The broker is librdkafka's mock cluster in its own process (tests/kafka_support.py says why not
Apache Kafka's): it answers from memory, so its figures are the client's and sendwise's, not a
disk-backed broker's. It keeps only about 5 MB a partition, so the producer here runs beside
the consumers and stays at most 8,000 records a partition ahead of the group's commits, as a
stream does.
As bench_streams.py does for Redis, the first of the consumer processes
(`sendwise intake consume`) is killed with SIGKILL once half the events are stored; the group's
session timeout (claim_idle_ms, 3 s here) hands its partitions to the other, which goes on to
the end; every event must then be in the event log exactly once (and, with --sync, in the
warehouse exactly once).

    python bench/bench_kafka.py [--events 1000000] [--batch 2000] [--consumers 2] [--sync]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_streams import segment_call
from kafka_support import start_kafka
from sendwise.config import init_project, load_settings
from sendwise.intake.streams.kafka_connect import (
    brokers_of,
    kafka_producer,
    produce_events,
)
from sendwise.intake.streams.kafka_status import _partitions, kafka_status
from sendwise.store import open_store
from sendwise.store.schema import intake_event
from sendwise.warehouse.connection import Warehouse

TOPIC = "shop.events"
SESSION_MS = 3_000
MAX_AHEAD = 8_000
CHUNK = 2_000
PLAIN_EVENTS = 60_000


def plain_baseline(brokers: str, batch: int, events: int) -> tuple[float, float]:
    """consume + synchronous commit with the plain client, nothing else, over ``events``
    records produced beforehand to a topic of its own: events/s, and events per CPU second
    of the client."""
    from confluent_kafka import Consumer, Producer

    topic = "plain.events"
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    produce_events(producer, topic, (segment_call(i) for i in range(events)))
    c = Consumer({"bootstrap.servers": brokers, "group.id": "plain", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe([topic])
    done, started, cpu = 0, None, 0.0
    idle_since = time.perf_counter()
    while done < events and time.perf_counter() - idle_since < 10:
        records = c.consume(batch, 1.0)
        if not records:
            continue
        if started is None:  # from the first batch on: the group's join is not the client's
            started, cpu = time.perf_counter(), time.process_time()
        c.commit(asynchronous=False)
        done += len(records)
        idle_since = time.perf_counter()
    seconds = time.perf_counter() - (started or time.perf_counter())
    cpu = time.process_time() - cpu
    c.close()
    return done / seconds, done / cpu


def pace_producer(settings: Any, n: int, done: list[float]) -> None:
    """Produce the ``n`` calls while the consumers run, never more than MAX_AHEAD records
    ahead of the group's commits in any partition: the mock broker keeps about 5 MB (some
    15,000 of these records) a partition and drops older ones, as a broker's retention would."""
    from confluent_kafka import Consumer

    producer = kafka_producer(settings.streams)
    watcher = Consumer({"bootstrap.servers": brokers_of(settings.streams.url),
                        "group.id": settings.streams.group})  # fmt: skip
    sent = 0
    while sent < n:
        lags = [lag for _, lag, _ in _partitions(watcher, TOPIC) or []]
        if any(lag is None or lag > MAX_AHEAD for lag in lags):
            time.sleep(0.02)
            continue
        chunk = min(CHUNK, n - sent)
        produce_events(producer, TOPIC, (segment_call(i) for i in range(sent, sent + chunk)))
        sent += chunk
    watcher.close()
    done.append(time.perf_counter())


def _consumer(folder: Path, name: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sendwise.cli", "intake", "consume", "-q", "--project",
           str(folder), "--consumer", name, *extra]  # fmt: skip
    with (folder / f"{name}.out").open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)


def _reap(proc: subprocess.Popen) -> float:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _stored(store) -> tuple[int, int]:
    with store.begin() as conn:
        c = intake_event.c
        query = select(func.count(), func.count(func.distinct(c.message_id)))
        total, distinct = conn.execute(query).one()
    return int(total), int(distinct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--consumers", type=int, default=2, help="Consumer processes.")
    parser.add_argument("--sync", action="store_true", help="Check the warehouse too.")
    args = parser.parse_args()
    n = args.events

    tmp = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    broker = start_kafka(tmp)
    url = next(broker)
    try:
        folder = tmp / "shop"
        init_project(folder)
        with (folder / "sendwise.toml").open("a") as f:
            f.write(f'\n[streams]\nurl = "{url}"\nstream = "{TOPIC}"\nbatch = {args.batch}\n'
                    f"block_ms = 200\nclaim_idle_ms = {SESSION_MS}\n")  # fmt: skip
        settings = load_settings(folder)
        store = open_store(settings)  # migrated once here, not by every consumer at once

        plain, plain_cpu = plain_baseline(brokers_of(url), args.batch, PLAIN_EVENTS)

        names = [f"c{i}" for i in range(args.consumers)]
        procs = {name: _consumer(folder, name) for name in names}
        victim = procs[names[0]]
        produced: list[float] = []
        producer = threading.Thread(target=pace_producer, args=(settings, n, produced))
        producer.start()
        launched = time.perf_counter()  # the clock's start if half is stored before a look
        first, figures = None, {}
        while (stored := _stored(store)[0]) < n // 2:
            if first is None and stored:
                first = time.perf_counter()
            figures.update({f.name: f for f in kafka_status(settings.streams).consumers})
            if victim.poll() is not None:
                raise SystemExit(f"c0 ended early: {(folder / 'c0.out').read_text()}")
            time.sleep(0.1)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = kafka_status(settings.streams)
        cpu = {names[0]: _reap(victim)}
        if len(names) == 1:
            names.append("takeover")
            procs["takeover"] = _consumer(folder, "takeover")
        producer.join()
        while (end := kafka_status(settings.streams)).lag != 0:
            time.sleep(0.1)
        wall = time.perf_counter() - (first or launched)
        figures.update({f.name: f for f in end.consumers})
        for name in names[1:]:
            os.killpg(procs[name].pid, signal.SIGTERM)  # finishes its batch, then stops
            cpu[name] = _reap(procs[name])
            if procs[name].returncode != 0:
                raise SystemExit(f"consumer {name} failed: {(folder / f'{name}.out').read_text()}")
        total, distinct = _stored(store)

        store_kind = "PostgreSQL" if "postgres" in settings.store_url() else "SQLite"
        print(f"\n{n:,} Segment calls, batches of {args.batch:,}, store {store_kind},"
              f" {args.consumers} consumer process(es), 4 partitions")  # fmt: skip
        print(f"  plain confluent-kafka, consume + commit only    {plain:>10,.0f} events/s"
              f"  ({plain_cpu:,.0f} per CPU-second of the client)")  # fmt: skip
        for name in names:
            f = figures.get(name)
            role = "(SIGKILLed halfway)" if name == names[0] else "(took over)"
            if f is not None:
                print(f"  sendwise consumer {name:<9} {role:<19}  {f.read:>10,} taken,"
                      f" {f.stored:,} stored, {f.duplicates:,} already stored")  # fmt: skip
        print(f"  sendwise, the group (first batch to lag 0)     {n / wall:>10,.0f} events/s"
              f"  ({wall:,.1f} s, with the {SESSION_MS / 1000:.0f} s session timeout)")  # fmt: skip
        print(f"  sendwise CPU, all consumers (with start-ups)   {n / sum(cpu.values()):>10,.0f}"
              f" events per CPU-second ({sum(cpu.values()):,.1f} s)")  # fmt: skip
        print(f"  at the kill: {killed_at.lag} records not committed")
        print(f"  event log: {total:,} rows, {distinct:,} distinct messageIds (expected {n:,})")
        ok = total == distinct == n and end.lag == 0
        if args.sync:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sendwise.cli", "sync", "-q", "--project", str(folder)],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            with Warehouse.from_settings(settings) as wh:
                rows, ids, most = wh.engine.execute(
                    "SELECT sum(k), count(*), max(k) FROM"
                    " (SELECT message_id, count(*) AS k FROM event GROUP BY 1)"
                ).fetchone()
            took = time.perf_counter() - started
            print(f"  sendwise sync: {took:,.1f} s; warehouse event rows {rows:,},"
                  f" {ids:,} distinct messageIds, at most {most} per messageId")  # fmt: skip
            ok = ok and rows == ids == n and most == 1
        print(f"  exactly once: {'yes' if ok else 'NO'}")
        store.close()
    finally:
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
