"""Delivery speed: messages rendered and delivered per second, end to end through the send
pipeline (claim batch in the store, render, signed links, MIME, hand over, record outcome and
email_event), to the file outbox and to a local SMTP server.

Target (issue 7): >= 5,000 messages/s to the file outbox and >= 2,000 messages/s to a local SMTP
server on this 2-core machine. The campaign is planned first (timed separately). The send uses
the campaign's sending processes (``--workers``; by default one per core, as `campaign send`
chooses), each its own shard of the messages.

The SMTP server runs in its own processes, so it competes with the sender for the two cores, as
a local relay would. ``--server smtp-sink`` is Postfix's test server made for measuring clients
(``apt-get install postfix`` provides /usr/sbin/smtp-sink); ``--server aiosmtpd`` is the pure
Python server the tests use, which spends about as much CPU per message as the sender.

``--templates`` renders the starter newsletter and win-back templates of a simulated shop with
the content renderer (what a real campaign costs); without it, the minimal BasicRenderer.

    python bench/bench_delivery.py [--messages 20000] [--templates] [--workers N]
                                   [--server smtp-sink|aiosmtpd] [--connections 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import subprocess
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
from sendwise.campaigns.workers import send_in_workers, worker_count
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


def smtp_sink() -> str | None:
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink",) if Path(p).exists()), None
    )


def start_server(kind: str, port: int):
    """(process, count of messages received or None, pid whose CPU is the server's)."""
    if kind == "smtp-sink":
        # -c: count; -u: run as; backlog 256; unlimited connections; accepts and discards
        proc = subprocess.Popen(
            [smtp_sink(), "-u", "root", "-c", f"127.0.0.1:{port}", "256"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return proc, None, proc.pid
    count, ready = mp.Value("i", 0), mp.Event()
    server = mp.Process(target=_serve, args=(port, count, ready), daemon=True)
    server.start()
    ready.wait(30)
    return server, count, server.pid


def send(store, cid, renderer, messenger, opts, workers, n):
    """The sending step of `campaign send`: one pipeline, or one per worker process."""
    chosen = worker_count(workers, n, renderer)
    if chosen == 1:
        return deliver(store, cid, renderer, messenger, opts, now=NOW), 1
    kwargs = dict(sender=opts.sender, now=NOW, progress=None, journal=None)
    return send_in_workers(chosen, store, cid, renderer, messenger, opts, **kwargs), chosen


def own_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of this process and of its finished children (the sending
    processes). System time is mostly the kernel creating files or moving bytes."""
    t = os.times()
    return t.user + t.children_user, t.system + t.children_system


def cpu_note(before: tuple[float, float], n: int) -> str:
    user, system = (b - a for a, b in zip(before, own_cpu(), strict=True))
    n = max(n, 1)
    return f"CPU per message: {user / n * 1e6:,.0f} us user + {system / n * 1e6:,.0f} us system"


def raw_file_cost(folder: Path, size: int, n: int = 5_000) -> float:
    """Microseconds to create and write one file of ``size`` bytes in a new folder here, now:
    the floor under the outbox, which varies a lot with the disk's state (on the development
    VM's ext4, 30 us normally and up to 600 us just after many files were deleted)."""
    folder.mkdir()
    data = b"x" * size
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    started = time.perf_counter()
    for i in range(n):
        fd = os.open(folder / f"{i}.eml", flags, 0o644)
        os.write(fd, data)
        os.close(fd)
    return (time.perf_counter() - started) / n * 1e6


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
    parser.add_argument("--workers", type=int, default=None, help="default: as campaign send")
    parser.add_argument(
        "--server",
        choices=("smtp-sink", "aiosmtpd"),
        default=None,
        help="local SMTP server (default: smtp-sink when installed, else aiosmtpd)",
    )
    parser.add_argument(
        "--templates",
        action="store_true",
        help="render the starter newsletter of a simulated shop (content renderer) instead of"
        " the minimal BasicRenderer",
    )
    args = parser.parse_args()
    server_kind = args.server or ("smtp-sink" if smtp_sink() else "aiosmtpd")
    if server_kind == "smtp-sink" and not smtp_sink():
        sys.exit("smtp-sink not found: apt-get install postfix (it provides /usr/sbin/smtp-sink)")
    opts = DeliverySettings(batch_size=1000, signing_key=secrets.token_urlsafe(32))
    print(f"load before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        renderer, ids, templates = BasicRenderer({}), None, ("demo_a", "demo_b")
        if args.templates:
            renderer, ids = content_renderer(folder / "shop", args.messages)
            templates = ("newsletter.html", "win-back.html")
        (folder / "a").mkdir()
        store, cid = planned_store(folder / "a", args.messages, ids, templates)
        size = 9_000 if args.templates else 1_500
        floor = raw_file_cost(folder / "calibration", size)
        print(f"this disk now: {floor:,.0f} us to create and write one {size:,}-byte file")
        if floor > 100:
            print(
                "  (slow: an ext4 file system without a journal rescans the inodes deleted in the"
                " last ~5 minutes at every file it creates; the outbox figure below includes that."
                " Rerun after a quiet spell, or with TMPDIR on another file system.)"
            )
        cpu = own_cpu()
        outbox = OutboxMessenger(folder / "outbox")
        report, n = send(store, cid, renderer, outbox, opts, args.workers, args.messages)
        cpu = cpu_note(cpu, report.sent)
        files = len(list((folder / "outbox").glob("*.eml")))
        print(
            f"outbox: {report.sent:,} messages ({files:,} files) in {report.seconds:.2f}s = "
            f"{report.per_second:,.0f} messages/s (target 5,000); {n} sending process(es); "
            f"{cpu}"
        )
        store.close()

        (folder / "b").mkdir()
        store, cid = planned_store(folder / "b", args.messages, ids, templates)
        port = free_port()
        server, count, server_pid = start_server(server_kind, port)
        smtp = SmtpMessenger(
            SmtpSettings(host="127.0.0.1", port=port, starttls=False, connections=args.connections)
        )
        server_cpu, cpu = cpu_seconds(server_pid), own_cpu()
        report, n = send(store, cid, renderer, smtp, opts, args.workers, args.messages)
        server_cpu, cpu = cpu_seconds(server_pid) - server_cpu, cpu_note(cpu, report.sent)
        received = f"{count.value:,} received by the server" if count is not None else "sent"
        print(
            f"smtp ({server_kind}): {report.sent:,} messages ({received}, "
            f"{args.connections} connections) in {report.seconds:.2f}s = "
            f"{report.per_second:,.0f} messages/s (target 2,000); {n} sending process(es); "
            f"sender {cpu}; server {server_cpu / max(report.sent, 1) * 1e6:,.0f} us"
        )
        server.terminate()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
