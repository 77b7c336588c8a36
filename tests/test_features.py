"""Point-in-time features: known answers on real data, no leakage, agreement with the
simulator's ground truth, training labels, and the same build on two backends."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sendwise.config import init_project, load_settings
from sendwise.errors import InputError
from sendwise.features import customer_features, training_set
from sendwise.features.build import feature_columns
from sendwise.ingest.load import ingest
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = DATA / "online_retail" / "online_retail_2010-12-01_2011-09-09.csv.gz"


def _warehouse(folder: Path) -> tuple:
    init_project(folder)
    settings = load_settings(folder)
    return settings, Warehouse.from_settings(settings)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A small simulated shop, loaded; yields (warehouse, shop)."""
    folder = tmp_path_factory.mktemp("sim")
    shop = simulate_shop(customers=1500, days=240, seed=3)
    paths = shop.write(folder / "files")
    settings, wh = _warehouse(folder)
    for name in LOADABLE:
        if name in paths:
            report = ingest(wh, settings, paths[name], table=name)
            assert report.rejected == 0, report.rejects_by_rule
    yield wh, shop
    wh.close()


def _frame(expr) -> pd.DataFrame:
    return expr.to_pandas().sort_values("customer_id").reset_index(drop=True)


@pytest.mark.skipif(not RETAIL.exists(), reason="../shared/data/online_retail is not present")
def test_rfm_of_customer_17850_equals_a_computation_by_hand(tmp_path: Path) -> None:
    settings, wh = _warehouse(tmp_path)
    ingest(wh, settings, RETAIL, preset="online-retail")
    as_of = datetime(2011, 9, 10)
    f = customer_features(wh, as_of)
    row = f.filter(f.customer_id == "17850").to_pandas().iloc[0]

    raw = pd.read_csv(RETAIL, dtype=str)
    raw = raw.drop_duplicates()  # exactly repeated lines are rejected by the preset
    mine = raw[(raw.CustomerID == "17850.0") & ~raw.InvoiceNo.str.startswith(("C", "A"))]
    mine = mine.assign(value=mine.Quantity.astype(int) * mine.UnitPrice.astype(float))
    when = (
        pd.to_datetime(mine.InvoiceDate)
        .dt.tz_localize("Europe/London")
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
    )
    invoices = (
        mine.assign(when=when)
        .groupby("InvoiceNo")
        .agg(when=("when", "min"), value=("value", "sum"))
    )
    assert row.frequency == len(invoices) == 34
    assert row.monetary == pytest.approx(invoices.value.sum(), abs=1e-6)
    recency = (as_of - invoices.when.max()).total_seconds() / 86400
    assert row.recency_days == pytest.approx(recency, abs=1e-6)
    refunds = raw[(raw.CustomerID == "17850.0") & raw.InvoiceNo.str.startswith("C")]
    assert row.refund_orders == refunds.InvoiceNo.nunique()
    wh.close()


