"""Several sendwise processes on one PostgreSQL store (issue 20, point 3), for
tests/test_many_processes.py and bench/bench_many_processes.py.

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
from datetime import UTC, datetime, timedelta
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


# --- intake load --------------------------------------------------------------------------------


@dataclass
class Shoppers:
    """The journey's customers by what they do (the ground truth of the journey)."""

    carts: list[str]
    """Add to cart and leave: one reminder each."""
    buyers: list[str]
    """Add to cart, then order: none."""
    browsers: list[str]
    """Only look: none."""
    suppressed: list[str]
    """Leave a cart, but their address is suppressed: none."""

    @classmethod
    def make(cls, n: int) -> Shoppers:
        ids = [f"J{i:06d}" for i in range(n)]
        return cls(ids[0::4], ids[1::4], ids[2::4], ids[3::4])

    def events(self) -> list[list[dict[str, Any]]]:
        """Each customer's calls, in order, with their own messageIds and timestamps."""
        t0 = datetime.now(UTC)
        out = []

        def call(cid: str, kind: str, k: int, **body: Any) -> dict[str, Any]:
            at = (t0 + timedelta(milliseconds=k)).isoformat()
            return {
                "type": kind,
                "userId": cid,
                "messageId": f"{cid}-{k}-{uuid.uuid4().hex[:8]}",
                "timestamp": at,
                **body,
            }

        for group, cids in (
            ("cart", self.carts),
            ("buy", self.buyers),
            ("browse", self.browsers),
            ("cart", self.suppressed),
        ):
            for cid in cids:
                calls = [
                    call(cid, "identify", 0, traits={"email": address(cid), "email_consent": True}),
                    call(
                        cid,
                        "track",
                        1,
                        event="Product Viewed",
                        properties={"product_id": "sku1", "price": 20},
                    ),
                ]
                if group in ("cart", "buy"):
                    calls.append(
                        call(
                            cid,
                            "track",
                            2,
                            event="Product Added",
                            properties={"product_id": "sku1", "price": 20},
                        )
                    )
                if group == "buy":
                    calls.append(
                        call(
                            cid,
                            "track",
                            3,
                            event="Order Completed",
                            properties={"order_id": f"o-{cid}", "revenue": 20},
                        )
                    )
                out.append(calls)
        return out


@dataclass
class IntakeReport:
    answered: list[str] = field(default_factory=list)
    refused: int = 0
    repeated: int = 0
    """Calls sent a second time, to the other service (stored once all the same)."""
    seconds: float = 0.0


