"""The fleet's scenario (see tests/fleet_support.py for its parts): Segment load through the
services, the checks against the ground truth, and :func:`run_fleet`, which the CI test
(tests/test_many_processes.py) and the acceptance bench (bench/bench_many_processes.py) run."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from fleet_support import (
    CAMPAIGN,
    JOURNEY,
    Counting,
    Fleet,
    address,
    cart_journey,
    pg_schema,
    plan_campaign,
    smtp_server,
    wait_healthy,
    write_project,
)

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
