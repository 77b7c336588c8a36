"""Outgoing webhook throughput: events fanned out into the outbox, then delivered (signed, one
POST each) to a receiver on loopback that answers 204 at once.

Prints enqueue rate (outbox rows a second) and delivery rate (webhooks a second, claim + sign +
POST + record) on a SQLite store in a temporary folder, or PostgreSQL with ``--store URL``.
On the shared 2-core machine the delivery rate is that of the HTTP round trip itself (httpx's
async client to this receiver without sendwise: about the same figure).

    python bench/bench_webhooks.py [--events 2000] [--subscriptions 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sendwise.config import WebhookSettings
from sendwise.serving.hooks import Dispatcher, WebhookEvent, add_subscription, enqueue
from sendwise.store import Store
from sendwise.store.claims import utcnow


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the dispatcher reuses its connections

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--store", default=None, help="a store URL (default: SQLite file)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or f"sqlite:///{Path(tmp) / 'store.sqlite'}")
        now = utcnow()
        for _ in range(args.subscriptions):
            add_subscription(store, url, ["*"], at=now)
        events = [
            WebhookEvent(
                "segment.entered",
                {"customer_id": f"c{i}", "segment": "vip"},
                now - timedelta(seconds=1),
                key=f"bench:{now.isoformat()}:{i}",
            )
            for i in range(args.events)
        ]
        started = time.perf_counter()
        added = enqueue(store, events, at=now - timedelta(seconds=1))
        enqueue_s = time.perf_counter() - started
        settings = WebhookSettings(concurrency=args.concurrency, batch_size=args.batch)
        started = time.perf_counter()
        report = asyncio.run(Dispatcher(store, settings).run_once())
        deliver_s = time.perf_counter() - started
        store.close()
    server.shutdown()
    print(f"outbox rows      {added:>8,}   ({args.events:,} events x {args.subscriptions} subs)")
    print(f"enqueue          {added / enqueue_s:>8,.0f} rows/s   ({enqueue_s:.2f} s)")
    failed = f"(retried {report.retried}, dead {report.dead})"
    print(f"delivered        {report.delivered:>8,}   {failed}")
    print(f"delivery         {report.delivered / deliver_s:>8,.0f} webhooks/s ({deliver_s:.2f} s)")


if __name__ == "__main__":
    main()
