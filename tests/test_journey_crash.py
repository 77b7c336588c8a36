"""`sendwise worker` processes killed with SIGKILL while 1,000 customers wait in a journey, on
SQLite and PostgreSQL: two workers run together and one is killed in the middle of the first
reminders, the other in the middle of the second ones, each restarted; every customer gets
each due step exactly once - none lost, none doubled - in the outbox, the message table and
the step log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from journey_support import KNOWN
from sendwise.config import load_settings
from sendwise.journeys.definition import loads_journey
from sendwise.journeys.service import save_journey
from sendwise.store import open_store
from sendwise.store.records import utcnow

N = 1000
JOURNEY = """
name = "cart"
[trigger]
event = "Product Added"
[[steps]]
id = "wait_1"
wait = "2s"
[[steps]]
id = "reminder_1"
send = "abandoned-cart.html"
[[steps]]
id = "wait_2"
wait = "3s"
[[steps]]
id = "reminder_2"
send = "abandoned-cart.html"
"""
SRC = Path(__file__).resolve().parents[1] / "src"


def start_worker(folder: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "sendwise.cli", "worker", "--project", str(folder),
             "--interval", "0.2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def outbox_files(folder: Path) -> list[Path]:
    return sorted((folder / "outbox").glob("*.eml")) if (folder / "outbox").is_dir() else []


def wait_for(
    check: Any, seconds: float, what: str, procs: list[subprocess.Popen], log: Path
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if any(p.poll() is not None for p in procs):
            pytest.fail(f"a worker stopped: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {log.read_text()[-2000:]}")
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_toml(request: pytest.FixtureRequest) -> Iterator[str]:
    """The [store] section of the project: its SQLite file, or a fresh PostgreSQL schema
    (dropped afterwards) named in the URL, so that the worker processes use it too."""
    if request.param == "sqlite":
        yield ""
        return
    raw = os.environ.get("SENDWISE_TEST_POSTGRES_URL")
    if not raw:
        pytest.skip("SENDWISE_TEST_POSTGRES_URL is not set")
    schema = f"sw_crash_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://" + raw.split("://", 1)[1])
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = "postgresql://" + raw.split("://", 1)[1]
        yield f'\n[store]\nurl = "{url}?options=-csearch_path%3D{schema}"\n'
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_killed_workers_lose_and_double_nothing(
    make_project: Any, tmp_path: Path, store_toml: str
) -> None:
    settings, _ = make_project()
    folder = settings.project
    toml = (folder / "sendwise.toml").read_text()
    (folder / "sendwise.toml").write_text(
        toml.replace('consent = "opt_in"', 'consent = "opt_out"\nquiet_start = 8\nquiet_end = 8')
        + store_toml
    )
    settings = load_settings(folder)
    log = tmp_path / "worker.log"
    with open_store(settings) as store:
        save_journey(store, loads_journey(JOURNEY), KNOWN, utcnow())
        now = utcnow()
        base = dict(anonymous_id=None, occurred_at=now, received_at=now, sent_at=None,
                    context={}, source="tests")  # fmt: skip
        store.intake.append(
            [dict(base, message_id=f"i-{i}", type="identify", event=None, user_id=f"c{i}",
                  customer_id=f"c{i}", properties={}, traits={"email": f"c{i}@example.com"})
             for i in range(N)]
            + [dict(base, message_id=f"t-{i}", type="track", event="Product Added",
                    user_id=f"c{i}", customer_id=f"c{i}", properties={"product_id": "p"},
                    traits={}) for i in range(N)]
        )  # fmt: skip
        procs = [start_worker(folder, log), start_worker(folder, log)]
        try:
            # two workers; one killed while the first reminders go out, the other while the
            # second ones do; each restarted at once
            wait_for(lambda: len(outbox_files(folder)) > 0, 120, "first reminders", procs, log)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            first_kill = len(outbox_files(folder))
            procs[0] = start_worker(folder, log)
            wait_for(lambda: len(outbox_files(folder)) > N, 120, "second reminders", procs, log)
            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait()
            second_kill = len(outbox_files(folder))
            procs[1] = start_worker(folder, log)

            def finished() -> bool:
                done = sum(n for _, st, *_, n in store.journeys.counts("cart") if st == "done")
                return store.messages.count("journey-cart", ["sent"]) == 2 * N and done == N

            wait_for(finished, 180, "every reminder", procs, log)
            time.sleep(1.0)  # a few more ticks: nothing more may happen
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
        print(f"outbox at the kills: {first_kill}, {second_kill}")
        assert first_kill > 0 and N < second_kill <= 2 * N
        frame = store.messages.plan_frame("journey-cart")
        assert len(frame) == 2 * N and set(frame["status"]) == {"sent"}
        per_customer = Counter(zip(frame["customer_id"], frame["variant"], strict=True))
        assert set(per_customer.values()) == {1}
        assert set(Counter(frame["customer_id"]).values()) == {2}
        files = outbox_files(folder)
        assert sorted(p.stem for p in files) == sorted(frame["message_key"])
        log_rows = store.journeys.step_log("cart")
        steps = Counter((r["customer_id"], r["step"]) for r in log_rows)
        assert len(steps) == 4 * N and set(steps.values()) == {1}
        sends = store.events.rows(type="send", campaign_id="journey-cart")
        assert len(sends) == 2 * N
