"""The send pipeline: every outcome recorded, retries and permanent failures, rate limits, and
a real process killed (SIGKILL) mid-send and rerun until done: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from campaign_support import GreetingRenderer, seed_campaign
from mailservers import SendgridServer, start_smtp
from sendwise.config import DeliverySettings, SendgridSettings
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.delivery.sendgrid import SendgridMessenger
from sendwise.store import Store
from sendwise.store.schema import email_event, message

LATER = datetime(2024, 6, 1, 11)
TESTS = Path(__file__).resolve().parent


def _statuses(store: Store, campaign_id: str) -> Counter:
    with store.begin() as conn:
        rows = conn.execute(
            select(message.c.status, func.count())
            .where(message.c.campaign_id == campaign_id)
            .group_by(message.c.status)
        ).all()
    return Counter(dict(rows))


def _events(store: Store) -> Counter:
    with store.begin() as conn:
        rows = conn.execute(select(email_event.c.type, func.count()).group_by(email_event.c.type))
        return Counter(dict(rows.all()))


def test_every_message_is_sent_once_and_each_outcome_recorded(store: Store, tmp_path) -> None:
    cid = seed_campaign(store, 300)
    plan = _statuses(store, cid)
    outbox = OutboxMessenger(tmp_path / "outbox")
    opts = DeliverySettings(batch_size=64)
    report = deliver(store, cid, GreetingRenderer(), outbox, opts, now=LATER)
    assert report.sent == plan["pending"] and report.failed == 0
    assert _statuses(store, cid) == Counter(sent=plan["pending"], holdout=plan["holdout"])
    assert _events(store) == Counter(send=plan["pending"])
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
        DeliverySettings(),
        now=datetime(2024, 6, 1, 9),
    )
    assert early.sent == 0 and _statuses(store, cid)["pending"] > 0


def test_transient_errors_are_retried_and_permanent_ones_recorded(store: Store) -> None:
    cid = seed_campaign(store, 40, email="c{}@example.com")
    server = SendgridServer("SG.k")
    server.state.rate_limit_first = 3
    server.state.fail_first_5xx = 2
    server.state.reject = {"c000001@example.com", "c000002@example.com"}
    sg = SendgridMessenger(SendgridSettings(api_key=SecretStr("SG.k"), base_url=server.url))
    opts = DeliverySettings(max_attempts=6, backoff_seconds=0.01)
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
    assert _events(store)["failed"] == len(failed)


def test_one_broken_render_does_not_stop_the_others(store: Store, tmp_path) -> None:
    cid = seed_campaign(
        store, 30, definition={"name": "x", "audience": {"rule": "true"}, "template": "a"}
    )
    renderer = GreetingRenderer(broken={"000003"})
    report = deliver(store, cid, renderer, OutboxMessenger(tmp_path), DeliverySettings(), now=LATER)
    assert report.sent == 29 and report.failed == 1
    with store.begin() as conn:
        reason = conn.execute(select(message.c.reason).where(message.c.customer_id == "000003"))
        assert reason.scalar_one().startswith("render: ValueError")


def test_the_rate_limit_holds(tmp_path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        cid = seed_campaign(
            store, 120, definition={"name": "x", "audience": {"rule": "true"}, "template": "a"}
        )
        opts = DeliverySettings(rate_per_second=100)
        started = time.perf_counter()
        deliver(store, cid, GreetingRenderer(), OutboxMessenger(tmp_path / "o"), opts, now=LATER)
        # 100 in the first second's burst, then 20 more at 100/s
        assert time.perf_counter() - started >= 0.18


# ---- crash safety ----------------------------------------------------------------------

SENDER = """
import sys
sys.path.insert(0, {tests!r})
from datetime import datetime
from campaign_support import GreetingRenderer
from sendwise.config import DeliverySettings, SmtpSettings
from sendwise.delivery.pipeline import deliver
from sendwise.store import Store
kind = {kind!r}
if kind == "outbox":
    from sendwise.delivery.outbox import OutboxMessenger
    messenger = OutboxMessenger({target!r})
else:
    from sendwise.delivery.smtp import SmtpMessenger
    messenger = SmtpMessenger(SmtpSettings(host="127.0.0.1", port={target!r}, starttls=False,
                                           connections=4))
store = Store({url!r})
deliver(store, {cid!r}, GreetingRenderer(), messenger, DeliverySettings(batch_size={batch}),
        now=datetime(2024, 6, 1, 11), journal={journal})
"""


def _run_until_done(script: str, progress, *, seed: int, kills: int, log: Path) -> int:
    """Run the sender, kill it (SIGKILL) at a random moment once it is sending, ``kills``
    times, then let a last run finish. Returns how many runs were killed mid-send."""
    rng = random.Random(seed)
    killed = 0
    while True:
        with open(log, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", script], stderr=err)
            if killed < kills:
                before = progress()
                while proc.poll() is None and progress() == before:  # wait until it sends
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.6))
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed += 1
                    continue
            proc.wait(timeout=600)
        assert proc.returncode == 0, log.read_text()[-2000:]
        return killed


def test_a_killed_send_resumes_without_losing_or_doubling_a_message(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    outbox = tmp_path / "outbox"
    with Store(url) as store:
        cid = seed_campaign(store, 20_000)
        eligible = _statuses(store, cid)["pending"]
    script = SENDER.format(
        tests=str(TESTS),
        kind="outbox",
        target=str(outbox),
        url=url,
        cid=cid,
        batch=250,
        journal=None,
    )

    def progress() -> int:
        return len(os.listdir(outbox)) if outbox.exists() else 0

    killed = _run_until_done(script, progress, seed=7, kills=4, log=tmp_path / "err")
    assert killed == 4
    files = sorted(p.name for p in outbox.glob("*.eml"))
    assert len(files) == eligible  # every eligible customer got exactly one message
    assert not list(outbox.glob(".*.tmp"))
    with Store(url) as store:
        assert _statuses(store, cid) == Counter(sent=eligible, holdout=20_000 - eligible)
        with store.begin() as conn:
            keys = {
                r[0]
                for r in conn.execute(
                    select(message.c.message_key).where(message.c.status == "sent")
                )
            }
        assert {f.removesuffix(".eml") for f in files} == keys
        assert _events(store) == Counter(send=eligible)


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
    journal = repr(str(tmp_path / "journal.keys")) if with_journal else None
    try:
        with Store(url) as store:
            cid = seed_campaign(store, 3000)
            eligible = _statuses(store, cid)["pending"]
        script = SENDER.format(
            tests=str(TESTS),
            kind="smtp",
            target=server.port,
            url=url,
            cid=cid,
            batch=batch,
            journal=f"__import__('pathlib').Path({journal})" if journal else None,
        )
        killed = _run_until_done(
            script, lambda: len(server.recorder.messages), seed=3, kills=3, log=tmp_path / "err"
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
        assert _statuses(store, cid)["sent"] == eligible
        assert _events(store)["send"] == eligible
