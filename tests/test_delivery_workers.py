"""Sending a campaign from several processes: the shards are disjoint and cover every message,
parallel sends write what a single process writes, a killed parallel send leaves no process
behind and resumes (with any number of workers) without losing or doubling a message."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_support import (
    TWO_VARIANTS,
    GreetingRenderer,
    event_counts,
    seed_campaign,
    status_counts,
)
from content_shop import build_shop
from crash_support import kill_and_resume, sender_script
from keys_support import KEY
from mailservers import start_smtp
from sendwise.campaigns import create_campaign, parse_definition, send_campaign
from sendwise.campaigns.rendering import BasicRenderer, make_renderer
from sendwise.campaigns.workers import PARALLEL_FROM, send_in_workers, worker_count
from sendwise.config import DeliverySettings, SmtpSettings, init_project, load_settings
from sendwise.delivery import make_messenger
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.shards import HEX, Shard
from sendwise.delivery.smtp import SmtpMessenger
from sendwise.errors import ConfigError, DeliveryError
from sendwise.store import Store, open_store
from sendwise.warehouse.connection import Warehouse

LATER = datetime(2024, 6, 1, 11)


# ---- shards -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.text(HEX, min_size=24, max_size=24), min_size=1, max_size=50, unique=True),
    n=st.integers(1, 16),
)
def test_the_shards_of_any_count_cover_every_key_once(keys: list[str], n: int) -> None:
    shards = [Shard(i, n) for i in range(n)]
    for key in keys:
        assert sum(s.owns(key) for s in shards) == 1
    assert sorted(d for s in shards for d in s.digits) == sorted(HEX)


def test_the_store_claims_exactly_what_a_shard_owns(store: Store) -> None:
    for n in (2, 3, 7):
        definition = {**TWO_VARIANTS, "name": f"shards {n}"}
        cid = seed_campaign(store, 400, definition=definition)
        due = set(store.messages.plan_frame(cid).query("status == 'pending'")["message_key"])
        parts = []
        for i in range(n):
            shard = Shard(i, n)
            claim = store.messages.claim_due(
                SendPolicy(), campaign_id=cid, now=datetime(2024, 6, 2), limit=10_000, shard=shard
            )
            got = {m.message_key for m in claim.ready}
            assert got == {k for k in due if shard.owns(k)}
            parts.append(got)
        assert set().union(*parts) == due and sum(map(len, parts)) == len(due)
        assert min(map(len, parts)) > len(due) / n * 0.6  # roughly even


def test_a_bad_shard_is_refused() -> None:
    with pytest.raises(ConfigError, match="at most 16 shards"):
        Shard(0, 17)
    with pytest.raises(ConfigError):
        Shard(2, 2)


def test_worker_count() -> None:
    basic = BasicRenderer({})
    assert worker_count(None, PARALLEL_FROM - 1, basic) == 1
    assert worker_count(None, PARALLEL_FROM, basic) == min(os.cpu_count() or 1, 8)
    assert worker_count(3, 10, basic) == 3
    assert worker_count(3, 2, basic) == 2  # never more workers than messages
    assert worker_count(40, 1000, basic) == 16


def test_an_in_memory_warehouse_is_sent_from_one_process(tmp_path: Path) -> None:
    init_project(tmp_path)
    settings = load_settings(tmp_path, warehouse={"url": "duckdb://:memory:"})
    with Warehouse.from_settings(settings) as wh:
        assert not wh.shareable
        assert worker_count(4, 10_000, make_renderer(settings, wh)) == 1


# ---- a real shop, two processes --------------------------------------------------------

CAMPAIGN = {
    "name": "Parallel news",
    "audience": {"rule": "email is not null"},
    "holdout": 10,
    "quiet_hours": False,
    "variants": [
        {"name": "A", "template": "newsletter.html", "share": 45},
        {"name": "B", "template": "win-back.html", "share": 45},
    ],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("workers-shop")
    _, wh, _ = build_shop(folder, customers=600, seed=11, days=150)
    wh.close()
    return folder


def _send(shop: Path, folder: Path, workers: int) -> tuple[dict[str, bytes], Counter, object]:
    folder.mkdir()
    settings = load_settings(
        shop,
        store={"url": f"sqlite:///{folder / 'store.sqlite'}"},
        delivery={"outbox": str(folder / "outbox"), "batch_size": 50},
    )
    defn = parse_definition(CAMPAIGN)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        create_campaign(store, wh, settings, defn, renderer)
        report = send_campaign(
            store, wh, settings, defn.name, renderer, make_messenger(settings), workers=workers
        )
        statuses = status_counts(store, defn.campaign_id)
        assert event_counts(store)["send"] == report.sent
        # the warehouse the parent closed for the workers is open again
        assert wh.table("profile").count().execute() == 600
    files = {p.stem: p.read_bytes() for p in (folder / "outbox").glob("*.eml")}
    return files, statuses, report


def _body(raw: bytes) -> tuple[str, str, str, str]:
    msg = email.message_from_bytes(raw)
    parts = {p.get_content_type(): p.get_payload(decode=True) for p in msg.walk()}
    return (
        str(msg["To"]),
        str(msg["X-Sendwise-Variant"]),
        parts["text/plain"].decode(),
        parts["text/html"].decode(),
    )


def test_two_processes_send_what_one_sends(shop: Path, tmp_path: Path) -> None:
    one, one_status, _ = _send(shop, tmp_path / "one", workers=1)
    two, two_status, two_report = _send(shop, tmp_path / "two", workers=2)
    assert one_status == two_status and two_status["sent"] == two_report.sent == len(two) > 400
    assert two_report.failed == 0
    assert set(one) == set(two)  # the same message keys: every eligible customer, once
    for key in one:  # and the same messages (only the Date header may differ)
        assert _body(one[key]) == _body(two[key])
    assert {v for _, v, _, _ in map(_body, two.values())} == {"A", "B"}


# ---- a killed parallel send -----------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parallel sends fork (Linux)")
def test_a_killed_parallel_send_resumes_without_losing_or_doubling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    outbox = tmp_path / "outbox"
    with Store(url) as store:
        cid = seed_campaign(store, 20_000)
        eligible = status_counts(store, cid)["pending"]

    def script(killing: bool) -> str:  # two workers until the last run, then one process
        workers = 2 if killing else 1
        return sender_script(
            kind="outbox", target=str(outbox), url=url, cid=cid, batch=250, workers=workers
        )

    def progress() -> int:
        return len(os.listdir(outbox)) if outbox.exists() else 0

    killed = kill_and_resume(script, progress, seed=5, kills=3, log=tmp_path / "err", max_wait=0.5)
    assert killed == 3
    files = sorted(p.stem for p in outbox.glob("*.eml"))
    assert len(files) == eligible
    with Store(url) as store:
        assert status_counts(store, cid) == Counter(sent=eligible, holdout=20_000 - eligible)
        assert event_counts(store) == Counter(send=eligible)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parallel sends fork (Linux)")
def test_the_journals_of_killed_workers_keep_smtp_repeats_per_connection(tmp_path: Path) -> None:
    """Each worker journals what the server accepted; a resume with another number of workers
    reads every worker's journal, so the repeats stay within one per open connection."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = start_smtp()
    journal = tmp_path / "journal" / "campaign.keys"
    try:
        with Store(url) as store:
            cid = seed_campaign(store, 3000)
            eligible = status_counts(store, cid)["pending"]

        def script(killing: bool) -> str:
            return sender_script(
                kind="smtp",
                target=server.port,
                url=url,
                cid=cid,
                batch=100,
                journal=journal,
                workers=2 if killing else 1,
            )

        killed = kill_and_resume(
            script,
            lambda: len(server.recorder.messages),
            seed=9,
            kills=2,
            log=tmp_path / "err",
            max_wait=0.5,
        )
        received = [m["Message-ID"] for m in server.recorder.parsed()]
    finally:
        server.stop()
    counts = Counter(received)
    assert len(counts) == eligible  # nobody skipped
    repeats = sum(counts.values()) - len(counts)
    assert repeats <= killed * 4  # 4 connections in all, split between the workers
    with Store(url) as store:
        assert status_counts(store, cid)["sent"] == eligible
        assert event_counts(store)["send"] == eligible


