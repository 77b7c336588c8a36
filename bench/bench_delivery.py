"""Delivery speed: messages rendered and delivered per second, end to end through the send
pipeline (claim batch in the store, render, signed links, MIME, hand over, record outcome and
email_event), to the file outbox and to a local SMTP server.

Target (issue 7): >= 5,000 messages/s to the file outbox and >= 2,000 messages/s to a local SMTP
server on this 2-core machine. The campaign is planned first (timed separately). The SMTP server
is aiosmtpd in its own process, so it competes with the sender for the two cores, as a local
relay would. The renderer is the built-in BasicRenderer (the content package's renderer costs
what it costs on top).

    python bench/bench_delivery.py [--messages 20000] [--connections 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from sendwise.campaigns.definition import parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.rendering import BasicRenderer
from sendwise.campaigns.service import record_plan
from sendwise.config import CampaignSettings, DeliverySettings, SmtpSettings
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.delivery.smtp import SmtpMessenger
from sendwise.store import Store
from sendwise.store.schema import campaign

NOW = datetime(2026, 1, 5, 10)


def planned_store(
    folder: Path, n: int, ids: list[str] | None = None, templates=("demo_a", "demo_b")
) -> tuple[Store, str]:
    store = Store(f"sqlite:///{folder / 'store.sqlite'}")
    defn = parse_definition(
        {
            "name": "bench",
            "audience": {"rule": "true"},
            "variants": [
                {"name": "A", "template": templates[0], "share": 50},
                {"name": "B", "template": templates[1], "share": 50},
            ],
        }
    )
    ids = ids or [f"C{i:08d}" for i in range(n)]
    audience = pd.DataFrame({"customer_id": ids, "email": [f"{i}@example.com" for i in ids]})
    ex = Exclusions(pd.Series("granted", index=ids), pd.Series(dtype=str), pd.Series(dtype=int))
    started = time.perf_counter()
    frame = plan(defn, audience, ex, CampaignSettings(quiet_start=None), NOW)
    with store.begin() as conn:
        conn.execute(
            campaign.insert(),
            dict(
                campaign_id="bench", name="bench", definition={}, status="created", created_at=NOW
            ),
        )
    record_plan(store, "bench", frame, NOW)
    print(f"plan: {n:,} customers assigned and recorded in {time.perf_counter() - started:.2f}s")
    return store, "bench"


def _serve(port: int, count, ready) -> None:
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def content_renderer(folder: Path, n: int):
    """The content package's renderer over a simulated shop of ``n`` customers (not timed)."""
    from sendwise.config import init_project, load_settings
    from sendwise.content.render import Renderer
    from sendwise.ingest.load import ingest
    from sendwise.profiles import build_profiles
    from sendwise.simulate import simulate_shop
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.schema import LOADABLE

    started = time.perf_counter()
    init_project(folder)
    settings = load_settings(folder)
    settings.segments.clusters = False
    paths = simulate_shop(customers=n, days=120, seed=3).write(folder / "files")
    wh = Warehouse.from_settings(settings)
    for name in LOADABLE:
        if name in paths:
            ingest(wh, settings, paths[name], table=name)
    build_profiles(wh, settings)
    ids = wh.table("profile").customer_id.to_pandas().tolist()
    print(
        f"simulated shop with profiles: {len(ids):,} customers"
        f" ({time.perf_counter() - started:.0f} s, not timed)"
    )
    return Renderer(settings, wh), ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--templates",
        action="store_true",
        help="render the starter newsletter of a simulated shop (content renderer) instead of"
        " the minimal BasicRenderer",
    )
    args = parser.parse_args()
    opts = DeliverySettings(batch_size=1000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        renderer, ids, templates = BasicRenderer({}), None, ("demo_a", "demo_b")
        if args.templates:
            renderer, ids = content_renderer(folder / "shop", args.messages)
            templates = ("newsletter.html", "win-back.html")
        (folder / "a").mkdir()
        store, cid = planned_store(folder / "a", args.messages, ids, templates)
        report = deliver(store, cid, renderer, OutboxMessenger(folder / "outbox"), opts, now=NOW)
        files = len(list((folder / "outbox").glob("*.eml")))
        print(
            f"outbox: {report.sent:,} messages ({files:,} files) in {report.seconds:.2f}s = "
            f"{report.per_second:,.0f} messages/s (target 5,000)"
        )
        store.close()

        (folder / "b").mkdir()
        store, cid = planned_store(folder / "b", args.messages, ids, templates)
        port = free_port()
        count, ready = mp.Value("i", 0), mp.Event()
        server = mp.Process(target=_serve, args=(port, count, ready), daemon=True)
        server.start()
        ready.wait(30)
        smtp = SmtpMessenger(
            SmtpSettings(host="127.0.0.1", port=port, starttls=False, connections=args.connections)
        )
        server_cpu = cpu_seconds(server.pid)
        own_cpu = time.process_time()
        report = deliver(store, cid, renderer, smtp, opts, now=NOW)
        server_cpu = cpu_seconds(server.pid) - server_cpu
        own_cpu = time.process_time() - own_cpu
        print(
            f"smtp:   {report.sent:,} messages ({count.value:,} received by the server, "
            f"{smtp.opened} connections) in {report.seconds:.2f}s = "
            f"{report.per_second:,.0f} messages/s (target 2,000); CPU: sender {own_cpu:.1f}s, "
            f"SMTP server {server_cpu:.1f}s"
        )
        server.terminate()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
