"""``sendwise demo``: simulate a shop and run every step end to end, as a library function.

:func:`run_demo` does the work and tells a :class:`DemoView` what happened after each step;
the CLI's view prints it, :class:`SilentView` prints nothing (for Python callers and tests).
The flow: simulate a shop with known ground truth, load its tables, build profiles, models,
scores and recommendations, render sample emails, create and send a two-variant campaign with
a holdout to the outbox, let the simulated customers answer it, sync, and judge the results
against the simulator's true lift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sendwise.build import BuildResult
    from sendwise.campaigns.overview import CampaignStatus
    from sendwise.campaigns.results import Results
    from sendwise.config import Settings
    from sendwise.delivery.pipeline import DeliveryReport
    from sendwise.ingest.load import IngestReport
    from sendwise.serving.demo_live import LiveDemo
    from sendwise.simulate import SimulatedShop
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.status import WarehouseStatus

DEMO_CAMPAIGN = """\
name = "{name}"
holdout = 10
quiet_hours = false

[audience]
rule = "email is not null"

[[variants]]
name = "A"
template = "newsletter.html"
share = 45

[[variants]]
name = "B"
template = "win-back.html"
share = 45
"""

DEMO_STRENGTH = {"A": 1.0, "B": 1.5}
"""The demo's truth: variant B persuades 1.5 times as strongly as A."""


@dataclass
class DemoCampaign:
    name: str
    definition: Path
    report: DeliveryReport
    status: CampaignStatus
    outbox: Path


@dataclass
class DemoResponses:
    events: int
    """Opens, clicks and unsubscribes the simulated customers made."""
    orders: int
    synced: int
    """Store events copied into the warehouse."""
    results: Results
    true_effect: dict[str, float]
    """The simulator's true conversion lift of each variant over the holdout (points / 100)."""
    plots: list[Path]


@dataclass
class DemoSummary:
    settings: Settings
    build: BuildResult
    campaign: DemoCampaign
    responses: DemoResponses
    top_customer: str
    """The customer with the highest spend: the one to try ``sendwise profile`` with."""


class DemoView(Protocol):
    """What a caller shows while the demo runs (every method is called once per step)."""

    def section(self, title: str) -> None: ...
    def spinner(self, title: str) -> AbstractContextManager[Callable[[str], None]]: ...
    def bar(self, title: str, total: int) -> AbstractContextManager[Callable[[int, int], None]]: ...
    def simulated(self, shop: SimulatedShop, folder: Path) -> None: ...
    def loaded(self, report: IngestReport) -> None: ...
    def status(self, status: WarehouseStatus) -> None: ...
    def built(self, result: BuildResult) -> None: ...
    def live(self, change: LiveDemo) -> None: ...
    def emails(self, written: list[tuple[str, Path, dict[str, Any]]]) -> None: ...
    def campaign(self, campaign: DemoCampaign) -> None: ...
    def responses(self, responses: DemoResponses) -> None: ...


@contextmanager
def _silent(*_: Any) -> Iterator[Callable[..., None]]:
    yield lambda *a: None


class SilentView:
    """A :class:`DemoView` that shows nothing."""

    def section(self, title: str) -> None:
        return None

    def spinner(self, title: str) -> AbstractContextManager[Callable[[str], None]]:
        return _silent()

    def bar(self, title: str, total: int) -> AbstractContextManager[Callable[[int, int], None]]:
        return _silent()

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


def run_demo(
    folder: Path,
    view: DemoView | None = None,
    *,
    customers: int = 5000,
    days: int = 365,
    seed: int = 42,
) -> DemoSummary:
    """Create (or reuse) the project ``folder`` and run the whole flow in it."""
    from sendwise.build import run_build
    from sendwise.config import init_project, load_settings
    from sendwise.delivery.previews import render_demo
    from sendwise.serving.demo_live import live_demo
    from sendwise.simulate import simulate_shop
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.status import warehouse_status

    show = view or SilentView()
    init_project(folder)
    settings = load_settings(folder)
    show.section("sendwise demo")
    with show.bar("simulating the shop", days) as advance:
        shop = simulate_shop(customers=customers, days=days, seed=seed, progress=advance)
    paths = shop.write(settings.path("simulated"))
    show.simulated(shop, settings.path("simulated"))
    load_tables(settings, paths, show)
    with Warehouse.from_settings(settings) as wh:
        show.status(warehouse_status(wh))
        show.section("customer profiles and predictions")
        with show.spinner("build") as say:
            result = run_build(wh, settings, progress=say)
        show.built(result)
        show.section("live profile (serving plane)")
        show.live(live_demo(settings, _top_customer(wh)))
        show.section("personalized emails")
        show.emails(render_demo(settings, wh, n=3))
        top = _top_customer(wh)
        show.section("campaign")
        campaign = demo_campaign(settings, wh, show)
        show.campaign(campaign)
        show.section("responses and results")
        responses = demo_responses(settings, wh, shop.truth, campaign.name)
        show.responses(responses)
    return DemoSummary(settings, result, campaign, responses, top)


