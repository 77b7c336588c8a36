"""Issue 20's acceptance for streaming intake, at 20,000 events (the bench runs 1,000,000): a
producer adds Segment calls to a Redis stream while a real `sendwise intake consume` process
stores them; it is killed with SIGKILL halfway, holding entries it had not acknowledged;
another consumer takes them over (XAUTOCLAIM). Every event is in the event log exactly once,
and after `sendwise sync` in the warehouse exactly once (counted by messageId), on SQLite and
on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from redis_support import start_redis
from sendwise.config import init_project, load_settings
from sendwise.intake.streams import connect, publish_events
from sendwise.store import open_store
from sendwise.store.schema import intake_event
from sendwise.warehouse.connection import Warehouse
from test_intake_crash import store_url  # noqa: F401  (the SQLite / PostgreSQL fixture)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and SIGKILL")

EVENTS = 20_000
RESENT = 1_000
"""Calls the producer sends twice (a retry after a timeout): same messageId, new entry."""
STREAM = "shop:events"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_redis(tmp_path_factory.mktemp("redis"))


def calls(start: int, stop: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(start, stop):
        customer = f"C{i % 3_000}"
        if i % 10 == 0:
            out.append({"type": "identify", "messageId": f"m{i:07d}", "userId": customer,
                        "traits": {"email": f"{customer.lower()}@example.com"},
                        "timestamp": "2026-12-01T09:00:00Z"})  # fmt: skip
        else:
            out.append({"type": "track", "messageId": f"m{i:07d}", "userId": customer,
                        "event": "Product Viewed", "timestamp": "2026-12-01T10:00:00Z",
                        "properties": {"product_id": f"sku{i % 300}", "price": 12.5}})  # fmt: skip
    return out


def consumer(folder: Path, name: str, *extra: str) -> subprocess.Popen:
    """`sendwise intake consume` in its own process group; its output in <folder>/<name>.out
    and .err."""
    cmd = [sys.executable, "-m", "sendwise.cli", "intake", "consume", "-q",
           "--project", str(folder), "--consumer", name, *extra]  # fmt: skip
    with (folder / f"{name}.out").open("w") as out, (folder / f"{name}.err").open("w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)


def stored_count(settings: Any) -> int:
    with open_store(settings) as store, store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(intake_event)).scalar())


def test_sigkill_halfway_then_takeover_stores_every_event_once(
    tmp_path: Path,
    redis_url: str,
    store_url: str | None,  # noqa: F811
) -> None:
    folder = tmp_path / "shop"
    init_project(folder)
    with (folder / "sendwise.toml").open("a") as f:
        f.write(f'\n[streams]\nurl = "{redis_url}"\nstream = "{STREAM}"\n'
                "batch = 500\nblock_ms = 100\nclaim_idle_ms = 1000\n")  # fmt: skip
        if store_url:
            f.write(f'\n[store]\nurl = "{store_url}"\n')
    settings = load_settings(folder)
    redis = connect(redis_url)
    redis.flushall()
    sent = calls(0, EVENTS)
    producer = threading.Thread(
        target=lambda: publish_events(redis, STREAM, sent + sent[:RESENT], chunk=500)
    )
    # the whole stream is there before the consumer starts, so it is never idle waiting for
    # the producer (with nothing pending) at the moment it is killed
    producer.start()
    producer.join(120)
    a = consumer(folder, "a")
    try:
        deadline = time.monotonic() + 120
        while stored_count(settings) < EVENTS // 2:
            assert a.poll() is None, (folder / "a.err").read_text()
            assert time.monotonic() < deadline, "consumer a stored too little in time"
            time.sleep(0.02)
        # frozen first (SIGSTOP), so that what it holds is what it dies holding: between a
        # look and a plain SIGKILL it could acknowledge its batch
        while True:
            os.killpg(a.pid, signal.SIGSTOP)
            if redis.xpending_range(STREAM, "sendwise", "-", "+", 1, consumername="a"):
                break
            os.killpg(a.pid, signal.SIGCONT)
            assert time.monotonic() < deadline, "consumer a never held an entry"
            time.sleep(0.001)
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(30)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
        producer.join(120)
    held = redis.xpending_range(STREAM, "sendwise", "-", "+", 100_000, consumername="a")
    assert held, "the kill left no unacknowledged entry: the takeover would not be tested"

    b = consumer(folder, "b", "--until-idle")
    b.wait(300)
    out = (folder / "b.out").read_text()
    assert b.returncode == 0, (folder / "b.err").read_text()
    taken_over = int(out.split(" taken over")[0].rsplit(",", 1)[1].replace(",", "").strip())
    assert taken_over >= len(held)

    ids = logged_ids(settings)
    assert len(ids) == len(set(ids)) == EVENTS
    assert set(ids) == {c["messageId"] for c in sent}
    assert redis.xpending(STREAM, "sendwise")["pending"] == 0
    assert redis.xlen(f"{STREAM}:dead") == 0

    per_id = synced_twice(folder, settings)
    print(f"killed holding {len(held)} entries; b took over {taken_over}; "
          f"warehouse events {sum(per_id.values())} ({len(per_id)} distinct)")  # fmt: skip
    assert set(per_id) == {c["messageId"] for c in sent}
    assert set(per_id.values()) == {1}
    redis.close()


def logged_ids(settings: Any) -> list[str]:
    """Every messageId of the project's event log, in order."""
    with open_store(settings) as store:
        ids: list[str] = []
        seq = 0
        while rows := store.intake.since(seq, 50_000):
            ids += [r["message_id"] for r in rows]
            seq = int(rows[-1]["seq"])
    return ids


def synced_twice(folder: Path, settings: Any) -> dict[str, int]:
    """`sendwise sync` run twice (the second must add nothing); the warehouse's events per
    messageId."""
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "sendwise.cli", "sync", "--project", str(folder)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    with Warehouse.from_settings(settings) as wh:
        return dict(
            wh.engine.execute("SELECT message_id, count(*) FROM event GROUP BY 1").fetchall()
        )
