"""Many processes, one PostgreSQL store (issue 20's acceptance): two `sendwise serve` processes
and two `sendwise worker` processes on one store, a campaign of 100,000 messages sent by two
sender processes through the campaign's claim path (to the file outbox), while Segment batches
(views, cart adds, orders) go through both services and drive an abandoned-cart journey whose
reminders go to a counting SMTP server on loopback. Then a snapshot is switched and both
services must answer it.

Checked, not only timed: every eligible customer has exactly one campaign message (its file in
the outbox, claimed once: ``attempts`` 1) and the suppressed none; each customer who left a cart
exactly one reminder, those who ordered, only looked or are suppressed none; every answered
intake event is in the store exactly once. Exits 1 on any shortfall.

    SENDWISE_TEST_POSTGRES_URL=postgres://user:pass@localhost:5432/db \\
        python bench/bench_many_processes.py [--messages 100000] [--shoppers 4000] [--wait 30]

The store goes into a fresh schema of that database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fleet_run as fr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--shoppers", type=int, default=4000)
    parser.add_argument("--wait", type=int, default=30, help="the journey's wait (seconds)")
    args = parser.parse_args()
    raw = os.environ.get("SENDWISE_TEST_POSTGRES_URL")
    if not raw:
        print("set SENDWISE_TEST_POSTGRES_URL to a PostgreSQL database", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="sendwise-fleet-"))
    started = time.perf_counter()
    try:
        run = fr.run_fleet(
            raw,
            folder / "shop",
            messages=args.messages,
            shoppers=args.shoppers,
            wait_seconds=args.wait,
            campaign_messenger="outbox",
            say=lambda m: print(f"{time.perf_counter() - started:7.1f}s  {m}", flush=True),
        )
        wall = time.perf_counter() - started  # before removing 100,000 outbox files
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sent = sum(s["sent"] for s in run.senders)
    events = len(run.intake.answered)
    busiest = max(s["seconds"] for s in run.senders)
    print(
        f"\ncampaign: {sent:,} messages sent by 2 processes, {sent / busiest:,.0f} messages/s "
        f"together (per process: "
        + ", ".join(f"{s['sent']:,} in {s['seconds']:.1f} s" for s in run.senders)
        + f"); {run.send_seconds:.1f} s from starting the processes to the last recorded"
    )
    print(
        f"intake: {events:,} Segment events answered through 2 services in "
        f"{run.intake.seconds:.1f} s ({events / run.intake.seconds:,.0f} events/s) while sending, "
        f"{run.intake.repeated:,} of them sent again to the other service"
    )
    reminders = sum(run.journey_got.values())
    print(
        f"journey: {reminders:,} abandoned-cart reminders to {len(run.shoppers.carts):,} "
        f"carts left; all done {run.journey_seconds:.1f} s after the start"
    )
    print(f"snapshot switch answered by both services after {run.switch_seconds:.2f} s")
    load = run.load or [0.0]
    print(
        f"load average (1 min) while sending: mean {sum(load) / len(load):.1f}, "
        f"max {max(load):.1f} on {os.cpu_count()} cores; wall time {wall:.0f} s"
    )
    problems = run.problems()
    for p in problems:
        print(f"PROBLEM: {p}")
    print("all checks passed" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
