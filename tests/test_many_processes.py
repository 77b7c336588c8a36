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

import pytest

import fleet_run as fr
import fleet_support as fs
from sendwise.delivery.policy import SendPolicy
from sendwise.store import Store
from sendwise.store.records import utcnow

PG = os.environ.get("SENDWISE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not PG, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)"
)


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
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url],
                env=fs.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(6)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        errors = [
            err.decode()[-400:]
            for p, (_out, err) in zip(procs, results, strict=True)
            if p.returncode != 0
        ]
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
            recovered = b.messages.claim_due(
                policy, campaign_id=fs.CAMPAIGN, now=utcnow(), limit=100
            )
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
            reports = [json.loads(fleet.log(f"sender{i}").strip().splitlines()[-1]) for i in (1, 2)]
            rows = fr.message_rows(store, fs.CAMPAIGN)
        assert all(r["sent"] > 0 for r in reports), reports
        assert sum(r["sent"] for r in reports) == n
        assert set(rows["status"]) == {"sent"} and set(rows["attempts"]) == {1}
        got = fr.received_by_customer(rows, handler)
        assert len(got) == n and set(got.values()) == {1}


def test_a_fleet_on_one_store(tmp_path: Path) -> None:
    """Two services, two journey workers and two campaign senders on one PostgreSQL store,
    Segment batches through both services while a 5,000-message campaign goes out: every
    eligible customer gets exactly one campaign message, each customer who left a cart one
    reminder (those who ordered, only looked, or are suppressed none), every answered event
    is stored once, and a new snapshot is answered by both services."""
    assert PG is not None
    run = fr.run_fleet(PG, tmp_path / "shop", messages=5000, shoppers=240, wait_seconds=8)
    assert run.problems() == []
    # the same, spelled out on the ground truth
    eligible = [c for c in run.campaign_ids if c not in run.suppressed]
    assert {c: run.campaign_got[c] for c in eligible} == dict.fromkeys(eligible, 1)
    assert not any(run.campaign_got[c] for c in run.suppressed)
    assert len(run.stored) == len(run.intake.answered) == sum(map(len, run.shoppers.events()))
    assert dict(run.journey_got) == dict.fromkeys(run.shoppers.carts, 1)
    by = run.journey.set_index("customer_id")["status"]
    assert (by.loc[run.shoppers.carts] == "sent").all()
    assert (by.loc[run.shoppers.suppressed] == "skipped").all()
    assert not set(by.index) & set(run.shoppers.buyers + run.shoppers.browsers)
    assert run.switch_seconds < 5  # the services re-read the version pointer every 0.5 s


def test_a_run_that_fails_lets_go_of_its_lock() -> None:
    """A send that raises inside its run leaves no lock behind in the connection pool: the next
    run (another process) finds itself alone and recovers what the failed one had claimed."""
    assert PG is not None
    with fs.pg_schema(PG) as (url, _schema), Store(url) as a, Store(url) as b:
        fs.plan_campaign(a, [f"C{i:04d}" for i in range(5)], utcnow())
        with pytest.raises(RuntimeError), a.messages.sending_run(fs.CAMPAIGN):
            a.messages.claim_due(SendPolicy(), campaign_id=fs.CAMPAIGN, now=utcnow(), limit=5)
            raise RuntimeError("the messenger broke")
        with b.messages.sending_run(fs.CAMPAIGN) as alone:
            assert alone is True
            claim = b.messages.claim_due(
                SendPolicy(), campaign_id=fs.CAMPAIGN, now=utcnow(), limit=10
            )
        assert len(claim.ready) == 5
