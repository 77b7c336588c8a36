"""Tracking service speed: requests per second and latency of the open pixel and the click
redirect, with every event counted in the store afterwards.

Target (issue 8): >= 2,000 requests/s on loopback on this 2-core machine with p99 < 20 ms and no
event lost. The service runs as `sendwise serve` (uvicorn, httptools, uvloop; --workers) in its
own processes on a SQLite store; the load generator is a lean asyncio HTTP/1.1 client with
keep-alive connections (closed loop: each connection sends its next request when the answer
arrived), so that the generator takes as little of the two cores as possible. 80% opens, 20%
clicks, on 5,000 sent messages.

    python bench/bench_tracking.py [--seconds 10] [--connections 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from rawhttp import exchange
from sendwise.config import init_project, load_settings
from sendwise.delivery.links import sign
from sendwise.delivery.tracking_links import click_url
from sendwise.keys import signing_key
from sendwise.store import open_store
from sendwise.store.schema import email_event, message

AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def _seed(settings, n: int) -> list[str]:
    keys = [f"bench{i:08d}" for i in range(n)]
    now = datetime(2025, 1, 1, 9)
    rows = [
        dict(message_key=k, campaign_id="bench", customer_id=f"C{i}", email=f"c{i}@example.com",
             variant="A", template="t", status="sent", attempts=1, updated_at=now)
        for i, k in enumerate(keys)
    ]  # fmt: skip
    with open_store(settings) as store, store.begin() as conn:
        conn.execute(message.insert(), rows)
    return keys


def _paths(key: bytes, keys: list[str], count: int) -> list[bytes]:
    rng = random.Random(1)
    out = []
    for _ in range(count):
        k = rng.choice(keys)
        if rng.random() < 0.8:
            path = f"/o/{sign(key, f'open:{k}')}.gif"
        else:
            path = click_url("", key, k, f"https://shop.example/p/{rng.randint(1, 500)}?utm=x")
        out.append(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {AGENT}\r\n\r\n".encode()
        )
    return out


async def _connection(port, requests, stop_at, latencies, statuses) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    while time.perf_counter() < stop_at:
        req = requests[i % len(requests)]
        i += 1
        t0 = time.perf_counter()
        code = await exchange(reader, writer, req)
        latencies.append(time.perf_counter() - t0)
        statuses.append(code)
    writer.close()


async def _load(port: int, requests: list[list[bytes]], seconds: float):
    latencies: list[float] = []
    statuses: list[int] = []
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, r, stop_at, latencies, statuses) for r in requests))
    return time.perf_counter() - started, np.array(latencies), np.array(statuses)


def _wait_ready(port: int, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the service did not start")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the service did not answer")


def _settled_count(settings) -> int:
    """Events in the store once the count stops moving (queued events are written)."""
    last = -1
    while True:
        with open_store(settings) as store, store.begin() as conn:
            count = conn.execute(select(func.count()).select_from(email_event)).scalar_one()
        if count == last:
            return count
        last = count
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--port", type=int, default=18431)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        settings = load_settings(folder)
        keys = _seed(settings, args.messages)
        key = signing_key(settings.delivery)
        requests = [_paths(key, keys, 2000) for _ in range(args.connections)]
        cmd = [sys.executable, "-m", "sendwise.cli", "serve", "--project", str(folder),
               "--port", str(args.port), "--workers", str(args.workers)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ})
        try:
            _wait_ready(args.port, proc)
            asyncio.run(_load(args.port, requests[:2], 1.0))  # warm up every worker
            before = _settled_count(settings)  # the warm-up's events are all written
            seconds, lat, status = asyncio.run(_load(args.port, requests, args.seconds))
        finally:
            proc.terminate()  # SIGTERM: uvicorn shuts down, the recorders flush their queues
            proc.wait(60)
        with open_store(settings) as store, store.begin() as conn:
            after = conn.execute(select(func.count()).select_from(email_event)).scalar_one()
    ok = int(((status >= 200) & (status < 400)).sum())
    print(f"workers {args.workers}, connections {args.connections}, {seconds:.1f} s")
    print(f"requests: {len(lat):,} ({len(lat) / seconds:,.0f}/s), answered 2xx/3xx: {ok:,}")
    ms = np.percentile(lat, [50, 90, 99, 99.9]) * 1000
    print(f"latency ms: p50 {ms[0]:.2f}  p90 {ms[1]:.2f}  p99 {ms[2]:.2f}  p99.9 {ms[3]:.2f}")
    stored = after - before
    verdict = "none lost" if stored == ok else f"LOST {ok - stored:,}"
    print(f"events stored: {stored:,} of {ok:,} answered -> {verdict}")


if __name__ == "__main__":
    main()
