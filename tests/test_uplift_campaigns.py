"""Uplift through campaigns, on the simulator: a sent campaign with a holdout becomes the
training set (features as of its first send), the next campaign's audience is its top 30% by
predicted uplift (half targeted, half at random), and its results compare the two groups."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from sendwise.campaigns import create_campaign, parse_definition, send_campaign
from sendwise.campaigns.attribution import sent_messages
from sendwise.campaigns.rendering import BasicRenderer
from sendwise.campaigns.service import plan_campaign
from sendwise.campaigns.targeting import (
    campaign_experiment,
    campaign_targeting_results,
    group_of,
)
from sendwise.config import init_project, load_settings
from sendwise.delivery import make_messenger
from sendwise.errors import CampaignError
from sendwise.ingest.load import ingest
from sendwise.predict.service import registry_of
from sendwise.profiles import build_profiles
from sendwise.profiles.build import end_of_data
from sendwise.simulate import simulate_shop
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.replay import load_orders
from sendwise.simulate.responses import simulate_responses
from sendwise.store import open_store
from sendwise.uplift.artifact import save_uplift
from sendwise.uplift.train import fit_uplift
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE
from uplift_sim import true_effects

LEARN = {
    "name": "Learn",
    "audience": {"rule": "email is not null"},
    "holdout": 50,
    "quiet_hours": False,
    "frequency_cap": 50,
    "template": "demo_a",
}
TARGET = {
    **LEARN,
    "name": "Targeted",
    "audience": {
        "rule": "email is not null",
        "uplift": {"model": "uplift_a_conversion", "top": 30},
    },
}
STRENGTH = {"A": 2.0}


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("uplift-shop")
    init_project(folder)
    settings = load_settings(folder, tracking={"attribution_days": 14})
    shop = simulate_shop(
        customers=12_000, days=365, seed=7, config=ShopConfig(effect_by_frequency=True)
    )
    files = shop.write(folder / "files")
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        for name in LOADABLE:
            if name in files:
                ingest(wh, settings, files[name], table=name)
        build_profiles(wh, settings)
        now = end_of_data(wh)
        renderer = BasicRenderer.from_warehouse(wh)
        learn = parse_definition(LEARN)
        create_campaign(store, wh, settings, learn, renderer)
        send_campaign(store, wh, settings, learn.name, renderer, make_messenger(settings), now=now)
        first = simulate_responses(
            sent_messages(store, learn.campaign_id), shop.truth, strength=STRENGTH, days=14, seed=1
        )
        load_orders(wh, settings, first, name="learn")
        exp = campaign_experiment(store, wh, settings, "Learn", arm="A")
        fitted = fit_uplift(exp)
        mv = save_uplift(
            registry_of(settings),
            "uplift_a_conversion",
            fitted,
            exp,
            layout="features",
            source="campaign Learn",
        )
        later = now + timedelta(days=30)
        target = parse_definition(TARGET)
        create_campaign(store, wh, settings, target, renderer)
        plan_campaign(store, wh, settings, target.name, now=later)
        planned = sent_messages(store, target.campaign_id)
        send_campaign(
            store, wh, settings, target.name, renderer, make_messenger(settings), now=later
        )
        second = simulate_responses(
            sent_messages(store, target.campaign_id), shop.truth, strength=STRENGTH, days=14, seed=2
        )
        load_orders(wh, settings, second, name="targeted")
        results = campaign_targeting_results(store, wh, settings, "Targeted")
        with pytest.raises(CampaignError, match="not targeted by uplift"):
            campaign_targeting_results(store, wh, settings, "Learn")
        learned = sent_messages(store, learn.campaign_id)
    truth = shop.truth.to_pandas().set_index("customer_id")
    return dict(
        exp=exp,
        mv=mv,
        planned=planned,
        results=results,
        truth=truth,
        audience=len(learned),
        eligible=int((learned["status"] != "skipped").sum()),
        campaign_id=target.campaign_id,
    )


def test_a_sent_campaign_is_an_uplift_training_set(loop) -> None:
    exp = loop["exp"]
    assert len(exp) == loop["eligible"]  # every assigned, not skipped customer: none dropped
    assert 0.45 < exp.treatment.mean() < 0.55
    assert "frequency" in exp.X.columns and "as_of" not in exp.X.columns
    assert loop["mv"].metadata["layout"] == "features"


def test_the_targeted_campaign_sends_to_two_groups_of_the_same_size(loop) -> None:
    planned = loop["planned"]
    groups = group_of(loop["campaign_id"], planned["customer_id"])
    counts = groups.value_counts()
    assert abs(counts["targeted"] - counts["random"]) <= 0.05 * len(planned)
    assert len(planned) == pytest.approx(0.3 * loop["audience"], rel=0.05)
    for name in ("targeted", "random"):  # each group has its own holdout
        arms = planned.loc[(groups == name).to_numpy(), "variant"].value_counts()
        assert {"A", "holdout"} <= set(arms.index)


def test_results_compare_the_targeted_group_with_the_random_one(loop) -> None:
    res, truth, planned = loop["results"], loop["truth"], loop["planned"]
    assert set(res.index) == {"targeted", "random"}
    assert (res["sent"] > 0).all() and (res["held_out"] > 0).all()
    groups = group_of(loop["campaign_id"], planned["customer_id"])
    effect = pd.Series(true_effects(truth, STRENGTH["A"], 14.0), index=truth.index)
    true_by_group = effect.reindex(planned["customer_id"]).groupby(groups.to_numpy()).mean()
    print("true mean uplift by group:", true_by_group.to_dict(), "\n", res.to_string())
    assert true_by_group["targeted"] > true_by_group["random"]
    assert np.isfinite(res["lift"]).all()
