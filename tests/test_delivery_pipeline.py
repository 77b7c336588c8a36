"""The send pipeline: every outcome recorded, retries and permanent failures, rate limits, and
a real process killed (SIGKILL) mid-send and rerun until done: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from campaign_support import GreetingRenderer, event_counts, seed_campaign, status_counts
from crash_support import kill_and_resume, sender_script
from keys_support import KEY
from mailservers import SendgridServer, start_smtp
from sendwise.config import DeliverySettings, SendgridSettings
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.delivery.sendgrid import SendgridMessenger
from sendwise.store import Store
from sendwise.store.schema import message

LATER = datetime(2024, 6, 1, 11)


def test_every_message_is_sent_once_and_each_outcome_recorded(store: Store, tmp_path) -> None:
    cid = seed_campaign(store, 300)
    plan = status_counts(store, cid)
    outbox = OutboxMessenger(tmp_path / "outbox")
    opts = DeliverySettings(signing_key=KEY, batch_size=64)
    report = deliver(store, cid, GreetingRenderer(), outbox, opts, now=LATER)
    assert report.sent == plan["pending"] and report.failed == 0
    assert status_counts(store, cid) == Counter(sent=plan["pending"], holdout=plan["holdout"])
    assert event_counts(store) == Counter(send=plan["pending"])
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == plan["pending"]
    again = deliver(store, cid, GreetingRenderer(), outbox, opts, now=LATER)
    assert again.sent == 0 and len(list((tmp_path / "outbox").glob("*.eml"))) == len(files)


def test_messages_due_later_wait(store: Store, tmp_path) -> None:
    cid = seed_campaign(store, 50)
    early = deliver(
        store,
        cid,
        GreetingRenderer(),
        OutboxMessenger(tmp_path),
        DeliverySettings(signing_key=KEY),
        now=datetime(2024, 6, 1, 9),
    )
    assert early.sent == 0 and status_counts(store, cid)["pending"] > 0


def test_transient_errors_are_retried_and_permanent_ones_recorded(store: Store) -> None:
    cid = seed_campaign(store, 40, email="c{}@example.com")
    server = SendgridServer("SG.k")
    server.state.rate_limit_first = 3
    server.state.fail_first_5xx = 2
    server.state.reject = {"c000001@example.com", "c000002@example.com"}
    sg = SendgridMessenger(SendgridSettings(api_key=SecretStr("SG.k"), base_url=server.url))
    opts = DeliverySettings(signing_key=KEY, max_attempts=6, backoff_seconds=0.01)
    try:
        report = deliver(store, cid, GreetingRenderer(), sg, opts, now=LATER)
    finally:
        server.stop()
    pending = {b["custom_args"]["message_key"] for b in server.state.accepted}
    rejected = {"c000001@example.com", "c000002@example.com"}
    with store.begin() as conn:
        rows = conn.execute(select(message).where(message.c.status.in_(("sent", "failed")))).all()
    failed = {r.email: r.reason for r in rows if r.status == "failed"}
    assert set(failed) == rejected & {r.email for r in rows}
    assert all("valid address" in why for why in failed.values())
    assert {r.message_key for r in rows if r.status == "sent"} == pending
    assert report.retries >= 5 and report.failed == len(failed)
    assert event_counts(store)["failed"] == len(failed)


def test_one_broken_render_does_not_stop_the_others(store: Store, tmp_path) -> None:
    cid = seed_campaign(
        store, 30, definition={"name": "x", "audience": {"rule": "true"}, "template": "a"}
    )
    renderer = GreetingRenderer(broken={"000003"})
    opts = DeliverySettings(signing_key=KEY)
    report = deliver(store, cid, renderer, OutboxMessenger(tmp_path), opts, now=LATER)
    assert report.sent == 29 and report.failed == 1
    with store.begin() as conn:
        reason = conn.execute(select(message.c.reason).where(message.c.customer_id == "000003"))
        assert reason.scalar_one().startswith("render: ValueError")


def test_the_rate_limit_holds(tmp_path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        cid = seed_campaign(
            store, 120, definition={"name": "x", "audience": {"rule": "true"}, "template": "a"}
        )
        opts = DeliverySettings(signing_key=KEY, rate_per_second=100)
        started = time.perf_counter()
        deliver(store, cid, GreetingRenderer(), OutboxMessenger(tmp_path / "o"), opts, now=LATER)
        # 100 in the first second's burst, then 20 more at 100/s
        assert time.perf_counter() - started >= 0.18


# ---- crash safety ----------------------------------------------------------------------


def test_a_killed_send_resumes_without_losing_or_doubling_a_message(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    outbox = tmp_path / "outbox"
    with Store(url) as store:
        cid = seed_campaign(store, 20_000)
        eligible = status_counts(store, cid)["pending"]
    script = sender_script(kind="outbox", target=str(outbox), url=url, cid=cid, batch=250)

    def progress() -> int:
        return len(os.listdir(outbox)) if outbox.exists() else 0

    killed = kill_and_resume(
        lambda _killing: script, progress, seed=7, kills=4, log=tmp_path / "err", max_wait=0.6
    )
    assert killed == 4
    files = sorted(p.name for p in outbox.glob("*.eml"))
    assert len(files) == eligible  # every eligible customer got exactly one message
    assert not list(outbox.glob(".*.tmp"))
    with Store(url) as store:
        assert status_counts(store, cid) == Counter(sent=eligible, holdout=20_000 - eligible)
        with store.begin() as conn:
            keys = {
                r[0]
                for r in conn.execute(
                    select(message.c.message_key).where(message.c.status == "sent")
                )
            }
        assert {f.removesuffix(".eml") for f in files} == keys
        assert event_counts(store) == Counter(send=eligible)


@pytest.mark.parametrize("with_journal", [True, False])
def test_a_killed_smtp_send_resumes_and_the_journal_prevents_repeats(
    tmp_path, with_journal
) -> None:
    """Nobody is skipped. Without the acceptance journal, the messages of the batch in flight at
    a kill can be sent again; with it, only those whose 250 reply had not yet been read (at most
    one per connection)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = start_smtp()
    batch = 100
    journal = tmp_path / "journal.keys" if with_journal else None
    try:
        with Store(url) as store:
            cid = seed_campaign(store, 3000)
            eligible = status_counts(store, cid)["pending"]
        script = sender_script(
            kind="smtp", target=server.port, url=url, cid=cid, batch=batch, journal=journal
        )
        killed = kill_and_resume(
            lambda _killing: script,
            lambda: len(server.recorder.messages),
            seed=3,
            kills=3,
            log=tmp_path / "err",
            max_wait=0.6,
        )
        received = [m["Message-ID"] for m in server.recorder.parsed()]
    finally:
        server.stop()
    assert killed == 3
    counts = Counter(received)
    assert len(counts) == eligible  # nobody skipped
    repeats = sum(counts.values()) - len(counts)
    print(f"SMTP crash test, journal={with_journal}: {killed} kills, {repeats} repeated")
    assert repeats <= killed * (4 if with_journal else batch)  # 4 connections
    # (and a repeat carries the same Message-ID, so mailbox providers collapse it)
    with Store(url) as store:
        assert status_counts(store, cid)["sent"] == eligible
        assert event_counts(store)["send"] == eligible