def test_a_worker_that_cannot_send_stops_the_send_and_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = start_smtp(tmp_path, tls=True, login=("mailer", "right-password-1"))
    try:
        with Store(url) as store:
            cid = seed_campaign(store, 600)
            eligible = status_counts(store, cid)["pending"]
            opts = DeliverySettings(signing_key=KEY, batch_size=50)

            def smtp(password: str) -> SmtpMessenger:
                settings = SmtpSettings(
                    host="127.0.0.1",
                    port=server.port,
                    username="mailer",
                    password=password,
                    ca_file=str(server.ca_file),
                    connections=2,
                )
                return SmtpMessenger(settings)

            kwargs = dict(sender=opts.sender, now=LATER, progress=None, journal=None)
            with pytest.raises(DeliveryError, match=r"worker 1/2: SMTP login as 'mailer' refused"):
                send_in_workers(2, store, cid, GreetingRenderer(), smtp("wrong"), opts, **kwargs)
            assert not server.recorder.messages
            assert status_counts(store, cid)["sent"] == 0
            report = send_in_workers(
                2, store, cid, GreetingRenderer(), smtp("right-password-1"), opts, **kwargs
            )
            assert report.sent == eligible and report.workers == 2
            assert status_counts(store, cid)["sent"] == eligible
    finally:
        server.stop()
    assert len({m["To"] for m in server.recorder.parsed()}) == eligible


def test_outbox_messengers_split_nothing_and_smtp_splits_its_connections(tmp_path: Path) -> None:
    from sendwise.campaigns.workers import _share

    smtp = SmtpMessenger(SmtpSettings(host="127.0.0.1", port=25, connections=5))
    opts = _share(DeliverySettings(rate_per_second=100), smtp, 2)
    assert smtp.concurrency == 3 and opts.rate_per_second == 50
    outbox = OutboxMessenger(tmp_path)
    _share(DeliverySettings(), outbox, 2)
    assert outbox.concurrency == 1


CLI_CAMPAIGN = """
name = "CLI parallel"
holdout = 10
quiet_hours = false
[audience]
rule = "email is not null"
[[variants]]
name = "A"
template = "newsletter.html"
share = 90
"""


def test_campaign_send_with_workers_from_the_cli(shop: Path, tmp_path: Path) -> None:
    definition = tmp_path / "c.toml"
    definition.write_text(CLI_CAMPAIGN, encoding="utf-8")
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "SENDWISE_DELIVERY__OUTBOX": str(tmp_path / "out"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sendwise.cli", *args, "--project", str(shop)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    assert cli("campaign", "create", str(definition)).returncode == 0
    bad = cli("campaign", "send", "CLI parallel", "--workers", "17")
    assert bad.returncode == 2 and "--workers" in bad.stderr and "16" in bad.stderr
    assert not (tmp_path / "out").exists()
    sent = cli("campaign", "send", "CLI parallel", "--workers", "2")
    assert sent.returncode == 0, sent.stderr
    assert "2 sending processes" in sent.stdout
    files = list((tmp_path / "out").glob("*.eml"))
    assert f"sent {len(files):,}, failed 0" in sent.stdout and len(files) > 300