def load_tables(settings: Settings, paths: dict[str, Path], view: DemoView | None = None) -> None:
    """Load simulated table files into the warehouse, in dependency order."""
    from sendwise.ingest.load import ingest
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.schema import LOADABLE

    show = view or SilentView()
    with Warehouse.from_settings(settings) as wh:
        for name in LOADABLE:
            if name in paths:
                with show.spinner(f"loading {name}") as say:
                    report = ingest(wh, settings, paths[name], table=name, progress=say)
                show.loaded(report)


def _top_customer(wh: Warehouse) -> str:
    import ibis

    example = wh.table("profile").order_by(ibis.desc("monetary")).limit(1).customer_id
    return str(example.execute().iloc[0])


def demo_campaign(settings: Settings, wh: Warehouse, view: DemoView | None = None) -> DemoCampaign:
    """Two variants and a holdout, sent to the outbox at the simulated shop's "now" (the end
    of its data, so that the simulated responses are in the past)."""
    from sendwise.campaigns import (
        campaign_status,
        create_campaign,
        load_definition,
        plan_campaign,
        send_campaign,
    )
    from sendwise.campaigns.overview import plan_frame
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.delivery import make_messenger
    from sendwise.profiles.build import end_of_data
    from sendwise.store import open_store

    show = view or SilentView()
    name = f"Demo newsletter {datetime.now(UTC):%Y-%m-%d %H:%M}"
    path = settings.path("campaigns", "demo.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_CAMPAIGN.format(name=name), encoding="utf-8")
    now = end_of_data(wh)
    with open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        create_campaign(store, wh, settings, load_definition(path), renderer)
        cid = plan_campaign(store, wh, settings, name, now)
        due = int(plan_frame(store, cid)["status"].isin(["pending", "sending"]).sum())
        messenger = make_messenger(settings, "outbox")
        with show.bar(f"sending via {messenger.name}", due) as advance:
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                advance(done, due)

            report = send_campaign(
                store, wh, settings, name, renderer, messenger, progress=step, now=now
            )
        status = campaign_status(store, name)
    return DemoCampaign(name, path, report, status, settings.path(settings.delivery.outbox))


def demo_responses(
    settings: Settings, wh: Warehouse, truth: Any, name: str, seed: int = 0
) -> DemoResponses:
    """The simulated customers answer the campaign (events written to the store, orders
    ingested into the warehouse); sync; then the results and their plots."""
    from sendwise.campaigns.attribution import sent_messages
    from sendwise.campaigns.results import campaign_results
    from sendwise.campaigns.results_plots import save_plots
    from sendwise.campaigns.service import load_campaign
    from sendwise.simulate.replay import load_orders, record_direct
    from sendwise.simulate.responses import simulate_responses
    from sendwise.store import open_store
    from sendwise.tracking.sync import sync_events

    with open_store(settings) as store:
        cid, _, _ = load_campaign(store, name)
        responses = simulate_responses(
            sent_messages(store, cid),
            truth,
            strength=DEMO_STRENGTH,
            days=settings.tracking.attribution_days,
            seed=seed,
        )
        orders = load_orders(wh, settings, responses, name=cid)
        events = record_direct(store, responses)
        synced = sync_events(store, wh, settings)
        res = campaign_results(store, wh, settings, name)
    plots = list(save_plots(res, settings.path("results", cid)))
    return DemoResponses(events, orders, synced.read, res, dict(responses.true_effect), plots)
