"""`sendwise demo` as a library function: every step runs, the view sees each one, and the
campaign's result agrees with the simulator's truth (variant B persuades 1.5x as strongly)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sendwise.cli.demo import CliDemoView, print_summary
from sendwise.cli.output import OUT, SafeConsole
from sendwise.demo import DEMO_STRENGTH, SilentView, run_demo


class RecordingView(CliDemoView):
    """The CLI's view, printing into a buffer and remembering the order of the steps."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if callable(attr) and not name.startswith("_"):
            object.__getattribute__(self, "calls").append(name)
        return attr


@pytest.mark.slow
def test_the_demo_runs_every_step_and_finds_the_true_winner(tmp_path: Path) -> None:
    buffer = io.StringIO()
    OUT.configure(quiet=True)
    OUT.console = SafeConsole(file=buffer, width=160)
    view = RecordingView()
    summary = run_demo(tmp_path / "shop", view, customers=600, days=365, seed=42)
    print_summary(summary, tmp_path / "shop")
    shown = buffer.getvalue()

    steps = [c for c in view.calls if c not in ("section", "spinner", "bar")]
    assert steps[:1] == ["simulated"]
    assert steps[-6:] == ["status", "built", "live", "emails", "campaign", "responses"]
    assert steps.count("loaded") >= 5  # customer, product, order, order_line, event, ...
    for title in ("customer profiles and predictions", "live profile", "no rebuild", "campaign",
                  "responses and results",
                  "where things are", "sendwise profile", "/console", "password"):  # fmt: skip
        assert title in shown

    campaign = summary.campaign
    assert campaign.report.sent > 0 and campaign.report.failed == 0
    assert len(list(campaign.outbox.glob("**/*.eml"))) == campaign.report.sent
    responses = summary.responses
    assert set(responses.results.arms.index) == {"A", "B", "holdout"}
    assert set(responses.true_effect) == set(DEMO_STRENGTH)
    assert responses.true_effect["B"] > responses.true_effect["A"] > 0
    assert all(p.exists() for p in responses.plots)
    profile = summary.build.profiles
    assert profile.customers == 600
    assert summary.top_customer.startswith("C")


def test_the_silent_view_shows_nothing() -> None:
    view = SilentView()
    with view.spinner("x") as say, view.bar("y", 3) as advance:
        say("step")
        advance(1, 3)
    assert view.simulated(None, Path(".")) is None
