"""Streaming intake speed: Segment calls through a Redis stream into the event log, in events/s,
side by side with the plain `redis` client doing XREADGROUP + XACK alone (no parsing, no store):
the ceiling of Redis and the client on this machine, so that sendwise's own cost shows.

Target (issue 20): >= 20,000 events/s on 2 cores, with issue 20's acceptance on the way: the
consumer process (`sendwise intake consume`) is killed with SIGKILL once half the events are
stored; a second one takes over its unacknowledged entries (XAUTOCLAIM) and drains the stream;
every event must then be in the event log exactly once and, after `sendwise sync`, in the
warehouse exactly once (checked by messageId).

Both groups read the same stream (a consumer group each), one after the other. The sendwise
figure is the consumers' own (entries taken / seconds running, as `sendwise status` reports it),
so Python's start-up is left out; the group's figure counts from its first stored batch to the
last consumer's exit (the claim wait included). With --consumers 2 (the default: one a core)
the second consumer claims the killed one's entries; with 1 a new consumer is started.

    python bench/bench_streams.py [--events 1000000] [--batch 2000] [--consumers 2] [--no-sync]
    SENDWISE_STORE__URL=postgresql://... python bench/bench_streams.py   # on PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from sendwise.config import init_project, load_settings
from sendwise.intake.streams import connect, publish_events
from sendwise.intake.streams.consumer import stats_key
from sendwise.store import open_store
from sendwise.store.schema import intake_event
from sendwise.warehouse.connection import Warehouse

STREAM = "shop:events"


def segment_call(i: int) -> dict:
    """The i-th call of the benches' shop: an identify every 20th, else a product view."""
    customer = f"C{i % 50_000}"
    if i % 20 == 0:
        return {"type": "identify", "messageId": f"m{i:08d}", "userId": customer,
                "traits": {"email": f"{customer.lower()}@example.com", "first_name": "Ann"},
                "timestamp": "2026-12-01T09:00:00Z"}  # fmt: skip
    return {
        "type": "track", "messageId": f"m{i:08d}", "userId": customer,
        "anonymousId": f"anon-{i % 70_000}", "event": "Product Viewed",
        "timestamp": "2026-12-01T10:00:00Z", "sentAt": "2026-12-01T10:00:01Z",
        "properties": {"product_id": f"sku{i % 500}", "price": 19.99, "currency": "EUR"},
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    options = {"--port": str(port), "--bind": "127.0.0.1", "--save": "", "--appendonly": "no"}
    options |= {"--dir": str(folder), "--logfile": str(folder / "redis.log")}
    proc = subprocess.Popen(
        [binary, *(part for pair in options.items() for part in pair)],
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            connect(url).close()
            return proc, url
        except Exception:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def _redis_cpu(r) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _reap(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; the CPU seconds it used (user + system)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def plain_baseline(url: str, batch: int, events: int) -> tuple[float, float]:
    """XREADGROUP + XACK with the plain client, nothing else: events/s, and events per CPU
    second of the client."""
    import redis as redis_lib

    r = redis_lib.Redis.from_url(url)
    r.xgroup_create(STREAM, "plain", id="0")
    done = 0
    cpu = time.process_time()
    started = time.perf_counter()
    while done < events:
        answer = r.xreadgroup("plain", "p", {STREAM: ">"}, count=batch, block=1000)
        if not answer:
            break
        ids = [i for i, _ in answer[0][1]]
        r.xack(STREAM, "plain", *ids)
        done += len(ids)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    r.close()
    return done / seconds, done / cpu


def _consumer(folder: Path, name: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sendwise.cli", "intake", "consume", "-q", "--project",
           str(folder), "--consumer", name, *extra]  # fmt: skip
    with (folder / f"{name}.out").open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)


def _stored(settings) -> tuple[int, int]:
    with open_store(settings) as store, store.begin() as conn:
        c = intake_event.c
        query = select(func.count(), func.count(func.distinct(c.message_id)))
        total, distinct = conn.execute(query).one()
    return int(total), int(distinct)


def _all_figures(r) -> dict[str, dict]:
    raw = r.hgetall(stats_key(STREAM, "sendwise"))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--consumers", type=int, default=2, help="Consumer processes.")
    parser.add_argument("--no-sync", action="store_true", help="Skip the warehouse check.")
    args = parser.parse_args()
    n = args.events

    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    redis_proc, url = _redis(tmp)
    try:
        folder = tmp / "shop"
        init_project(folder)
        with (folder / "sendwise.toml").open("a") as f:
            f.write(f'\n[streams]\nurl = "{url}"\nstream = "{STREAM}"\nbatch = {args.batch}\n'
                    "block_ms = 200\nclaim_idle_ms = 2000\n")  # fmt: skip
        settings = load_settings(folder)
        with open_store(settings):
            pass  # migrated once here, not by every consumer at once
        r = connect(url)

        started = time.perf_counter()
        publish_events(r, STREAM, (segment_call(i) for i in range(n)), chunk=2_000)
        publish_rate = n / (time.perf_counter() - started)
        plain, plain_cpu = plain_baseline(url, args.batch, n)
        redis_cpu = _redis_cpu(r)
        names = [f"c{i}" for i in range(args.consumers)]
        procs = {name: _consumer(folder, name, "--until-idle") for name in names}
        victim = procs[names[0]]
        first = None
        at_first = 0
        while sum(f["stored"] for f in _all_figures(r).values()) < n // 2:
            if first is None and (seen := _all_figures(r)):
                first = time.perf_counter()
                at_first = sum(f["read"] for f in seen.values())
            if victim.poll() is not None:
                raise SystemExit("the consumer to kill ended early")
            time.sleep(0.05)
        both = sum(f["read"] for f in _all_figures(r).values()) - at_first
        both_s = time.perf_counter() - (first or time.perf_counter())
        os.killpg(victim.pid, signal.SIGKILL)
        cpu = {names[0]: _reap(victim)}
        held = r.xpending_range(STREAM, "sendwise", "-", "+", 1_000_000, consumername=names[0])
        if len(names) == 1:
            names.append("takeover")
            procs["takeover"] = _consumer(folder, "takeover", "--until-idle")
        for name in names[1:]:
            cpu[name] = _reap(procs[name])
            if procs[name].returncode != 0:
                raise SystemExit(f"consumer {name} failed: {(folder / f'{name}.out').read_text()}")
        wall = time.perf_counter() - (first or time.perf_counter())
        redis_cpu = _redis_cpu(r) - redis_cpu
        figures = _all_figures(r)
        total, distinct = _stored(settings)

        store_kind = "PostgreSQL" if "postgres" in settings.store_url() else "SQLite"
        print(f"\n{n:,} Segment calls, batches of {args.batch:,}, store {store_kind},"
              f" {args.consumers} consumer process(es)")  # fmt: skip
        print(f"  producer (publish_events, pipelined XADD)       {publish_rate:>10,.0f} events/s")
        print(f"  plain redis client, XREADGROUP + XACK only      {plain:>10,.0f} events/s"
              f"  ({plain_cpu:,.0f} per CPU-second of the client)")  # fmt: skip
        for name in names:
            f = figures[name]
            role = "(SIGKILLed halfway)" if name == names[0] else "(took over)"
            print(f"  sendwise consumer {name:<9} {role:<19}  "
                  f"{f['read'] / f['seconds']:>10,.0f} events/s  ({f['read']:,} taken,"
                  f" {f['claimed']:,} claimed, {f['duplicates']:,} already stored)")  # fmt: skip
        print(f"  sendwise, the group while all {args.consumers} ran        {both / both_s:>10,.0f}"
              f" events/s  ({both:,} in {both_s:,.1f} s)")  # fmt: skip
        print(f"  sendwise, the group (first batch to last exit) {n / wall:>10,.0f} events/s"
              f"  ({wall:,.1f} s, with the {2.0:.0f} s claim wait)")  # fmt: skip
        print(f"  sendwise CPU, all consumers (with start-ups)   {n / sum(cpu.values()):>10,.0f}"
              f" events per CPU-second ({sum(cpu.values()):,.1f} s);"
              f" redis-server {redis_cpu:,.1f} s")  # fmt: skip
        print(f"  the killed consumer held {len(held):,} unacknowledged entries")
        print(f"  event log: {total:,} rows, {distinct:,} distinct messageIds (expected {n:,})")
        ok = total == distinct == n and r.xpending(STREAM, "sendwise")["pending"] == 0
        if not args.no_sync:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sendwise.cli", "sync", "-q", "--project", str(folder)],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            sync_s = time.perf_counter() - started
            with Warehouse.from_settings(settings) as wh:
                rows, ids, most = wh.engine.execute(
                    "SELECT sum(k), count(*), max(k) FROM"
                    " (SELECT message_id, count(*) AS k FROM event GROUP BY 1)"
                ).fetchone()
            print(f"  sendwise sync: {sync_s:,.1f} s; warehouse event rows {rows:,},"
                  f" {ids:,} distinct messageIds, at most {most} per messageId")  # fmt: skip
            ok = ok and rows == ids == n and most == 1
        print(f"  exactly once: {'yes' if ok else 'NO'}")
        r.close()
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