def test_no_leakage_rows_after_as_of_change_nothing(sim) -> None:
    wh, shop = sim
    as_of = datetime.fromisoformat(str(shop.params["start"])) + timedelta(days=150)
    before = _frame(customer_features(wh, as_of))
    con = wh.con
    # Copy every row dated at or after as_of again, shifted further into the future and with
    # fresh keys: a leaking feature would count them.
    late = lambda t, col: f"SELECT * FROM {t} WHERE {col} >= TIMESTAMP '{as_of}'"  # noqa: E731
    con.raw_sql(f"""INSERT INTO "order" SELECT 'L' || order_id, customer_id,
        ordered_at + INTERVAL 1 DAY, status, currency, refund_of
        FROM ({late('"order"', "ordered_at")})""")
    con.raw_sql("""INSERT INTO order_line SELECT 'L' || l.order_id, line_number, product_id,
        quantity, unit_price FROM order_line l JOIN "order" o ON 'L' || l.order_id = o.order_id""")
    con.raw_sql(f"""INSERT INTO event SELECT 'L' || message_id, type, event, customer_id,
        user_id, anonymous_id, email, occurred_at, session_id, product_id, properties, identity
        FROM ({late("event", "occurred_at")})""")
    con.raw_sql(f"""INSERT INTO email_event SELECT 'L' || event_id, customer_id, email, message_id,
        campaign_id, variant, type, occurred_at, url, user_agent, is_machine, reason
        FROM ({late("email_event", "occurred_at")})""")
    con.raw_sql(f"""INSERT INTO customer SELECT 'L' || customer_id, email, first_name, last_name,
        TIMESTAMP '{as_of}', country, city, timezone, attributes FROM customer LIMIT 50""")
    con.raw_sql(f"""INSERT INTO consent SELECT customer_id, 'email', 'marketing', 'withdrawn',
        'test', TIMESTAMP '{as_of}' FROM customer WHERE customer_id NOT LIKE 'L%'""")
    assert (
        int(con.raw_sql("SELECT count(*) FROM \"order\" WHERE order_id LIKE 'L%'").fetchone()[0])
        > 0
    )
    after = _frame(customer_features(wh, as_of))
    pd.testing.assert_frame_equal(before, after)
    changed = _frame(customer_features(wh, as_of + timedelta(days=60)))
    assert not changed.frequency.equals(before.frequency)  # the data was there to leak


def test_features_agree_with_the_simulators_truth(sim) -> None:
    wh, shop = sim
    end = datetime.fromisoformat(str(shop.params["end"]))
    f = customer_features(wh, end).to_pandas().set_index("customer_id")
    truth = shop.truth.to_pandas().set_index("customer_id")
    both = f.join(truth, how="inner", suffixes=("", "_true"))
    rho = both.frequency.rank().corr(both.purchase_rate.rank())
    assert rho > 0.3, rho
    buyers = both[both.frequency >= 4]
    assert len(buyers) > 50
    match = (buyers.favourite_category == buyers.favourite_category_true).mean()
    assert match > 0.5, match
    dead = both[~both.alive_at_end.astype(bool)]
    alive = both[both.alive_at_end.astype(bool)]
    assert dead.recency_days.median() > alive.recency_days.median()


def test_training_labels_match_the_orders(sim) -> None:
    wh, shop = sim
    as_of = datetime.fromisoformat(str(shop.params["start"])) + timedelta(days=120)
    ts = training_set(wh, as_of, horizon_days=30).to_pandas().set_index("customer_id")
    orders = wh.table("order").to_pandas()
    window = orders[
        (orders.ordered_at >= as_of)
        & (orders.ordered_at < as_of + timedelta(days=30))
        & (orders.status == "completed")
    ]
    counts = window.groupby("customer_id").size()
    expected = counts.reindex(ts.index).fillna(0).astype(int)
    assert (ts.label_orders == expected).all()
    assert (ts.label_purchased == (expected > 0)).all()
    active = ts.recency_days.notna() & (ts.recency_days <= 365)
    assert ts.label_churned[~active].isna().all()
    assert (ts.label_churned[active].astype(bool) == (expected[active] == 0)).all()
    with pytest.raises(InputError, match="ends after the last order"):
        training_set(wh, datetime.fromisoformat(str(shop.params["end"])), horizon_days=30)


PG_URL = os.environ.get("SENDWISE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not PG_URL, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
def test_same_features_on_duckdb_and_postgres(sim) -> None:
    import ibis

    wh, shop = sim
    pg = ibis.connect(PG_URL)
    for name in ("customer", "product", "order", "order_line", "event", "email_event", "consent"):
        pg.create_table(name, wh.table(name).to_pyarrow(), overwrite=True)
    as_of = datetime.fromisoformat(str(shop.params["start"])) + timedelta(days=200)
    on_duck = _frame(customer_features(wh, as_of))
    on_pg = _frame(customer_features(pg, as_of))
    assert list(on_pg.columns) == feature_columns()
    for col in on_duck.columns:
        a, b = on_duck[col], on_pg[col]
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), rtol=1e-9, atol=1e-6, err_msg=col
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col
    pg.disconnect()
