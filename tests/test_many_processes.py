"""Many processes, one PostgreSQL store (issue 20, point 3): processes migrating an empty store
at once; two senders of one campaign never claiming one message twice, and a dead sender's
messages handed over by the next; and the whole fleet (two services, two journey workers, two
campaign senders, Segment batches through both services) where every eligible customer gets
exactly one message and every answered event is stored once. Skipped without
SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import fleet_support as fs
from mailservers import free_port
from sendwise.access import Scope, create_key
from sendwise.delivery.policy import SendPolicy
from sendwise.journeys.definition import KnownNames, loads_journey
from sendwise.journeys.service import save_journey
from sendwise.store import Store
from sendwise.store.records import utcnow

PG = os.environ.get("SENDWISE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not PG, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")


def test_processes_migrate_an_empty_store_at_once() -> None:
    """Six processes open one empty store at the same moment: each one waits for the one that
    migrates (before the fix, the others failed on tables and types created meanwhile)."""
    assert PG is not None
    with fs.pg_schema(PG) as (url, _schema):
        start = time.time() + 3  # after every interpreter has imported sendwise
        code = (
            "import sys, time; from sendwise.store import Store\n"
            f"time.sleep(max(0, {start} - time.time()))\n"
            "s = Store(sys.argv[1]); print(s.revision()); s.close()\n"
        )
        procs = [subprocess.Popen([sys.executable, "-c", code, url], env=fs.environment(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(6)]  # fmt: skip
        results = [p.communicate(timeout=120) for p in procs]
        errors = [err.decode()[-400:] for p, (_out, err) in zip(procs, results, strict=True)
                  if p.returncode != 0]  # fmt: skip
        assert not errors, errors
        with Store(url, upgrade=False) as store:
            head = store.head()
            assert head is not None and store.revision() == head
        assert {out.decode().strip() for out, _err in results} == {head}


def test_a_live_senders_messages_are_never_claimed_by_another(tmp_path: Path) -> None:
    """Two stores (two sessions, as two processes): while the first sender's run is open, the
    second claims only pending messages, never the first's in flight; once the first is gone
    (its run's connection closed, as when its process dies), the next run finds itself alone
    and hands the dead sender's messages over again."""
    assert PG is not None
    with fs.pg_schema(PG) as (url, _schema), Store(url) as a, Store(url) as b:
        fs.plan_campaign(a, [f"C{i:04d}" for i in range(30)], utcnow())
        policy = SendPolicy()
        run_a = a.messages.sending_run(fs.CAMPAIGN)
        assert run_a.__enter__() is True
        first = a.messages.claim_due(policy, campaign_id=fs.CAMPAIGN, now=utcnow(), limit=10)
        with b.messages.sending_run(fs.CAMPAIGN) as alone:
            assert alone is False
            rest = b.messages.claim_due(policy, campaign_id=fs.CAMPAIGN, now=utcnow(), limit=100)
            again = b.messages.claim_due(policy, campaign_id=fs.CAMPAIGN, now=utcnow(), limit=100)
            b.messages.record_outcomes(fs.CAMPAIGN, [(r, "sent", "") for r in rest.ready], utcnow())
        mine = {m.message_key for m in first.ready}
        theirs = {m.message_key for m in rest.ready}
        assert len(mine) == 10 and len(theirs) == 20 and not mine & theirs
        assert again.claimed == 0
        run_a.__exit__(None, None, None)  # the first sender dies with its 10 messages claimed
        with b.messages.sending_run(fs.CAMPAIGN) as alone:
            assert alone is True
            recovered = b.messages.claim_due(policy, campaign_id=fs.CAMPAIGN, now=utcnow(),
                                             limit=100)  # fmt: skip
        assert {m.message_key for m in recovered.ready} == mine


def test_two_senders_share_one_campaign_without_overlap(tmp_path: Path) -> None:
    """Two processes deliver one 3,000-message campaign at once through the claim path: the
    SMTP server gets every message exactly once, and both processes sent part of it."""
    assert PG is not None
    n = 3000
    with fs.smtp_server() as (port, handler), fs.pg_schema(PG) as (url, _schema):
        settings = fs.write_project(tmp_path / "shop", url, port)
        with Store(settings.store_url()) as store:
            fs.plan_campaign(store, [f"C{i:05d}" for i in range(n)], utcnow())
            fleet = fs.Fleet(settings.project)
            try:
                procs = [fleet.sender(f"sender{i}", "smtp") for i in (1, 2)]
                for p in procs:
                    p.wait(timeout=300)
            finally:
                fleet.stop()
            reports = [json.loads(fleet.log(f"sender{i}").strip().splitlines()[-1])
                       for i in (1, 2)]  # fmt: skip
            rows = fs.message_rows(store, fs.CAMPAIGN)
        assert all(r["sent"] > 0 for r in reports), reports
        assert sum(r["sent"] for r in reports) == n
        assert set(rows["status"]) == {"sent"} and set(rows["attempts"]) == {1}
        got = fs.received_by_customer(rows, handler)
        assert len(got) == n and set(got.values()) == {1}


def test_a_fleet_on_one_store(tmp_path: Path) -> None:
    """Two services, two journey workers and two campaign senders on one PostgreSQL store,
    Segment batches through both services while a 5,000-message campaign goes out: every
    eligible customer gets exactly one campaign message, each customer who left a cart one
    reminder (those who ordered, only looked, or are suppressed none), every answered event
    is stored once, and a new snapshot is answered by both services."""
    assert PG is not None
    n, shoppers = 5000, fs.Shoppers.make(240)
    campaign_ids = [f"C{i:05d}" for i in range(n)]
    suppressed = set(campaign_ids[::50]) | set(shoppers.suppressed)
    with fs.smtp_server() as (port, handler), fs.pg_schema(PG) as (url, _schema):
        settings = fs.write_project(tmp_path / "shop", url, port)
        with Store(settings.store_url()) as store:
            at = utcnow()
            fs.plan_campaign(store, campaign_ids, at)
            with store.begin() as conn:
                for c in sorted(suppressed):
                    store.suppressions.insert(conn, fs.address(c), "bounce", "test", c, at)
            known = KnownNames(templates=frozenset({"abandoned-cart.html"}))
            save_journey(store, loads_journey(fs.cart_journey(8)), known, at)
            write = create_key(store, "website", Scope.WRITE, at=at)
            read = create_key(store, "reader", Scope.READ, at=at)
            fs.publish_version(store, "J000000")
            fleet = fs.Fleet(settings.project)
            try:
                urls = [fleet.serve(f"serve{i}", free_port()) for i in (1, 2)]
                for u in urls:
                    fs.wait_healthy(u)
                for i in (1, 2):
                    fleet.worker(f"worker{i}")
                senders = [fleet.sender(f"sender{i}", "smtp") for i in (1, 2)]
                intake = fs.drive_intake(urls, write, shoppers.events())
                for p in senders:
                    p.wait(timeout=600)
                version = fs.publish_version(store, "J000000")
                fs.wait_switch(urls, read, "J000000", version)
                journey_rows = lambda: fs.message_rows(store, "journey-" + fs.JOURNEY)  # noqa: E731
                expected = len(shoppers.carts) + len(shoppers.suppressed)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and (
                    len(journey_rows()) < expected or not journey_rows()["status"].isin(
                        ["sent", "skipped"]).all()):  # fmt: skip
                    time.sleep(0.5)
                time.sleep(2)  # a few ticks more: nothing else may come
            finally:
                fleet.stop()
            campaign = fs.message_rows(store, fs.CAMPAIGN)
            journey = journey_rows()
            stored = fs.intake_counts(store, intake.answered)
        logs = "\n".join(fleet.log(f"{k}{i}")[-1500:] for k in ("serve", "worker") for i in (1, 2))
        assert "Traceback" not in logs, logs
        # every answered event once; none refused
        assert intake.refused == 0 and len(intake.answered) == sum(map(len, shoppers.events()))
        assert len(stored) == len(intake.answered) and set(stored.values()) == {1}
        # the campaign: one message to each eligible customer, none to the suppressed
        got = fs.received_by_customer(campaign, handler)
        eligible = [c for c in campaign_ids if c not in suppressed]
        assert {c: got[c] for c in eligible} == dict.fromkeys(eligible, 1)
        assert not any(got[c] for c in suppressed)
        assert (campaign.set_index("customer_id")["status"].loc[sorted(suppressed & set(
            campaign_ids))] == "skipped").all()  # fmt: skip
        assert set(campaign.loc[campaign["status"] == "sent", "attempts"]) == {1}
        # the journey: one reminder to each who left a cart, none to anyone else
        got = fs.received_by_customer(journey, handler)
        assert dict(got) == dict.fromkeys(shoppers.carts, 1), dict(got)
        by = journey.set_index("customer_id")["status"]
        assert (by.loc[shoppers.carts] == "sent").all()
        assert (by.loc[shoppers.suppressed] == "skipped").all()
        assert not set(by.index) & set(shoppers.buyers + shoppers.browsers)
