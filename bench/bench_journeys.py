"""Journey engine speed on the project store (SQLite by default; PostgreSQL by
SENDWISE_STORE__URL): three figures, each printed with what it counted.

1. Triggers: intake events evaluated against the journeys' triggers per second
   (``JourneyEngine.poll_events``: read the log after the watermark, match every journey's
   trigger and goal, enter the customers, move the watermark). Target (issue 16): 5,000/s.
2. Due steps to the outbox: customers whose send step is due, run (``run_due``: claim under a
   lease, the step, the message row, the state written back) and delivered through the send
   pipeline with the live renderer into the file outbox (``deliver_due``). Target: 2,000/s.
3. Intake with customers waiting: Segment events appended to the intake log (batches of 100,
   as ``/v1/batch`` writes them) for ``--seconds`` while a journey worker ticks in a thread,
   first with no journey state, then with ``--waiting`` customers waiting (timers days away).
   Target: no slowdown with 1,000,000 waiting.

    python bench/bench_journeys.py [--events 20000] [--due 5000] [--waiting 1000000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from sendwise.config import init_project, load_settings
from sendwise.delivery import outbox as outbox_module
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.journeys.definition import KnownNames, loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.render import LiveRenderer
from sendwise.journeys.service import save_journey
from sendwise.journeys.steps import digest
from sendwise.journeys.worker import JourneyWorker
from sendwise.serving.service import Serving
from sendwise.store import open_store
from sendwise.store.journeys import JourneyState
from sendwise.store.records import utcnow

KNOWN = KnownNames(templates=frozenset({"abandoned-cart.html"}))
CART = """
name = "cart"
[trigger]
event = "Product Added"
where = "properties.price > 10"
[goal]
event = "Order Completed"
[[steps]]
id = "wait"
wait = "1h"
[[steps]]
id = "reminder"
send = "abandoned-cart.html"
"""
NOW_SEND = """
name = "now"
[trigger]
event = "Signed Up"
[[steps]]
id = "hello"
send = "abandoned-cart.html"
"""


def events(n: int, run: str, start: int = 0) -> list[dict]:
    """A realistic mix: views, carts (half above the where filter), orders, identifies."""
    now = utcnow()
    kinds = ["Product Viewed", "Product Viewed", "Product Added", "Order Completed", "Page"]
    out = []
    for i in range(start, start + n):
        kind = kinds[i % len(kinds)]
        out.append(dict(message_id=f"{run}-{i}", type="track", event=kind, user_id=f"c{i % 50_000}",
                        anonymous_id=None, customer_id=f"c{i % 50_000}", occurred_at=now,
                        received_at=now, sent_at=None,
                        properties={"product_id": f"p{i % 300}", "price": 5 + i % 20},
                        traits={}, context={}, source="bench"))  # fmt: skip
    return out


def project(tmp: Path) -> tuple:
    folder = tmp / "shop"
    init_project(folder)
    toml = (folder / "sendwise.toml").read_text()
    (folder / "sendwise.toml").write_text(
        toml.replace('consent = "opt_in"', 'consent = "opt_out"\nquiet_start = 8\nquiet_end = 8')
    )
    settings = load_settings(folder)
    return settings, open_store(settings)


def bench_triggers(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, store = project(Path(tmp))
        save_journey(store, loads_journey(CART), KNOWN, utcnow())
        store.intake.append(events(n, "t"))
        engine = JourneyEngine(store, settings)
        started = time.perf_counter()
        read = engine.poll_events(page=5000, max_pages=10_000)
        seconds = time.perf_counter() - started
        entered = len(store.journeys.states("cart"))
        print(f"triggers: {read:,} events in {seconds:.2f} s = {read / seconds:,.0f} events/s "
              f"({entered:,} customers entered)")  # fmt: skip
        store.close()


def disk_cost(folder: Path, n: int, data: bytes) -> tuple[float, float]:
    """The disk alone: wall and CPU seconds per 1,000 files of ``data`` created (as the outbox
    creates them: open with O_CREAT|O_EXCL, one write, close) in a new ``folder``."""
    folder.mkdir()
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fd = os.open(folder / f"{i}.eml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    return (time.perf_counter() - began) * 1000 / n, (time.process_time() - cpu) * 1000 / n


class TimedWrites:
    """The CPU the file outbox spends creating and writing its files (``outbox._write``, the
    open, write and close of each message), measured while it is in use."""

    def __enter__(self) -> TimedWrites:
        self.cpu, self.wrapped = 0.0, outbox_module._write

        def timed(*args: object) -> None:
            began = time.process_time()
            try:
                self.wrapped(*args)  # type: ignore[arg-type]
            finally:
                self.cpu += time.process_time() - began

        outbox_module._write = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        outbox_module._write = self.wrapped  # type: ignore[assignment]


def publish(store: object, n: int, at: datetime) -> None:
    """A published snapshot holding the ``n`` customers (address, time zone, scores)."""
    snaps = store.snapshots  # type: ignore[attr-defined]
    version = snaps.begin(at=at, as_of=at, data_end=at, meta={})
    snaps.write(version, "profile", [
        {"customer_id": f"c{i}", "profile": {"email": f"c{i}@example.com",
         "timezone": "Europe/Paris", "first_name": f"C{i}"},
         "scores": {"p_purchase": (i % 100) / 100}, "segments": [], "reasons": []}
        for i in range(n)])  # fmt: skip
    snaps.switch(version, customers=n, at=at)


def bench_due(n: int, published: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, store = project(Path(tmp))
        save_journey(store, loads_journey(NOW_SEND), KNOWN, utcnow())
        now = utcnow()
        if published:
            publish(store, n, now - timedelta(hours=1))
        store.intake.append(
            [dict(message_id=f"i-{i}", type="identify", event=None, user_id=f"c{i}",
                  anonymous_id=None, customer_id=f"c{i}", occurred_at=now, received_at=now,
                  sent_at=None, properties={}, traits={"email": f"c{i}@example.com"},
                  context={}, source="bench") for i in range(n)]
            + [dict(message_id=f"s-{i}", type="track", event="Signed Up", user_id=f"c{i}",
                    anonymous_id=None, customer_id=f"c{i}", occurred_at=now, received_at=now,
                    sent_at=None, properties={}, traits={}, context={}, source="bench")
               for i in range(n)]
        )  # fmt: skip
        serving = Serving(store, settings)
        engine = JourneyEngine(store, settings, serving)
        engine.poll_events(page=5000, max_pages=10_000)
        sample = b"x" * 5_400  # the size of one message of the starter template
        before = disk_cost(Path(tmp) / "before", min(n, 5000), sample)
        load = os.getloadavg()[0]
        started, cpu = time.perf_counter(), time.process_time()
        steps = 0
        while k := engine.run_due(limit=1000):
            steps += k
        ran, ran_cpu = time.perf_counter() - started, time.process_time() - cpu
        outbox = Path(tmp) / "outbox"
        with TimedWrites() as writes:
            sent = engine.deliver_due(
                LiveRenderer(settings, serving, profiles=engine.profiles), OutboxMessenger(outbox)
            )
        total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        end_load = os.getloadavg()[0]
        files = len(list(outbox.glob("*.eml")))
        after = disk_cost(Path(tmp) / "after", min(n, 5000), sample)
        per = 1000 / max(sent, 1)
        print(f"due steps: {steps:,} run in {ran:.2f} s ({ran_cpu:.2f} s CPU) = "
              f"{steps / ran:,.0f} steps/s; {sent:,} sent ({files:,} files) in {total:.2f} s "
              f"({total_cpu:.2f} s CPU) with the run = {sent / total:,.0f} due steps to the "
              f"outbox/s, {sent / total_cpu:,.0f} per CPU second\n"
              f"  per 1,000 steps: {total * per:.3f} s wall, {total_cpu * per:.3f} s CPU "
              f"(run {ran_cpu * per:.3f}, deliver {(total_cpu - ran_cpu) * per:.3f}, of which "
              f"the outbox's file writes {writes.cpu * per:.3f}; all but those "
              f"{(total_cpu - writes.cpu) * per:.3f}); load average "
              f"{load:.2f} at the start, {end_load:.2f} at the end\n"
              f"  the disk alone, per 1,000 files created: {before[0]:.3f} s wall, "
              f"{before[1]:.3f} s CPU before the run; {after[0]:.3f} s wall, {after[1]:.3f} s "
              f"CPU after it")  # fmt: skip
        store.close()


def fill_waiting(store: object, n: int) -> None:
    now = utcnow()
    chunk = 20_000
    for start in range(0, n, chunk):
        rows = [JourneyState(state_id=digest("cart", f"w{i}", 1), journey="cart", version=1,
                             customer_id=f"w{i}", entry=1, entry_key=f"cart:w{i}", step="wait",
                             seq=1, status="waiting", due_at=now + timedelta(days=1 + i % 5),
                             entered_at=now, updated_at=now)
                for i in range(start, min(start + chunk, n))]  # fmt: skip
        store.journeys.enter(rows)  # type: ignore[attr-defined]


def intake_rate(store: object, settings: object, seconds: float, worker: bool) -> tuple[float, int]:
    """Events/s appended to the intake log (batches of 100) for ``seconds``, with a journey
    worker ticking in a thread (sharing the process, as ``sendwise serve`` embeds it) or not;
    and how far the worker got."""
    stop = threading.Event()
    thread = None
    if worker:
        runner = JourneyWorker(store, settings, messenger=OutboxMessenger(Path(tempfile.mkdtemp())))
        thread = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
        thread.start()
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        store.intake.append(events(100, "run", sent))  # type: ignore[attr-defined]
        sent += 100
    took = time.perf_counter() - started
    stop.set()
    if thread is not None:
        thread.join(120)
    return sent / took, store.watermarks.get("journeys")  # type: ignore[attr-defined]


def bench_intake(waiting: int, seconds: float) -> None:
    """The same event stream into three fresh stores: no worker; a worker and no one waiting;
    a worker and ``waiting`` customers waiting."""
    figures = []
    for label, n, worker in (("no worker", 0, False), ("worker, 0 waiting", 0, True),
                             (f"worker, {waiting:,} waiting", waiting, True)):  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            settings, store = project(Path(tmp))
            save_journey(store, loads_journey(CART), KNOWN, utcnow())
            started = time.perf_counter()
            fill_waiting(store, n)
            filled = time.perf_counter() - started
            rate, mark = intake_rate(store, settings, seconds, worker)
            figures.append(rate)
            extra = f"; {n:,} states written first in {filled:.0f} s" if n else ""
            print(f"intake, {label}: {rate:,.0f} events/s (worker read {mark:,}){extra}")
            store.close()
    print(f"intake with {waiting:,} waiting against none: {figures[2] / figures[1]:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--due", type=int, default=5_000)
    parser.add_argument("--waiting", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=["triggers", "due", "intake"], default=None)
    parser.add_argument("--published", action="store_true",
                        help="due steps: customers in a published snapshot (live profiles read "
                        "from it), not known from their identify calls only")  # fmt: skip
    args = parser.parse_args()
    print(f"store: {os.environ.get('SENDWISE_STORE__URL', 'SQLite (project default)')}")
    if args.only in (None, "triggers"):
        bench_triggers(args.events)
    if args.only in (None, "due"):
        bench_due(args.due, args.published)
    if args.only in (None, "intake"):
        bench_intake(args.waiting, args.seconds)


if __name__ == "__main__":
    main()
