"""The simulated shop: deterministic, in the canonical shape, internally consistent, and true to
the ground truth it reports."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.errors import InputError
from sendwise.ingest.load import ingest
from sendwise.simulate import (
    TABLE_NAMES,
    TRUTH_SCHEMA,
    ShopConfig,
    SimulatedShop,
    simulate_shop,
)
from sendwise.warehouse.schema import TABLES

ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}
START = date(2025, 1, 1)
END = pd.Timestamp("2026-01-01")


@pytest.fixture(scope="module")
def shop() -> SimulatedShop:
    return simulate_shop(customers=3000, days=365, seed=7)


def frame(shop: SimulatedShop, name: str) -> pd.DataFrame:
    return (shop.truth if name == "truth" else shop.tables[name]).to_pandas()


def test_same_seed_gives_identical_tables_and_another_seed_differs(shop) -> None:
    again = simulate_shop(customers=3000, days=365, seed=7)
    for name in TABLE_NAMES:
        assert again.tables[name].equals(shop.tables[name]), name
    assert again.truth.equals(shop.truth)
    other = simulate_shop(customers=3000, days=365, seed=8)
    assert not other.tables["order"].equals(shop.tables["order"])
    assert not other.truth.equals(shop.truth)


def test_tables_have_exactly_the_canonical_columns_and_types(shop) -> None:
    assert set(shop.tables) == set(TABLE_NAMES)
    for name, table in shop.tables.items():
        spec = TABLES[name]
        assert table.column_names == list(spec.column_names), name
        for column in spec.columns:
            assert table.schema.field(column.name).type == ARROW[column.type], (name, column)
    assert shop.truth.schema == TRUTH_SCHEMA
    assert shop.tables["event"]["identity"].null_count == shop.tables["event"].num_rows


def test_required_columns_are_filled_and_enumerations_hold(shop) -> None:
    for name, table in shop.tables.items():
        for column in TABLES[name].columns:
            if column.required:
                assert table[column.name].null_count == 0, (name, column.name)
            if column.allowed:
                values = set(pc.unique(table[column.name].drop_null()).to_pylist())
                assert values <= set(column.allowed), (name, column.name, values)


def test_keys_are_unique(shop) -> None:
    for name, table in shop.tables.items():
        key = list(TABLES[name].key)
        assert not table.to_pandas()[key].duplicated().any(), name
    assert shop.truth["customer_id"].equals(shop.tables["customer"]["customer_id"])


def test_references_hold(shop) -> None:
    customers = set(shop.tables["customer"]["customer_id"].to_pylist())
    products = set(shop.tables["product"]["product_id"].to_pylist())
    orders = frame(shop, "order")
    lines = frame(shop, "order_line")
    assert set(lines["product_id"]) <= products
    assert set(lines["order_id"]) == set(orders["order_id"])
    assert set(orders["customer_id"]) <= customers
    refunds = orders[orders["status"] == "refund"]
    assert len(refunds) > 0
    assert refunds["refund_of"].isin(orders.loc[orders["status"] == "completed", "order_id"]).all()
    assert orders.loc[orders["status"] == "completed", "refund_of"].isna().all()
    original = orders.set_index("order_id").loc[refunds["refund_of"]]
    assert (original["customer_id"].to_numpy() == refunds["customer_id"].to_numpy()).all()
    assert (original["ordered_at"].to_numpy() < refunds["ordered_at"].to_numpy()).all()
    sign = lines.merge(orders[["order_id", "status"]], on="order_id")
    assert (sign.loc[sign["status"] == "refund", "quantity"] < 0).all()
    assert (sign.loc[sign["status"] == "completed", "quantity"] > 0).all()
    events = frame(shop, "event")
    assert set(events["customer_id"].dropna()) <= customers
    assert set(events["product_id"].dropna()) <= products
    assert set(frame(shop, "email_event")["customer_id"]) <= customers
    assert set(frame(shop, "consent")["customer_id"]) <= customers


def test_values_pass_the_loaders_checks(shop) -> None:
    customers = frame(shop, "customer")
    assert customers["email"].str.fullmatch(r"c\d{7}@example\.com").all()
    assert set(customers["timezone"]) <= available_timezones()
    assert 0 < customers["first_name"].isna().sum() < 0.05 * len(customers)
    for text in customers["attributes"].dropna().head(200):
        assert "gender" in json.loads(text)
    products = frame(shop, "product")
    assert products["url"].str.match(r"https://shop\.example\.com/p/P\d+$").all()
    assert (products["price"] > 0).all()
    assert products["in_stock"].mean() > 0.8
    for name, column in [("order", "ordered_at"), ("event", "occurred_at"),
                         ("email_event", "occurred_at"), ("consent", "recorded_at")]:  # fmt: skip
        times = frame(shop, name)[column]
        assert times.max() < END, name
    assert frame(shop, "order")["ordered_at"].min() >= pd.Timestamp(START)
    props = frame(shop, "event")["properties"].dropna()
    for text in props.sample(2000, random_state=0):
        assert isinstance(json.loads(text), dict)


def test_order_completed_events_match_the_orders(shop) -> None:
    events = frame(shop, "event")
    done = events[events["event"] == "Order Completed"]
    orders = frame(shop, "order")
    completed = orders[orders["status"] == "completed"]
    assert len(done) == len(completed)
    parsed = pd.DataFrame([json.loads(p) for p in done["properties"]])
    merged = parsed.merge(completed, on="order_id", validate="one_to_one")
    lines = frame(shop, "order_line")
    lines["amount"] = lines["quantity"] * lines["unit_price"]
    totals = lines.groupby("order_id")["amount"].sum().round(2)
    assert np.allclose(merged["total"], totals.loc[merged["order_id"]].to_numpy())
    assert (merged["products"].map(len).to_numpy() ==
            lines.groupby("order_id").size().loc[merged["order_id"]].to_numpy()).all()  # fmt: skip


def test_anonymous_sessions_are_linked_by_an_identify_call(shop) -> None:
    events = frame(shop, "event")
    assert events["message_id"].is_unique
    anonymous = events[events["user_id"].isna()]
    assert len(anonymous) > 0
    assert anonymous["anonymous_id"].notna().all()
    assert anonymous["customer_id"].isna().all()
    identify = events[events["type"] == "identify"]
    assert identify["user_id"].notna().all() and identify["anonymous_id"].notna().all()
    assert identify["email"].notna().all() and identify["event"].isna().all()
    links = identify.set_index("anonymous_id")["user_id"]
    assert links.index.is_unique
    assert set(anonymous["anonymous_id"]) <= set(links.index)
    # Each anonymous id belongs to one session, of the customer its identify call names.
    tracked = events[events["anonymous_id"].notna() & events["user_id"].notna()]
    assert (tracked["user_id"].to_numpy() == links.loc[tracked["anonymous_id"]].to_numpy()).all()
    assert events.groupby("session_id")["customer_id"].nunique().max() == 1


def test_abandoned_carts_and_browse_only_sessions_exist(shop) -> None:
    events = frame(shop, "event")
    bought = set(events.loc[events["event"] == "Order Completed", "session_id"])
    added = set(events.loc[events["event"] == "Product Added", "session_id"])
    sessions = set(events["session_id"])
    assert len(added - bought) > 0.05 * len(sessions)
    assert len(sessions - bought) > len(bought) * 0.5
    per_customer = len(events) / shop.params["customers"]
    assert 10 < per_customer < 45


def test_no_orders_after_death_and_no_future_for_the_dead(shop) -> None:
    truth = frame(shop, "truth")
    orders = frame(shop, "order").merge(truth[["customer_id", "died_at"]], on="customer_id")
    dead = orders[orders["died_at"].notna()]
    assert (dead["ordered_at"] <= dead["died_at"]).all()
    assert truth.loc[~truth["alive_at_end"], "died_at"].notna().all()
    assert truth.loc[truth["alive_at_end"], "died_at"].isna().all()
    assert (truth.loc[~truth["alive_at_end"], "future_orders"] == 0).all()
    assert truth["future_orders"].sum() > 0
    assert (truth.loc[truth["future_orders"] == 0, "future_revenue"] == 0).all()
    with_future = truth[truth["future_orders"] > 0]
    assert (with_future["future_revenue"] > 0).all()
    assert with_future["future_categories"].map(lambda s: len(json.loads(s)) >= 1).all()
    # The last order of a dead customer is the one after which they churned.
    last = dead.groupby("customer_id")["ordered_at"].max()
    assert (last == dead.groupby("customer_id")["died_at"].first()).all()


def test_purchase_rate_drives_order_counts(shop) -> None:
    truth = frame(shop, "truth")
    orders = frame(shop, "order")
    counts = orders[orders["status"] == "completed"].groupby("customer_id").size()
    customers = frame(shop, "customer")
    early = customers.loc[customers["created_at"] < pd.Timestamp(START), "customer_id"]
    t = truth.set_index("customer_id").loc[early]
    n = counts.reindex(early, fill_value=0).to_numpy()
    rank_corr = pd.Series(t["purchase_rate"].to_numpy()).rank().corr(pd.Series(n).rank())
    assert rank_corr > 0.3
    high = t["purchase_rate"] > t["purchase_rate"].median()
    assert n[high.to_numpy()].mean() > 2 * n[~high.to_numpy()].mean()


def test_favourite_category_dominates_purchases(shop) -> None:
    lines = frame(shop, "order_line").merge(frame(shop, "order"), on="order_id")
    lines = lines.merge(frame(shop, "product")[["product_id", "category"]], on="product_id")
    fav = lines.merge(frame(shop, "truth")[["customer_id", "favourite_category"]])
    share = (fav["category"] == fav["favourite_category"]).mean()
    assert share > 0.35  # eight categories: chance alone would give ~0.13


def test_preferred_hour_is_the_mode_of_human_opens(shop) -> None:
    email = frame(shop, "email_event")
    truth = frame(shop, "truth").set_index("customer_id")
    human = email[(email["type"] == "open") & ~email["is_machine"]].copy()
    human["tz"] = truth.loc[human["customer_id"], "timezone"].to_numpy()
    hours = []
    for tz, group in human.groupby("tz"):
        local = group["occurred_at"].dt.tz_localize("UTC").dt.tz_convert(tz)
        hours.append(pd.Series(local.dt.hour.to_numpy(), index=group.index))
    human["hour"] = pd.concat(hours)
    counts = human.groupby("customer_id")["hour"].agg(["size", lambda h: h.mode().iloc[0]])
    counts.columns = ["opens", "mode"]
    many = counts[counts["opens"] >= 5]
    assert len(many) > 50
    agree = (many["mode"] == truth.loc[many.index, "preferred_hour"]).mean()
    assert agree > 0.8


def test_machine_opens_come_only_from_proxy_users_right_after_delivery(shop) -> None:
    email = frame(shop, "email_event")
    truth = frame(shop, "truth").set_index("customer_id")
    machine = email[email["is_machine"]]
    assert len(machine) > 0
    assert (machine["type"] == "open").all()
    assert truth.loc[machine["customer_id"], "uses_privacy_proxy"].all()
    assert (machine["user_agent"] == "Mozilla/5.0").all()
    delivered = email[email["type"] == "delivered"].set_index("message_id")["occurred_at"]
    lag = machine["occurred_at"].to_numpy() - delivered.loc[machine["message_id"]].to_numpy()
    assert (lag > np.timedelta64(0)).all() and (lag < np.timedelta64(1, "h")).all()
    proxy_users = truth.index[truth["uses_privacy_proxy"]]
    human = email[(email["type"] == "open") & ~email["is_machine"]]
    assert not human["customer_id"].isin(proxy_users).any()
    assert email.loc[email["type"] == "click", "url"].str.contains("utm_campaign=nl-").all()


def test_emails_respect_consent_and_unsubscribes(shop) -> None:
    email = frame(shop, "email_event")
    consent = frame(shop, "consent")
    granted = consent[consent["status"] == "granted"].set_index("customer_id")["recorded_at"]
    sends = email[email["type"] == "send"]
    assert sends["customer_id"].isin(granted.index).all()
    assert (sends["occurred_at"].to_numpy() > granted.loc[sends["customer_id"]].to_numpy()).all()
    never = frame(shop, "truth").query("not consented")["customer_id"]
    assert len(never) > 0 and not email["customer_id"].isin(never).any()
    quits = email[email["type"] == "unsubscribe"].set_index("customer_id")["occurred_at"]
    assert len(quits) > 0 and quits.index.is_unique
    withdrawn = consent[consent["status"] == "withdrawn"].set_index("customer_id")["recorded_at"]
    assert withdrawn.sort_index().equals(quits.sort_index().rename("recorded_at"))
    later = sends[sends["customer_id"].isin(quits.index)]
    assert (later["occurred_at"].to_numpy() < quits.loc[later["customer_id"]].to_numpy()).all()
    # Every send is delivered or bounced; after a hard bounce the address is never mailed again.
    outcome = email[email["type"].isin(["delivered", "bounce", "soft_bounce"])]
    assert outcome["message_id"].is_unique and len(outcome) == len(sends)
    bounced = email[email["type"] == "bounce"].groupby("customer_id")["occurred_at"].min()
    after = sends[sends["customer_id"].isin(bounced.index)]
    assert (after["occurred_at"].to_numpy() < bounced.loc[after["customer_id"]].to_numpy()).all()
    assert set(sends["campaign_id"]) >= {"nl-2025-01-06", "nl-2025-12-01"}


def test_email_effect_types_follow_their_definition(shop) -> None:
    truth = frame(shop, "truth")
    effect = truth.groupby("email_effect_type")["email_effect"].agg(["min", "max"])
    assert set(effect.index) == {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}
    assert effect.loc["persuadable", "min"] > 1 and effect.loc["sleeping_dog", "max"] < 1
    assert (effect.loc[["sure_thing", "lost_cause"]] == 1).all().all()
    prefs = truth["category_prefs"].map(json.loads)
    assert prefs.map(lambda p: abs(sum(p.values()) - 1) < 0.01).all()
    assert (prefs.map(lambda p: max(p, key=p.get)) == truth["favourite_category"]).all()


def test_emails_move_purchases_as_the_effect_type_says(shop) -> None:
    """Share of orders placed within 7 days of a delivered email, by effect type: persuadables
    buy more in that window than the unaffected, sleeping dogs less."""
    email = frame(shop, "email_event")
    delivered = email.loc[email["type"] == "delivered", ["customer_id", "occurred_at"]]
    orders = frame(shop, "order").query("status == 'completed'")
    near = pd.merge_asof(
        orders.sort_values("ordered_at"),
        delivered.sort_values("occurred_at"),
        left_on="ordered_at",
        right_on="occurred_at",
        by="customer_id",
    )
    near["boosted"] = (near["ordered_at"] - near["occurred_at"]) < pd.Timedelta(days=7)
    truth = frame(shop, "truth").set_index("customer_id")
    near = near[truth.loc[near["customer_id"], "consented"].to_numpy()]
    near["type"] = truth.loc[near["customer_id"], "email_effect_type"].to_numpy()
    share = near.groupby("type")["boosted"].mean()
    unaffected = near[near["type"].isin(["sure_thing", "lost_cause"])]["boosted"].mean()
    assert share["persuadable"] > unaffected * 1.4
    assert share["sleeping_dog"] < unaffected


def test_write_round_trips_through_parquet(shop, tmp_path: Path) -> None:
    paths = shop.write(tmp_path / "shop")
    assert set(paths) == {*TABLE_NAMES, "truth", "manifest"}
    for name in TABLE_NAMES:
        assert pq.read_table(paths[name]).equals(shop.tables[name]), name
    assert pq.read_table(paths["truth"]).equals(shop.truth)
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["params"]["seed"] == 7 and manifest["params"]["end"] == "2026-01-01"
    assert manifest["rows"]["order"] == shop.tables["order"].num_rows


def test_loads_into_the_warehouse_without_rejects(shop, project, sql, tmp_path: Path) -> None:
    settings, wh = project
    small = simulate_shop(customers=300, days=120, seed=3)
    paths = small.write(tmp_path / "small")
    for name in ("customer", "product", "order", "order_line", "event", "email_event", "consent"):
        report = ingest(wh, settings, paths[name], table=name)
        assert report.rejected == 0, (name, sql(wh, "SELECT reason FROM reject LIMIT 3"))
    assert sql(wh, "SELECT count(*) FROM event WHERE identity = 'unmatched'") == [(0,)]
    anonymous = sql(wh, "SELECT count(*) FROM event WHERE identity = 'anonymous_id'")[0][0]
    assert anonymous > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": -5}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"days": 0}, "days"),
        ({"days": True}, "days"),
        ({"future_days": -1}, "future_days"),
        ({"seed": -1}, "seed"),
        ({"products": 3}, "products"),
        ({"start": "2025-01-01"}, "start"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        simulate_shop(**kwargs)


def test_config_changes_the_processes() -> None:
    silent = simulate_shop(customers=200, days=60, config=ShopConfig(consent_share=0.0))
    assert silent.tables["email_event"].num_rows == 0
    assert silent.tables["consent"].num_rows == 0
    assert silent.params["config"]["consent_share"] == 0.0
    loyal = simulate_shop(customers=200, days=60, config=ShopConfig(dropout_b=1e9))
    assert loyal.truth["alive_at_end"].to_pylist() == [True] * 200
    with pytest.raises(InputError, match="config"):
        simulate_shop(customers=10, config={"consent_share": 0.0})


def test_progress_reaches_the_total() -> None:
    seen: list[tuple[int, int]] = []
    simulate_shop(
        customers=20, days=10, future_days=5, show_progress=True,
        progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert seen[-1][0] == seen[-1][1] and len(seen) >= 15
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    customers=st.integers(1, 60),
    days=st.integers(1, 60),
    future_days=st.integers(0, 30),
    seed=st.integers(0, 2**32),
    start=st.dates(date(2020, 1, 1), date(2025, 6, 1)),
)
def test_any_small_shop_is_consistent(customers, days, future_days, seed, start) -> None:
    shop = simulate_shop(customers, days, seed, start, future_days)
    end = datetime.combine(shop.params["end"], datetime.min.time())
    for name, table in shop.tables.items():
        assert table.column_names == list(TABLES[name].column_names)
    assert shop.truth.num_rows == customers
    for name, column in [("order", "ordered_at"), ("event", "occurred_at"),
                         ("email_event", "occurred_at")]:  # fmt: skip
        times = shop.tables[name][column]
        if len(times):
            assert pc.max(times).as_py() < end
    ids = shop.tables["event"]["message_id"]
    assert pc.count_distinct(ids).as_py() == len(ids)
    assert all(re.fullmatch(r"O\d{8}", o) for o in shop.tables["order"]["order_id"].to_pylist())