def drive_intake(
    urls: list[str], write_key: str, people: list[list[dict[str, Any]]], batch: int = 40
) -> IntakeReport:
    """Send every customer's calls through the services, one thread per service, a customer's
    calls in order in one service's batches, every tenth batch sent again to the other service
    (a retry); the messageIds of the answered (2xx) calls."""
    report = IntakeReport()
    lock = threading.Lock()
    started = time.perf_counter()

    def run(url: str, other: str, mine: list[list[dict[str, Any]]]) -> None:
        flat = [c for calls in mine for c in calls]
        auth = (write_key, "")
        with (
            httpx.Client(base_url=url, auth=auth, timeout=60) as client,
            httpx.Client(base_url=other, auth=auth, timeout=60) as retry,
        ):
            for n, i in enumerate(range(0, len(flat), batch)):
                part = flat[i : i + batch]
                answer = client.post("/v1/batch", json={"batch": part})
                with lock:
                    if 200 <= answer.status_code < 300:
                        report.answered += [c["messageId"] for c in part]
                    else:
                        report.refused += len(part)
                if n % 10 == 0:  # a client's retry that lands on the other service
                    again = retry.post("/v1/batch", json={"batch": part})
                    with lock:
                        report.repeated += len(part)
                        report.refused += 0 if 200 <= again.status_code < 300 else len(part)

    threads = [
        threading.Thread(target=run, args=(url, urls[(i + 1) % len(urls)], people[i :: len(urls)]))
        for i, url in enumerate(urls)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - started
    return report


# --- the checks ---------------------------------------------------------------------------------


def message_rows(store: Any, campaign_id: str) -> pd.DataFrame:
    from sqlalchemy import select

    from sendwise.store.schema import message

    m = message.c
    with store.begin() as conn:
        rows = conn.execute(
            select(m.message_key, m.customer_id, m.status, m.attempts, m.reason).where(
                m.campaign_id == campaign_id
            )
        ).all()
    return pd.DataFrame(
        rows, columns=["message_key", "customer_id", "status", "attempts", "reason"]
    )


def intake_counts(store: Any, ids: list[str]) -> Counter[str]:
    """How many times each of ``ids`` is in the store's event log."""
    from sqlalchemy import func, select

    from sendwise.store.schema import intake_event

    out: Counter[str] = Counter()
    with store.begin() as conn:
        for i in range(0, len(ids), 5000):
            part = ids[i : i + 5000]
            rows = conn.execute(
                select(intake_event.c.message_id, func.count())
                .where(intake_event.c.message_id.in_(part))
                .group_by(intake_event.c.message_id)
            ).all()
            out.update(dict(rows))
    return out


def received_by_customer(rows: pd.DataFrame, handler: Counting) -> Counter[str]:
    """Hand-overs the SMTP server saw, by customer id (through the message keys)."""
    by_key = dict(zip(rows["message_key"], rows["customer_id"], strict=True))
    out: Counter[str] = Counter()
    with handler.lock:
        for key, n in handler.keys.items():
            if key in by_key:
                out[by_key[key]] += n
    return out


def publish_version(store: Any, customer_id: str) -> int:
    """A new snapshot version with one profile, switched the way publish switches it."""
    from sendwise.store.records import utcnow

    now = utcnow()
    version = store.snapshots.begin(at=now, as_of=now, data_end=now, meta={})
    store.snapshots.write(
        version,
        "profile",
        [
            dict(
                customer_id=customer_id,
                profile={"customer_id": customer_id},
                scores={},
                segments=[],
                reasons=[],
            )
        ],
    )
    store.snapshots.switch(version, customers=1, at=now)
    return version


def versions_seen(urls: list[str], read_key: str, customer_id: str) -> list[int | None]:
    out: list[int | None] = []
    for url in urls:
        answer = httpx.get(
            f"{url}/v1/profiles/{customer_id}",
            headers={"Authorization": f"Bearer {read_key}"},
            timeout=10,
        )
        out.append(answer.json()["snapshot"]["version"] if answer.status_code == 200 else None)
    return out


def wait_switch(
    urls: list[str], read_key: str, customer_id: str, version: int, seconds: float = 20
) -> float:
    """Seconds until every service answers ``version``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if versions_seen(urls, read_key, customer_id) == [version] * len(urls):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(
        f"services answer {versions_seen(urls, read_key, customer_id)}, "
        f"not {version}, {seconds} s after the switch"
    )


# --- the whole scenario -------------------------------------------------------------------------


@dataclass
class FleetResult:
    """What a fleet run saw, and its figures."""

    campaign_ids: list[str]
    suppressed: set[str]
    shoppers: Shoppers
    campaign: pd.DataFrame
    journey: pd.DataFrame
    campaign_got: Counter[str]
    journey_got: Counter[str]
    intake: IntakeReport
    stored: Counter[str]
    senders: list[dict[str, Any]]
    send_seconds: float
    switch_seconds: float
    journey_seconds: float
    load: list[float]
    logs: str

    def problems(self) -> list[str]:
        """Every way the run fell short of the promise (empty: none)."""
        out = []
        if "Traceback" in self.logs:
            out.append("a process logged a traceback")
        events = sum(map(len, self.shoppers.events()))
        if self.intake.refused or len(self.intake.answered) != events:
            out.append(
                f"{self.intake.refused} events refused, {len(self.intake.answered)} of "
                f"{events} answered"
            )
        missing = len(self.intake.answered) - len(self.stored)
        twice = sum(1 for n in self.stored.values() if n != 1)
        if missing or twice:
            out.append(f"answered events: {missing} not stored, {twice} stored more than once")
        eligible = [c for c in self.campaign_ids if c not in self.suppressed]
        wrong = [c for c in eligible if self.campaign_got[c] != 1]
        if wrong:
            out.append(
                f"{len(wrong)} eligible customers did not get exactly one campaign message "
                f"(e.g. {wrong[0]}: {self.campaign_got[wrong[0]]})"
            )
        if any(self.campaign_got[c] for c in self.suppressed):
            out.append("a suppressed customer got the campaign")
        sent = self.campaign[self.campaign["status"] == "sent"]
        if len(sent) != len(eligible) or set(sent["attempts"]) != {1}:
            out.append(
                f"{len(sent)} campaign messages sent of {len(eligible)}, claimed "
                f"{sorted(set(sent['attempts']))} times"
            )
        if dict(self.journey_got) != dict.fromkeys(self.shoppers.carts, 1):
            extra = set(self.journey_got) - set(self.shoppers.carts)
            short = [c for c in self.shoppers.carts if self.journey_got[c] != 1]
            out.append(
                f"journey: {len(short)} abandoned carts without exactly one reminder, "
                f"{len(extra)} reminders to others"
            )
        if not all(s["sent"] > 0 for s in self.senders):
            out.append(f"a sender sent nothing: {self.senders}")
        return out


def run_fleet(
    raw_pg: str,
    folder: Path,
    *,
    messages: int,
    shoppers: int,
    wait_seconds: int,
    campaign_messenger: str = "smtp",
    say: Any = None,
) -> FleetResult:
    """Two services, two journey workers and two campaign senders on a fresh PostgreSQL
    schema; Segment batches through both services while the campaign goes out; a snapshot
    switched at the end. ``campaign_messenger``: "smtp" (the counting server) or "outbox"."""
    from mailservers import free_port
    from sendwise.access import Scope, create_key
    from sendwise.journeys.definition import KnownNames, loads_journey
    from sendwise.journeys.service import save_journey
    from sendwise.store import Store
    from sendwise.store.records import utcnow

    say = say or (lambda _m: None)
    people = Shoppers.make(shoppers)
    campaign_ids = [f"C{i:07d}" for i in range(messages)]
    suppressed = set(campaign_ids[::50]) | set(people.suppressed)
    load: list[float] = []
    with smtp_server() as (port, handler), pg_schema(raw_pg) as (url, _schema):
        settings = write_project(folder, url, port)
        with Store(settings.store_url()) as store:
            at = utcnow()
            started = time.perf_counter()
            plan_campaign(store, campaign_ids, at)
            say(f"campaign of {messages:,} planned in {time.perf_counter() - started:.1f} s")
            with store.begin() as conn:
                for c in sorted(suppressed):
                    store.suppressions.insert(conn, address(c), "bounce", "fleet", c, at)
            known = KnownNames(templates=frozenset({"abandoned-cart.html"}))
            save_journey(store, loads_journey(cart_journey(wait_seconds)), known, at)
            write = create_key(store, "website", Scope.WRITE, at=at)
            read = create_key(store, "reader", Scope.READ, at=at)
            publish_version(store, people.carts[0])
            fleet = Fleet(settings.project)
            try:
                urls = [fleet.serve(f"serve{i}", free_port()) for i in (1, 2)]
                for u in urls:
                    wait_healthy(u)
                for i in (1, 2):
                    fleet.worker(f"worker{i}")
                say("2 services and 2 journey workers up; sending and taking events")
                started = time.perf_counter()
                procs = [fleet.sender(f"sender{i}", campaign_messenger) for i in (1, 2)]
                intake = drive_intake(urls, write, people.events())
                load.append(os.getloadavg()[0])
                while any(p.poll() is None for p in procs):
                    load.append(os.getloadavg()[0])
                    time.sleep(1)
                send_seconds = time.perf_counter() - started
                version = publish_version(store, people.carts[0])
                switch_seconds = wait_switch(urls, read, people.carts[0], version)
                expected = len(people.carts) + len(people.suppressed)
                deadline = time.monotonic() + 60 + wait_seconds
                while time.monotonic() < deadline:
                    rows = message_rows(store, "journey-" + JOURNEY)
                    if len(rows) >= expected and rows["status"].isin(["sent", "skipped"]).all():
                        break
                    time.sleep(0.5)
                journey_seconds = time.perf_counter() - started
                time.sleep(2)  # a few ticks more: nothing else may come
            finally:
                fleet.stop()
            campaign = message_rows(store, CAMPAIGN)
            journey = message_rows(store, "journey-" + JOURNEY)
            stored = intake_counts(store, intake.answered)
        if campaign_messenger == "outbox":
            got = outbox_by_customer(settings, campaign)
        else:
            got = received_by_customer(campaign, handler)
        senders = [json.loads(fleet.log(f"sender{i}").strip().splitlines()[-1]) for i in (1, 2)]
        logs = "\n".join(
            fleet.log(f"{k}{i}") for k in ("serve", "worker", "sender") for i in (1, 2)
        )
        return FleetResult(
            campaign_ids,
            suppressed,
            people,
            campaign,
            journey,
            got,
            received_by_customer(journey, handler),
            intake,
            stored,
            senders,
            send_seconds,
            switch_seconds,
            journey_seconds,
            load,
            logs,
        )


def outbox_by_customer(settings: Any, rows: pd.DataFrame) -> Counter[str]:
    """Customers whose message is in the file outbox (a file per key: a repeat hand-over is
    seen in the claim count, ``attempts``, not here)."""
    folder = settings.path(str(settings.delivery.outbox))
    keys = {p.name.removesuffix(".eml") for p in Path(folder).glob("*.eml")}
    return Counter(
        c for k, c in zip(rows["message_key"], rows["customer_id"], strict=True) if k in keys
    )


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
