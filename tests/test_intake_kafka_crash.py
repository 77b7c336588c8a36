"""Issue 20's acceptance for streaming intake, on Kafka (at 20,000 events; the bench runs
1,000,000): a real `sendwise intake consume --kafka` process is killed with SIGKILL halfway
through a topic, holding records it had not committed; another member of the group gets its
partitions once the group's session timeout has passed. Every event is in the event log
exactly once, and after `sendwise sync` in the warehouse exactly once (counted by messageId),
on SQLite and on PostgreSQL. The broker: tests/kafka_support.py."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafka_support import start_kafka
from sendwise.config import init_project, load_settings
from sendwise.intake.streams.kafka_connect import kafka_producer, produce_events
from sendwise.intake.streams.kafka_status import kafka_status
from test_intake_crash import store_url  # noqa: F401  (the SQLite / PostgreSQL fixture)
from test_intake_streams_crash import (
    EVENTS,
    RESENT,
    calls,
    consumer,
    logged_ids,
    stored_count,
    synced_twice,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and SIGKILL")


@pytest.fixture(scope="module")
def kafka_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_kafka(tmp_path_factory.mktemp("kafka"))


_runs = iter(range(100))


def test_sigkill_halfway_then_another_member_stores_every_event_once(
    tmp_path: Path,
    kafka_url: str,
    store_url: str | None,  # noqa: F811
) -> None:

    run = next(_runs)
    folder = tmp_path / "shop"
    init_project(folder)
    with (folder / "sendwise.toml").open("a") as f:
        f.write(f'\n[streams]\nurl = "{kafka_url}"\nstream = "shop:events{run}"\n')
        f.write(f'group = "g{run}"\nbatch = 500\nblock_ms = 100\nclaim_idle_ms = 3000\n')
        if store_url:
            f.write(f'\n[store]\nurl = "{store_url}"\n')
    settings = load_settings(folder)
    sent = calls(0, EVENTS)
    produce_events(kafka_producer(settings.streams), f"shop.events{run}", sent + sent[:RESENT])

    a = consumer(folder, "a")
    try:
        deadline = time.monotonic() + 120
        while stored_count(settings) < EVENTS // 2:
            assert a.poll() is None, (folder / "a.err").read_text()
            assert time.monotonic() < deadline, "consumer a stored too little in time"
            time.sleep(0.02)
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(30)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
    at_kill = kafka_status(settings.streams)
    stored_at_kill = stored_count(settings)
    assert 0 < at_kill.lag < EVENTS + RESENT, "the kill came before or after the work"

    b = consumer(folder, "b", "--until-idle")
    b.wait(300)
    out = (folder / "b.out").read_text()
    assert b.returncode == 0, (folder / "b.err").read_text()
    words = " ".join(out.split())
    again = int(words.split(" already stored")[0].rsplit(" ", 1)[1].replace(",", ""))

    ids = logged_ids(settings)
    assert len(ids) == len(set(ids)) == EVENTS
    assert set(ids) == {c["messageId"] for c in sent}
    after = kafka_status(settings.streams)
    assert (after.lag, after.dead_letters) == (0, 0)

    per_id = synced_twice(folder, settings)
    print(f"killed with {at_kill.lag} records not committed, {stored_at_kill} events stored; "
          f"b found {again} already stored; warehouse events {sum(per_id.values())} "
          f"({len(per_id)} distinct)")  # fmt: skip
    assert set(per_id) == {c["messageId"] for c in sent}
    assert set(per_id.values()) == {1}
