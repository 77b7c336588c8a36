"""Read API speed: profile reads and real-time recommendations under open-loop load.

Targets (issue 15): profile reads p99 < 10 ms at 500 requests/s; recommendations p99 < 20 ms.
The service runs as `sendwise serve` (uvicorn, httptools, uvloop) in its own process on the
project's SQLite store holding a published snapshot of a simulated shop; a share of the
customers have fresh intake events (views, cart adds), so the live merge is part of every
answer. The load is open-loop: requests are scheduled at a fixed rate whatever the answers do,
sent over a pool of keep-alive connections, and each latency is measured from the request's
scheduled time (no coordinated omission). The same load against a plain FastAPI endpoint
returning a constant, served the same way, gives the floor of this machine and client.

    python bench/bench_serving.py [--rate 500] [--seconds 10] [--customers 2000]
                                  [--project FOLDER (an already built project)]
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
import warnings
from pathlib import Path

import numpy as np

from rawhttp import exchange

PORT = 18461


def constant_app():  # uvicorn factory: the floor (no auth, no store)
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/constant")
    async def constant() -> dict[str, int]:
        return {"ok": 1}

    return app


def build_project(folder: Path, customers: int) -> None:
    from sendwise.build import run_build
    from sendwise.config import init_project, load_settings
    from sendwise.ingest.load import ingest
    from sendwise.simulate import simulate_shop
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.schema import LOADABLE

    init_project(folder)
    settings = load_settings(folder)
    with Warehouse.from_settings(settings) as wh:
        paths = simulate_shop(customers=customers, days=300, seed=7).write(folder / "files")
        for name in LOADABLE:
            if name in paths:
                ingest(wh, settings, paths[name], table=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run_build(wh, settings)  # publishes at its end


def prepare(folder: Path, live_share: float) -> tuple[str, list[str]]:
    """(a read key, the customer ids); fresh intake events for ``live_share`` of them."""
    import uuid

    from sendwise.access import create_key
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.store.records import utcnow

    settings = load_settings(folder)
    rng = random.Random(3)
    with open_store(settings) as store:
        version = store.snapshots.current_version()
        if version is None:  # a built project whose snapshot is not in this store yet
            from sendwise.serving.publish import publish
            from sendwise.warehouse.connection import Warehouse

            with Warehouse.from_settings(settings) as wh:
                version = publish(wh, store, settings).version
        from sqlalchemy import select

        from sendwise.store.schema import snapshot_product, snapshot_profile

        with store.begin() as conn:
            ids = list(
                conn.execute(
                    select(snapshot_profile.c.customer_id).where(
                        snapshot_profile.c.version == version
                    )
                ).scalars()
            )
            products = list(
                conn.execute(
                    select(snapshot_product.c.product_id).where(
                        snapshot_product.c.version == version
                    )
                ).scalars()
            )
        now = utcnow()
        events = []
        for cid in rng.sample(ids, int(len(ids) * live_share)):
            for name in ("Product Viewed", "Product Viewed", "Product Viewed", "Product Added"):
                events.append(
                    {"message_id": str(uuid.uuid4()), "type": "track", "event": name,
                     "user_id": cid, "anonymous_id": None, "customer_id": cid,
                     "occurred_at": now, "received_at": now, "sent_at": None,
                     "properties": {"product_id": rng.choice(products)}, "traits": {},
                     "context": {}, "source": "bench"}
                )  # fmt: skip
        store.intake.append(events)
        key = create_key(store, f"bench-{uuid.uuid4().hex[:6]}", "read", at=now)
    return key, ids


async def _worker(port: int, queue: asyncio.Queue, lat: list, status: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        item = await queue.get()
        if item is None:
            break
        scheduled, request = item
        code = await exchange(reader, writer, request)
        lat.append(time.perf_counter() - scheduled)
        status.append(code)
    writer.close()


async def open_loop(port: int, requests: list[bytes], rate: float, seconds: float, conns: int):
    queue: asyncio.Queue = asyncio.Queue()
    lat: list[float] = []
    status: list[int] = []
    workers = [asyncio.create_task(_worker(port, queue, lat, status)) for _ in range(conns)]
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)
    for i in range(total):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((at, requests[i % len(requests)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return time.perf_counter() - start, np.array(lat), np.array(status)


def _requests(paths: list[str], key: str) -> list[bytes]:
    return [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        for p in paths
    ]


def _start(cmd: list[str], port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the service did not start")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health")
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the service did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn's workers) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(c) for c in kids.read_text().split()] if kids.exists() else []
    return own + sum(cpu_seconds(c) for c in children)


def _report(
    name: str, rate: float, seconds: float, lat: np.ndarray, status: np.ndarray, cpu: float
) -> None:
    ok = int(((status >= 200) & (status < 300)).sum())
    ms = np.percentile(lat, [50, 90, 99, 100]) * 1000
    print(
        f"{name:<16} {rate:>5.0f}/s asked, {len(lat) / seconds:>5.0f}/s done, 2xx {ok}/{len(lat)}"
        f" | ms p50 {ms[0]:6.2f}  p90 {ms[1]:6.2f}  p99 {ms[2]:6.2f}  max {ms[3]:7.2f}"
        f" | service CPU {cpu / max(len(lat), 1) * 1000:.2f} ms/request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--only", choices=["constant", "profile", "recommendations"], nargs="*")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--live-share", type=float, default=0.2)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.project
        if folder is None:
            folder = Path(tmp) / "shop"
            print(f"building a {args.customers:,}-customer simulated shop ...", flush=True)
            build_project(folder, args.customers)
        key, ids = prepare(folder, args.live_share)
        rng = random.Random(5)
        picks = [rng.choice(ids) for _ in range(5000)]
        profile = _requests([f"/v1/profiles/{c}" for c in picks], key)
        recs = _requests([f"/v1/profiles/{c}/recommendations?k=10" for c in picks], key)
        const = _requests(["/v1/constant"], key)
        here = Path(__file__).resolve().parent
        plain = [sys.executable, "-m", "uvicorn", "--app-dir", str(here), "--factory",
                 "bench_serving:constant_app", "--port", str(PORT + 1), "--http", "httptools",
                 "--loop", "uvloop", "--log-level", "warning", "--no-access-log",
                 "--workers", str(args.workers)]  # fmt: skip
        serve = [sys.executable, "-m", "sendwise.cli", "serve", "--project", str(folder),
                 "--port", str(PORT), "--workers", str(args.workers)]  # fmt: skip
        print(f"{len(ids):,} profiles, {args.live_share:.0%} with fresh events; "
              f"open loop, {args.connections} connections, {args.seconds:.0f} s a run")  # fmt: skip
        for name, cmd, port, reqs in (
            ("constant", plain, PORT + 1, const),
            ("profile", serve, PORT, profile),
            ("recommendations", serve, PORT, recs),
        ):
            if args.only and name not in args.only:
                continue
            proc = _start(cmd, port)
            try:
                asyncio.run(open_loop(port, reqs, 100, 1.0, 4))  # warm up
                cpu = cpu_seconds(proc.pid)
                seconds, lat, status = asyncio.run(
                    open_loop(port, reqs, args.rate, args.seconds, args.connections)
                )
                cpu = cpu_seconds(proc.pid) - cpu
            finally:
                proc.terminate()
                proc.wait(60)
            _report(name, args.rate, seconds, lat, status, cpu)


if __name__ == "__main__":
    main()
