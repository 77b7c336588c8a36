"""Event intake speed: Segment calls per second into `sendwise serve`, every answered call
checked in the store afterwards, side by side with a plain FastAPI endpoint that does nothing.

Target (issue 15): >= 5,000 events/s sustained on 2 cores with every answered event stored.
Clients send batches, as Segment's libraries do (`/v1/batch`, --batch calls each, HTTP Basic
with a write key); the single-call rate (`/v1/track`, one event a request) is reported too. The
"plain library" baseline is uvicorn + FastAPI with the same server options and an endpoint that
reads the body and answers `{"success": true}`: the ceiling of the HTTP layer on this machine.
The load generator is a lean asyncio HTTP/1.1 client with keep-alive connections (closed loop).

    python bench/bench_intake.py [--seconds 10] [--connections 8] [--workers 2] [--batch 100]
    SENDWISE_STORE__URL=postgresql://... python bench/bench_intake.py   # on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rawhttp import exchange
from sendwise.access import Scope, create_key
from sendwise.config import init_project, load_settings
from sendwise.store import open_store

PLAIN = textwrap.dedent(
    """
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/v1/{kind}")
    async def intake(kind: str, request: Request) -> dict:
        await request.body()
        return {"success": True}
    """
)


def _call(i: int, run: str) -> dict:
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).isoformat()
    return {
        "type": "track", "messageId": f"{run}-{i:09d}", "userId": f"C{i % 5000}",
        "anonymousId": f"anon-{i % 7000}", "event": "Product Viewed", "timestamp": at,
        "properties": {"product_id": f"sku{i % 500}", "price": 19.99, "currency": "EUR"},
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    }  # fmt: skip


def _requests(kind: str, auth: str, start: int, count: int, batch: int, run: str) -> list:
    """(request bytes, its messageIds) for ``count`` requests of ``batch`` calls each."""
    out = []
    for r in range(count):
        calls = [_call(start + r * batch + j, run) for j in range(batch)]
        if kind == "batch":
            body = json.dumps({"batch": calls, "sentAt": calls[0]["timestamp"]}).encode()
        else:
            body = json.dumps(calls[0]).encode()
        head = (
            f"POST /v1/{kind} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append((head + body, [c["messageId"] for c in calls]))
    return out


async def _connection(port, requests, stop_at, latencies, acked, statuses) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for req, ids in requests:
        if time.perf_counter() >= stop_at:
            break
        t0 = time.perf_counter()
        code = await exchange(reader, writer, req)
        latencies.append(time.perf_counter() - t0)
        status = code
        statuses.append(status)
        if 200 <= status < 300:
            acked.extend(ids)
    writer.close()


async def _load(port: int, per_connection: list[list], seconds: float):
    latencies: list[float] = []
    acked: list[str] = []
    statuses: list[int] = []
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, r, stop_at, latencies, acked, statuses) for r in per_connection)
    )
    return time.perf_counter() - started, np.array(latencies), acked, statuses


def _wait_ready(port: int, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the service did not start")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health")
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the service did not answer")


def _stored_ids(settings) -> set[str]:
    ids: set[str] = set()
    with open_store(settings) as store:
        seq = 0
        while rows := store.intake.since(seq, 50_000):
            ids.update(r["message_id"] for r in rows)
            seq = int(rows[-1]["seq"])
    return ids


def _serve(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    _wait_ready(port, proc)
    return proc


def _run(label, port, kind, auth, args, run, conns) -> tuple[float, list[str], list[int]]:
    n = int(args.seconds * 40_000 / (args.batch if kind == "batch" else 1) / conns) + 10
    size = args.batch if kind == "batch" else 1
    reqs = [_requests(kind, auth, c * n * size, n, size, f"{run}{c}") for c in range(conns)]
    warm = [_requests(kind, auth, 0, 20, size, f"warm{run}{c}") for c in range(2)]
    asyncio.run(_load(port, warm, 1.0))
    seconds, lat, acked, statuses = asyncio.run(_load(port, reqs, args.seconds))
    events = len(acked)
    ms = np.percentile(lat, [50, 99]) * 1000 if len(lat) else [0, 0]
    bad = sum(1 for s in statuses if not 200 <= s < 300)
    print(
        f"{label:<34} {events / seconds:>9,.0f} events/s  {len(lat) / seconds:>8,.0f} req/s"
        f"  p50 {ms[0]:6.2f} ms  p99 {ms[1]:6.2f} ms  non-2xx {bad}"
    )
    return seconds, acked, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--port", type=int, default=18451)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        init_project(folder)
        settings = load_settings(folder)
        with open_store(settings) as store:
            at = datetime.now(UTC).replace(tzinfo=None)
            key = create_key(store, "bench", Scope.WRITE, rate_per_second=1e6, at=at)
        auth = base64.b64encode(f"{key}:".encode()).decode()
        server = ["--port", str(args.port), "--workers", str(args.workers)]
        print(f"workers {args.workers}, connections {args.connections}, {args.seconds:.0f} s each,"
              f" batches of {args.batch}; store {settings.store_url().split(':')[0]}")  # fmt: skip
        proc = _serve([sys.executable, "-m", "sendwise.cli", "serve", "--project", str(folder),
                       *server], args.port)  # fmt: skip
        acked: list[str] = []
        try:
            _, got, _ = _run("sendwise /v1/batch", args.port, "batch", auth, args, "b",
                             args.connections)  # fmt: skip
            acked += got
            _, got, _ = _run("sendwise /v1/track (one call)", args.port, "track", auth, args,
                             "t", args.connections)  # fmt: skip
            acked += got
        finally:
            proc.terminate()
            proc.wait(60)
        stored = _stored_ids(settings)
        missing = len(set(acked) - stored)
        print(f"answered 2xx: {len(acked):,} events; in the store: {len(set(acked) & stored):,};"
              f" missing: {missing}")  # fmt: skip
        module = Path(tmp) / "plain_app.py"
        module.write_text(PLAIN, encoding="utf-8")
        plain = [sys.executable, "-m", "uvicorn", "plain_app:app", "--port", str(args.port),
                 "--workers", str(args.workers), "--http", "httptools", "--loop", "uvloop",
                 "--log-level", "warning", "--no-access-log"]  # fmt: skip
        proc = _serve(plain, args.port, {"PYTHONPATH": tmp})
        try:
            _run("plain FastAPI /v1/batch (no-op)", args.port, "batch", auth, args, "pb",
                 args.connections)  # fmt: skip
            _run("plain FastAPI /v1/track (no-op)", args.port, "track", auth, args, "pt",
                 args.connections)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
