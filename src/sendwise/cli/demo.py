"""How ``sendwise demo`` looks on the terminal: a :class:`sendwise.demo.DemoView` that prints."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.cli import render
from sendwise.cli.output import OUT, line, styled

if TYPE_CHECKING:
    from sendwise.build import BuildResult
    from sendwise.demo import DemoCampaign, DemoResponses, DemoSummary
    from sendwise.ingest.load import IngestReport
    from sendwise.serving.demo_live import LiveDemo
    from sendwise.simulate import SimulatedShop
    from sendwise.warehouse.status import WarehouseStatus


class CliDemoView:
    """Prints each step of the demo as the separate commands would."""

    def section(self, title: str) -> None:
        OUT.console.rule(styled(title, "bold"))

    def spinner(self, title: str) -> AbstractContextManager[Callable[[str], None]]:
        return OUT.steps(title)

    def bar(self, title: str, total: int) -> AbstractContextManager[Callable[[int, int], None]]:
        return OUT.task_bar(title, total)

    def simulated(self, shop: SimulatedShop, folder: Path) -> None:
        render.simulated(OUT.console, shop, folder)

    def loaded(self, report: IngestReport) -> None:
        render.ingest_report(OUT.console, report)

    def status(self, status: WarehouseStatus) -> None:
        render.status(OUT.console, status)

    def built(self, result: BuildResult) -> None:
        from sendwise.cli.models import print_scored, print_trained
        from sendwise.cli.recommend import show_build

        render.profile_build(OUT.console, result.profiles)
        self.section("models (judged on the last window, against baselines)")
        print_trained(OUT.console, result.trained)
        print_scored(OUT.console, result.scored)
        self.section("recommendations")
        show_build(OUT.console, result.extra["recommendations"])

    def live(self, change: LiveDemo) -> None:
        def show(when: str, seen: dict[str, Any]) -> None:
            cart = [c["product_id"] for c in seen["live"]["cart"]]
            OUT.print(f"{when}: viewed {seen['live']['recently_viewed']}, cart {cart}")
            OUT.print(f"  recommended {seen['recommendations']}")

        show(f"customer {change.customer_id} before", change.before)
        OUT.print(f"events in: Product Viewed {change.viewed}, Product Added {change.added}")
        show(f"after ({change.milliseconds:.0f} ms, no rebuild)", change.after)
        OUT.print(
            "serve it: sendwise keys create --name crm --scope read; sendwise serve; then GET"
            f" /v1/profiles/{change.customer_id} with the key"
        )

    def emails(self, written: list[tuple[str, Path, dict[str, Any]]]) -> None:
        for customer_id, path, slots in written:
            shown = ", ".join(f"{k}={v}" for k, v in slots.items()) or "-"
            OUT.print(f"{customer_id:<12} {path} (+ .html)  variants: {shown}")
        OUT.print(
            "check: sendwise templates check; preview: sendwise render newsletter.html --preview"
        )

    def campaign(self, campaign: DemoCampaign) -> None:
        from sendwise.cli.campaign import print_status

        print_status(OUT.console, campaign.status)
        report = campaign.report
        OUT.print(
            f"sent {report.sent:,} messages to the outbox {campaign.outbox} "
            f"({report.per_second:,.0f}/s); definition: {campaign.definition}"
        )

    def responses(self, responses: DemoResponses) -> None:
        from sendwise.cli.results_table import print_results

        OUT.print(
            f"simulated {responses.events:,} opens, clicks and unsubscribes and "
            f"{responses.orders:,} orders; synced {responses.synced:,} events into the warehouse"
        )
        print_results(OUT.console, responses.results)
        true = ", ".join(f"{v} {100 * e:+.2f} pts" for v, e in responses.true_effect.items())
        OUT.print(f"the simulator's true conversion lift over the holdout: {true}")
        for path in responses.plots:
            OUT.print(f"plot: {path}")


def print_summary(summary: DemoSummary, folder: Path) -> None:
    """Where the demo left things, and a command to try next."""
    settings = summary.settings
    OUT.console.rule(styled("where things are", "bold"))
    OUT.print(f"project:     {settings.project}")
    OUT.print(f"warehouse:   {settings.warehouse_url()}")
    OUT.print(f"simulated:   {settings.path('simulated')} (tables and truth.parquet)")
    OUT.print("profiles:    warehouse table 'profile' (sendwise export profiles --out FILE)")
    OUT.print(f"models:      {settings.path('models')} (sendwise models list; report.md)")
    OUT.print(f"reports:     {settings.path('reports')} (recommendation evaluation)")
    OUT.print(line("try:         ", f"sendwise profile {summary.top_customer} --project {folder}"))
    print_console_login(settings, folder)


def print_console_login(settings: Any, folder: Path) -> None:
    """The web console's address and a demo login (its password generated now)."""
    from sendwise.console.users import console_url, demo_login
    from sendwise.store import open_store

    with open_store(settings) as store:
        name, password = demo_login(store)
    OUT.print(
        line(
            "console:     ",
            f"{console_url(settings)} (start it: sendwise serve --project {folder})",
        )
    )
    OUT.print(line("login:       ", f"user {name}, password {password} (new at each demo run)"))
