"""Several sendwise processes on one PostgreSQL store (issue 20, point 3): the parts of the
scenario in tests/fleet_run.py (run by tests/test_many_processes.py and
bench/bench_many_processes.py).

A fleet is real processes on one project whose store is a PostgreSQL schema: ``sendwise serve``
(``--no-worker``) twice, ``sendwise worker`` twice, and campaign senders (this file run as a
script: ``python tests/fleet_support.py send FOLDER CAMPAIGN MESSENGER``) that deliver one
planned campaign through the ordinary claim path at the same time. Segment batches go through
both services; an abandoned-cart journey runs in the workers; a real SMTP server on loopback
counts every hand-over by message key, so a message sent twice is seen twice. The checks compare
what arrived with what each customer should have got (the ground truth is how the customers
were made), and every answered intake event with the store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SENDWISE = Path(sys.executable).parent / "sendwise"
CAMPAIGN = "fleet"
JOURNEY = "abandoned_cart"


def cart_journey(wait_seconds: int) -> str:
    """The abandoned cart: a reminder ``wait_seconds`` after the cart unless an order came."""
    return f"""
name = "{JOURNEY}"
quiet_hours = false
[trigger]
event = "Product Added"
[goal]
event = "Order Completed"
within = "7d"
[[steps]]
id = "wait"
wait = "{wait_seconds}s"
[[steps]]
id = "reminder_1"
send = "abandoned-cart.html"
[[steps]]
id = "wait_more"
wait = "1h"
[[steps]]
id = "reminder_2"
send = "abandoned-cart.html"
"""


# --- the store and the project ----------------------------------------------------------------


@contextmanager
def pg_schema(raw_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema: (SQLAlchemy URL whose connections use it, schema name);
    dropped afterwards."""
    from sqlalchemy import create_engine, text

    base = "postgresql+psycopg://" + raw_url.split("://", 1)[1]
    schema = f"sw_fleet_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_project(folder: Path, store_url: str, smtp_port: int) -> Any:
    """A project whose store is ``store_url`` and whose messenger is the SMTP server."""
    from sendwise.config import init_project, load_settings

    init_project(folder)
    toml = (folder / "sendwise.toml").read_text(encoding="utf-8")
    toml = toml.replace('messenger = "outbox"', 'messenger = "smtp"')
    toml += f"""
[store]
url = "{store_url}"

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
connections = 4

[privacy]
double_opt_in = false
"""
    (folder / "sendwise.toml").write_text(toml, encoding="utf-8")
    return load_settings(folder)


def plan_campaign(store: Any, ids: list[str], at: datetime) -> None:
    """The campaign planned straight into the store (every customer assigned a message)."""
    from sendwise.campaigns.definition import parse_definition
    from sendwise.campaigns.planning import Exclusions, plan
    from sendwise.campaigns.service import record_plan
    from sendwise.config import CampaignSettings
    from sendwise.store.schema import campaign

    defn = parse_definition(
        {
            "name": CAMPAIGN,
            "audience": {"rule": "true"},
            "variants": [
                {"name": "A", "template": "demo_a", "share": 50},
                {"name": "B", "template": "demo_b", "share": 50},
            ],
        }
    )
    audience = pd.DataFrame({"customer_id": ids, "email": [address(i) for i in ids]})
    ex = Exclusions(pd.Series("granted", index=ids), pd.Series(dtype=str), pd.Series(dtype=int))
    frame = plan(defn, audience, ex, CampaignSettings(quiet_start=None), at)
    with store.begin() as conn:
        conn.execute(
            campaign.insert(),
            dict(
                campaign_id=CAMPAIGN, name=CAMPAIGN, definition={}, status="created", created_at=at
            ),
        )
    record_plan(store, CAMPAIGN, frame, at)


def address(customer_id: str) -> str:
    return f"{customer_id.lower()}@example.com"


# --- the SMTP server that counts hand-overs ---------------------------------------------------


@dataclass
class Counting:
    """aiosmtpd handler: hand-overs by message key (the Message-ID's local part)."""

    keys: Counter[str] = field(default_factory=Counter)
    to: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.content.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        key = ""
        for line in head.split("\r\n"):
            if line.lower().startswith("message-id:"):
                key = line.split(":", 1)[1].strip().strip("<>").split("@")[0]
        with self.lock:
            self.keys[key] += 1
            self.to[key] = envelope.rcpt_tos[0]
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, Counting]]:
    from aiosmtpd.controller import Controller

    from mailservers import free_port

    port = free_port()
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


# --- processes ------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    env.pop("SENDWISE_PROJECT", None)
    return env


class Fleet:
    """Started processes, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(args, env=environment(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append((name, proc))
        return proc

    def serve(self, name: str, port: int) -> str:
        self.start(
            name,
            [str(SENDWISE), "serve", "-p", str(self.folder), "--port", str(port), "--no-worker"],
        )
        return f"http://127.0.0.1:{port}"

    def worker(self, name: str, interval: float = 0.2) -> None:
        self.start(
            name, [str(SENDWISE), "worker", "-p", str(self.folder), "--interval", str(interval)]
        )

    def sender(self, name: str, messenger: str) -> subprocess.Popen[bytes]:
        return self.start(
            name,
            [sys.executable, str(Path(__file__)), "send", str(self.folder), CAMPAIGN, messenger],
        )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        for _name, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


# --- a campaign sender (run as a script) --------------------------------------------------------


def send(folder: str, campaign_id: str, messenger: str) -> None:
    """Deliver the campaign's due messages from this process (the campaign's claim path),
    printing the report as one JSON line."""
    from sendwise.campaigns.rendering import BasicRenderer
    from sendwise.config import load_settings
    from sendwise.delivery import make_messenger
    from sendwise.delivery.pipeline import deliver
    from sendwise.store import open_store

    settings = load_settings(Path(folder))
    with open_store(settings) as store:
        report = deliver(
            store,
            campaign_id,
            BasicRenderer({}),
            make_messenger(settings, messenger),
            settings.delivery,
            journal=settings.path("journal", f"{campaign_id}.{os.getpid()}.keys"),
        )
    print(
        json.dumps(
            {
                "sent": report.sent,
                "failed": report.failed,
                "skipped": report.skipped,
                "seconds": report.seconds,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(*sys.argv[2:5])
