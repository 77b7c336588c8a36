"""The loop closed on the simulator: a campaign with two variants and a holdout is sent, the
simulated customers answer through the real tracking service (uvicorn on loopback) and with
orders in the warehouse, the events are synced, and the measured lifts over the holdout cover
the simulator's true effects."""

from __future__ import annotations

import pandas as pd
import pytest

from sendwise.api import create_app
from sendwise.campaigns import create_campaign, parse_definition, send_campaign
from sendwise.campaigns.attribution import sent_messages
from sendwise.campaigns.rendering import BasicRenderer
from sendwise.campaigns.results import campaign_results, lift
from sendwise.campaigns.service import plan_campaign
from sendwise.config import init_project, load_settings
from sendwise.delivery import make_messenger
from sendwise.ingest.load import ingest
from sendwise.profiles import build_profiles
from sendwise.profiles.build import end_of_data
from sendwise.simulate import simulate_shop
from sendwise.simulate.replay import load_orders, replay_http
from sendwise.simulate.responses import simulate_responses
from sendwise.store import open_store
from sendwise.store.records import event_rows
from sendwise.tracking.sync import sync_events
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE
from tracking_support import running

CAMPAIGN = {
    "name": "Spring sale",
    "audience": {"rule": "email is not null"},
    "holdout": 30,
    "quiet_hours": False,
    "frequency_cap": 50,
    "variants": [
        {"name": "A", "template": "demo_a", "share": 35},
        {"name": "B", "template": "demo_b", "share": 35},
    ],
}
# B persuades three times as strongly as A (the simulator's email_effect scaled per variant):
# strong enough that 1,400 customers an arm show it at 5% whatever order the messages were
# sent in (at twice, the draw of one send order gave p = 0.054)
STRENGTH = {"A": 1.0, "B": 3.0}


@pytest.fixture(scope="module")
def closed_loop(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("loop-shop")
    init_project(folder)
    settings = load_settings(folder, tracking={"attribution_days": 14})
    shop = simulate_shop(customers=4000, days=120, seed=11)
    files = shop.write(folder / "files")
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        for name in LOADABLE:
            if name in files:
                ingest(wh, settings, files[name], table=name)
        build_profiles(wh, settings)
        now = end_of_data(wh)
        defn = parse_definition(CAMPAIGN)
        create_campaign(store, wh, settings, defn, BasicRenderer.from_warehouse(wh))
        send_campaign(store, wh, settings, defn.name, BasicRenderer.from_warehouse(wh),
                      make_messenger(settings), now=now)  # fmt: skip
        messages = sent_messages(store, defn.campaign_id)
        responses = simulate_responses(messages, shop.truth, strength=STRENGTH, days=14, seed=3)
        load_orders(wh, settings, responses)
        clock = {"now": now}
        app = create_app(settings, store=store, clock=lambda: clock["now"])
        key = settings.delivery.signing_key.get_secret_value().encode()
        with running(app) as url:
            answered = replay_http(responses, url, key, lambda at: clock.update(now=at))
        synced = sync_events(store, wh, settings)
        results = campaign_results(store, wh, settings, defn.name)
        # the next campaign: whoever unsubscribed through the service gets nothing
        nxt = parse_definition({**CAMPAIGN, "name": "Next week"})
        create_campaign(store, wh, settings, nxt, BasicRenderer.from_warehouse(wh))
        plan_campaign(store, wh, settings, nxt.name, now=now)
        later = sent_messages(store, nxt.campaign_id).set_index("customer_id")
        stored = pd.DataFrame(event_rows(store))
        email_events = wh.table("email_event").to_pandas()
    return dict(folder=folder, responses=responses, answered=answered, synced=synced,
                results=results, later=later, stored=stored, warehouse=email_events,
                messages=messages)  # fmt: skip


def test_measured_lift_covers_the_true_effect(closed_loop) -> None:
    res, truth = closed_loop["results"], closed_loop["responses"].true_effect
    assert truth["B"] > truth["A"] > 0.005
    for arm in ("A", "B"):
        row = lift(res, arm, "conversion")
        assert row["low"] <= truth[arm] <= row["high"], (arm, truth[arm], row.to_dict())
    assert lift(res, "B", "conversion")["p_holm"] < 0.05
    assert not res.srm.mismatch
    inc = res.incremental.set_index("arm")
    assert inc.at["B", "revenue"] > 0


def test_every_event_arrived_and_reached_the_warehouse(closed_loop) -> None:
    events, stored = closed_loop["responses"].events, closed_loop["stored"]
    assert closed_loop["answered"] == len(events)
    engagement = stored[stored["type"].isin(["open", "click", "unsubscribe"])]
    assert len(engagement) == len(events)
    wh = closed_loop["warehouse"]
    first = stored[stored["campaign_id"] == "spring-sale"]  # the next one was only planned
    assert set(first["event_id"]) == set(wh.loc[wh["campaign_id"] == "spring-sale", "event_id"])
    assert closed_loop["synced"].rejected == 0


def test_machine_opens_are_flagged_and_left_out_of_the_open_rate(closed_loop) -> None:
    events, stored = closed_loop["responses"].events, closed_loop["stored"]
    opens = stored[stored["type"] == "open"].sort_values("occurred_at")
    truth_opens = events[events["type"] == "open"]
    assert opens["is_machine"].sum() == truth_opens["machine"].sum() > 100
    res = closed_loop["results"]
    human = truth_opens[~truth_opens["machine"]]
    counted = res.arms.loc[["A", "B"], "open"].sum()
    assert counted == human["message_key"].nunique()
    # bot clicks (a scanner following every link at once) are not counted either
    clicks = events[(events["type"] == "click") & ~events["machine"]]
    assert res.arms.loc[["A", "B"], "click"].sum() == clicks["message_key"].nunique()


def test_an_unsubscribed_customer_gets_nothing_from_the_next_campaign(closed_loop) -> None:
    events, messages = closed_loop["responses"].events, closed_loop["messages"]
    gone = messages.set_index("message_key").loc[
        events.loc[events["type"] == "unsubscribe", "message_key"], "customer_id"
    ]
    assert len(gone) > 3
    later = closed_loop["later"]
    assert (later.loc[gone, "status"] == "skipped").all()
    assert later.loc[gone, "variant"].notna().all()


def test_cli_sync_and_results_print_the_table_and_save_plots(closed_loop) -> None:
    from typer.testing import CliRunner

    from sendwise.cli.app import app

    folder = closed_loop["folder"]
    runner = CliRunner()
    synced = runner.invoke(app, ["sync", "--project", str(folder)])
    assert synced.exit_code == 0, synced.output
    assert "synced" in synced.output
    out = runner.invoke(
        app,
        ["campaign", "results", "Spring sale", "--project", str(folder), "--sequential"],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.output
    for text in ("holdout", "conversion", "Holm", "sample ratio", "always-valid"):
        assert text in out.output
    assert (folder / "results" / "spring-sale" / "rates.png").stat().st_size > 5000
    assert (folder / "results" / "spring-sale" / "lift.png").exists()
    missing = runner.invoke(app, ["campaign", "results", "Nope", "--project", str(folder)])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
