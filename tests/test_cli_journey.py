"""`sendwise journey ...` as a user meets it: real processes on a real project store (SQLite),
exit codes, one-line errors that store nothing, and the figures the library computes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sendwise.cli.app import app as cli
from sendwise.config import init_project, load_settings
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.results import journey_results
from sendwise.simulate.journeys import SimClock
from sendwise.store import open_store

SENDWISE = [sys.executable, "-m", "sendwise.cli"]
T0 = datetime(2026, 3, 2, 9)


def run(project: Path, *args: str) -> Any:
    """The command in this process (typer's runner: the same app, errors and exit codes)."""
    r = CliRunner().invoke(cli, ["journey", *args, "-p", str(project)], env={"COLUMNS": "200"})
    r.returncode = r.exit_code
    return r


def run_process(project: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: a real process."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*SENDWISE, "journey", *args, "-p", str(project)], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip


def track(i: int, customer: str, event: str, at: datetime, **props) -> dict:
    return {"message_id": f"m{i}", "type": "track", "event": event, "user_id": customer,
            "anonymous_id": None, "customer_id": customer, "occurred_at": at, "received_at": at,
            "sent_at": at, "properties": props, "traits": {"email": f"{customer}@example.com"},
            "context": {}, "source": "test"}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_project(tmp_path / "shop")
    return tmp_path / "shop"


def test_bad_definitions_are_one_line_and_store_nothing(project: Path) -> None:
    good = (project / "journeys" / "abandoned_cart.toml").read_text(encoding="utf-8")
    cases = {
        "template.toml": (good.replace("abandoned-cart.html", "abandoned-crt.html"),
                         "unknown template 'abandoned-crt.html'; did you mean"),
        "event.toml": (good.replace('event = "Product Added"', 'event = "Prodct Added"'),
                       "unknown event 'Prodct Added'"),
        "field.toml": (good.replace('send = "abandoned-cart-last.html"', 'if = "p_purchse > 0.5"'),
                       "unknown field 'p_purchse'"),
        "cycle.toml": (good + '\n[[steps]]\nid = "loop"\nif = "cart_items > 0"\n'
                              'then = "reminder_2"\n', "a cycle without a wait"),
    }  # fmt: skip
    for file, (text, message) in cases.items():
        (project / file).write_text(text, encoding="utf-8")
        r = run(project, "create", str(project / file))
        assert r.returncode == 1, (file, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and message in r.stderr, (file, r.stderr)
        assert "Traceback" not in r.stderr
    (project / "[bold]x.toml").write_text("name = [", encoding="utf-8")
    real = run_process(project, "create", str(project / "[bold]x.toml"))
    assert real.returncode == 1 and "Traceback" not in real.stderr
    assert real.stderr.startswith("error: [bold]x.toml: not valid TOML")  # printed literally
    assert real.stderr.count("\n") == 1
    listed = run(project, "list")
    assert listed.returncode == 0 and "no journey yet" in listed.stdout
    missing = run(project, "status", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no journey named 'nope'"


def test_create_list_pause_resume_status_and_results(project: Path) -> None:
    r = run(project, "create", str(project / "journeys" / "abandoned_cart.toml"))
    assert r.returncode == 0, r.stderr
    assert "journey abandoned_cart stored (version 1): event Product Added, 4 steps, 2 sends, " \
           "holdout 10%" in r.stdout  # fmt: skip
    assert (
        run(project, "pause", "abandoned_cart").stdout.strip() == "journey abandoned_cart is paused"
    )
    assert "paused" in run(project, "list").stdout
    assert run(project, "resume", "abandoned_cart").returncode == 0

    # 60 customers add to their cart; every third buys within the hour, every fifth a day later
    settings = load_settings(project)
    clock = SimClock(T0)
    with open_store(settings) as store:
        engine = JourneyEngine(store, settings, clock=clock)
        events, n = [], 0
        for i in range(60):
            cid = f"C{i:03d}"
            events.append(track(n := n + 1, cid, "Product Added", T0, product_id="P1"))
            if i % 3 == 0:
                events.append(track(n := n + 1, cid, "Order Completed", T0 + timedelta(minutes=20),
                                    order_id=f"O{i}", total=40))  # fmt: skip
            elif i % 5 == 0:
                later = T0 + timedelta(days=1, hours=2)
                events.append(track(n := n + 1, cid, "Order Completed", later, order_id=f"O{i}",
                                    total=25))  # fmt: skip
        early = [e for e in events if e["occurred_at"] <= T0 + timedelta(minutes=30)]
        late = [e for e in events if e not in early]
        store.intake.append(early)
        engine.on_events(early)
        engine.run_due(clock.now)  # the worker runs new entries at once: the wait starts
        clock.now = T0 + timedelta(hours=1, minutes=1)
        engine.run_due(clock.now)
        clock.now = T0 + timedelta(days=1, hours=2)
        store.intake.append(late)
        engine.on_events(late)
        engine.run_due(clock.now)
        expected = journey_results(store, "abandoned_cart", default_within=timedelta(days=7))
        plan = store.messages.plan_frame("journey-abandoned_cart")
        held = {s.customer_id for s in store.journeys.states("abandoned_cart") if s.holdout}

    status = run(project, "status", "abandoned_cart")
    assert status.returncode == 0, status.stderr
    assert re.search(r"entered\s*│\s*60\s*│", status.stdout), status.stdout
    assert re.search(rf"in the holdout\s*│\s*{len(held)}\s*│", status.stdout), status.stdout
    # the first reminder went to every treated customer who had not bought within the hour
    waited = {f"C{i:03d}" for i in range(60) if i % 3 != 0} - held
    first = plan[plan["variant"] == "reminder_1"]
    assert set(first["customer_id"]) == waited

    res = run(project, "results", "abandoned_cart")
    assert res.returncode == 0, res.stderr
    arms = expected.sections[0].results.arms
    for arm in ("journey", "holdout"):
        if arm in arms.index:
            row = arms.loc[arm]
            assert f"{int(row['n']):,}" in res.stdout
            assert f"{row['revenue']:,.2f}" in res.stdout
    assert "conversion: Order Completed within 7d of entering" in res.stdout
