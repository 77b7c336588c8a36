"""Best send hour: recovers the simulator's true preferred hour, converts time zones (daylight
saving included) like zoneinfo does row by row, and falls back to segment and shop hours."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import ibis
import pandas as pd
import pytest

from sendwise.config import Settings, init_project, load_settings
from sendwise.errors import InputError
from sendwise.ingest.load import ingest
from sendwise.predict.send_hour import best_send_hours, engagement_hours
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

MIN_EVENTS = 5


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[Settings, Warehouse, pd.DataFrame, datetime]]:
    folder = tmp_path_factory.mktemp("sendhour")
    init_project(folder)
    settings = load_settings(folder)
    wh = Warehouse.from_settings(settings)
    sim = simulate_shop(customers=3000, days=365, seed=5)
    paths = sim.write(folder / "files")
    for name in LOADABLE:
        if name in paths:
            ingest(wh, settings, paths[name], table=name)
    truth = sim.truth.to_pandas() if hasattr(sim.truth, "to_pandas") else sim.truth
    end = datetime.combine(sim.params["end"], datetime.min.time())
    yield settings, wh, truth, end
    wh.close()


def _local_hours_by_zoneinfo(wh: Warehouse, as_of: datetime) -> pd.DataFrame:
    """The oracle: each human open/click converted on its own with zoneinfo, one per clock hour."""
    rows = wh.engine.execute(
        """select e.customer_id, e.occurred_at, c.timezone
           from email_event e join customer c using (customer_id)
           where e.type in ('open', 'click') and not coalesce(e.is_machine, false)
             and e.occurred_at < ?""",
        [as_of],
    ).fetchall()
    slots = {
        (cid, ts.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz or "UTC")).replace(
            tzinfo=None, minute=0, second=0, microsecond=0))
        for cid, ts, tz in rows
    }  # fmt: skip
    return pd.DataFrame([(cid, t.hour) for cid, t in slots], columns=["customer_id", "local_hour"])


def test_engagement_hours_agree_with_zoneinfo(shop) -> None:
    _, wh, _, end = shop
    ours = engagement_hours(wh, end)
    oracle = _local_hours_by_zoneinfo(wh, end)
    assert len(ours) == len(oracle) > 1000
    key = ["customer_id", "local_hour"]
    counted = ours.value_counts(key).sort_index()
    expected = oracle.value_counts(key).sort_index()
    pd.testing.assert_series_equal(counted, expected, check_index_type=False)


def test_best_send_hour_recovers_the_true_preferred_hour(shop) -> None:
    _, wh, truth, end = shop
    best = best_send_hours(wh, end, min_events=MIN_EVENTS)
    m = best.merge(truth[["customer_id", "preferred_hour"]], on="customer_id", validate="1:1")
    own = m[m["send_hour_source"] == "own"]
    gap = (own["best_send_hour"] - own["preferred_hour"]) % 24
    exact = float((gap == 0).mean())
    within_one = float(gap.isin([0, 1, 23]).mean())
    fallback = m[m["send_hour_source"] != "own"]
    fallback_exact = float((fallback["best_send_hour"] == fallback["preferred_hour"]).mean())
    print(
        f"\nsend hour, {len(own)} customers with >= {MIN_EVENTS} engagements: "
        f"exact {exact:.1%}, within 1 hour {within_one:.1%}; "
        f"{len(fallback)} fallback customers exact {fallback_exact:.1%}"
    )
    # The simulator reads ~71% of emails at the preferred local hour (80% on it, 10% either
    # side, 12% at a random hour), so five or more reads nearly always peak on it.
    assert len(own) > 100
    assert exact > 0.85
    assert within_one > 0.95
    assert (own["engagements"] >= MIN_EVENTS).all()
    # the population's single favourite hour fits only a minority of customers
    assert fallback_exact < 0.35


def test_every_customer_gets_one_hour_in_range(shop) -> None:
    _, wh, _, end = shop
    best = best_send_hours(wh, end)
    customers = wh.engine.execute(
        "select count(*) from customer where created_at is null or created_at < ?", [end]
    ).fetchone()[0]
    assert len(best) == best["customer_id"].nunique() == customers
    assert best["best_send_hour"].between(0, 23).all()
    assert set(best["send_hour_source"].unique()) == {"own", "shop"}  # no segments given
    assert list(best.columns) == [
        "customer_id",
        "best_send_hour",
        "send_hour_source",
        "engagements",
    ]


def test_segment_and_shop_fallbacks(shop) -> None:
    _, wh, _, end = shop
    customers = wh.table("customer").select("customer_id", "country").to_pandas()
    segments = customers.set_index("customer_id")["country"].astype(object).sort_index()
    tiny = segments.index[:3]
    segments[tiny] = "tiny"  # too few engagements: falls back to the shop
    segments = segments.drop(segments.index[3:13])  # no segment at all: the shop
    best = best_send_hours(wh, end, segments=segments, min_segment_events=50)

    oracle = _local_hours_by_zoneinfo(wh, end)
    own_n = oracle.groupby("customer_id").size()
    shop_hour = int(oracle["local_hour"].value_counts().sort_index().idxmax())
    labelled = oracle.assign(segment=oracle["customer_id"].map(segments))
    per_segment = labelled.groupby("segment")["local_hour"]
    size = per_segment.size()
    usable = size[size >= 50].index
    hour_of = per_segment.agg(lambda h: int(h.value_counts().sort_index().idxmax()))

    b = best.set_index("customer_id")
    few = b.index[b.index.map(own_n).fillna(0) < MIN_EVENTS]
    assert (b.loc[few, "send_hour_source"] != "own").all()
    seg = segments.reindex(few)
    expect_segment = few[seg.isin(usable).to_numpy()]
    expect_shop = few.difference(expect_segment)
    assert len(expect_segment) > 1000 and len(expect_shop) >= 10
    assert (b.loc[expect_segment, "send_hour_source"] == "segment").all()
    expected_hours = seg[expect_segment].map(hour_of).astype(int)
    assert (b.loc[expect_segment, "best_send_hour"] == expected_hours).all()
    assert (b.loc[expect_segment, "engagements"] == seg[expect_segment].map(size)).all()
    assert (b.loc[expect_shop, "send_hour_source"] == "shop").all()
    assert (b.loc[expect_shop, "best_send_hour"] == shop_hour).all()
    assert (b.loc[expect_shop, "engagements"] == len(oracle)).all()
    assert set(b.loc[tiny, "send_hour_source"]) <= {"own", "shop"}


PG_URL = os.environ.get("SENDWISE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not PG_URL, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
def test_same_hours_on_duckdb_and_postgres(shop) -> None:
    _, wh, _, end = shop
    pg = ibis.connect(PG_URL)
    try:
        for name in ("customer", "email_event"):
            pg.create_table(name, wh.table(name).to_pyarrow(), overwrite=True)
        on_pg = best_send_hours(pg, end).sort_values("customer_id", ignore_index=True)
    finally:
        pg.disconnect()
    on_duck = best_send_hours(wh, end).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(on_duck, on_pg)


# --- hand-made data on a bare Ibis DuckDB backend --------------------------------------------


def _backend(customers: list[tuple], events: list[tuple]) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    con.create_table(
        "customer",
        pd.DataFrame(customers, columns=["customer_id", "timezone", "created_at"]).astype(
            {"created_at": "datetime64[us]", "timezone": "string"}
        ),
    )
    con.create_table(
        "email_event",
        pd.DataFrame(events, columns=["customer_id", "type", "occurred_at", "is_machine"]).astype(
            {"occurred_at": "datetime64[us]", "is_machine": "boolean"}
        ),
    )
    return con


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_daylight_saving_default_zone_and_filters() -> None:
    con = _backend(
        [
            ("berlin", "Europe/Berlin", _ts("2024-01-01")),
            ("nozone", None, _ts("2024-01-01")),
            ("late", "UTC", _ts("2025-12-01")),  # signs up after as_of: no row
        ],
        [
            ("berlin", "open", _ts("2025-01-15 07:30"), False),  # CET: 08 local
            ("berlin", "click", _ts("2025-01-15 07:31"), False),  # same hour: counts once
            ("berlin", "open", _ts("2025-07-15 07:30"), False),  # CEST: 09 local
            ("berlin", "open", _ts("2025-07-16 07:30"), True),  # machine open: ignored
            ("berlin", "delivered", _ts("2025-07-17 07:30"), False),  # not an engagement
            ("berlin", "open", _ts("2025-11-01 07:30"), False),  # at as_of: not before it
            ("nozone", "open", _ts("2025-03-01 02:45"), None),  # Kolkata +05:30: 08 local
            ("ghost", "open", _ts("2025-03-01 02:45"), False),  # not a known customer
        ],
    )
    as_of = "2025-11-01 07:30:00"
    hours = engagement_hours(con, as_of, default_timezone="Asia/Kolkata")
    got = sorted(zip(hours["customer_id"], hours["local_hour"].tolist(), strict=True))
    assert got == [("berlin", 8), ("berlin", 9), ("nozone", 8)]
    best = best_send_hours(con, as_of, min_events=2, default_timezone="Asia/Kolkata")
    assert best.set_index("customer_id")["send_hour_source"].to_dict() == {
        "berlin": "own",
        "nozone": "shop",
    }
    assert best.set_index("customer_id")["engagements"].to_dict() == {"berlin": 2, "nozone": 3}


def test_the_prior_breaks_ties_toward_the_population() -> None:
    customers = [("tied", "UTC", None)] + [(f"c{i}", "UTC", None) for i in range(10)]
    events = [("tied", "open", _ts(f"2025-02-0{d} 08:10"), False) for d in (1, 2, 3)]
    events += [("tied", "open", _ts(f"2025-02-0{d} 20:10"), False) for d in (4, 5, 6)]
    events += [(f"c{i}", "open", _ts("2025-02-07 20:05"), False) for i in range(10)]
    con = _backend(customers, events)
    with_prior = best_send_hours(con, "2025-03-01", min_events=5).set_index("customer_id")
    assert with_prior.loc["tied", "best_send_hour"] == 20
    assert with_prior.loc["tied", "send_hour_source"] == "own"
    assert with_prior.loc["c0", "best_send_hour"] == 20  # the shop's hour
    no_prior = best_send_hours(con, "2025-03-01", min_events=5, prior_weight=0.0)
    assert no_prior.set_index("customer_id").loc["tied", "best_send_hour"] == 8  # earliest
    # one extra engagement outweighs the prior at its default weight of one
    events.append(("tied", "open", _ts("2025-02-08 08:20"), False))
    again = best_send_hours(_backend(customers, events), "2025-03-01", min_events=5)
    assert again.set_index("customer_id").loc["tied", "best_send_hour"] == 8


def test_unknown_zones_fall_back_and_bad_arguments_fail() -> None:
    con = _backend([("x", "Mars/Olympus", None)], [("x", "open", _ts("2025-02-01 08:10"), False)])
    hours = engagement_hours(con, "2025-03-01", default_timezone="America/New_York")
    assert hours["local_hour"].tolist() == [3]  # 08:10 UTC is 03:10 in New York in February
    with pytest.raises(InputError, match="IANA"):
        best_send_hours(con, "2025-03-01", default_timezone="Nowhere/Else")
    with pytest.raises(InputError, match="min_events"):
        best_send_hours(con, "2025-03-01", min_events=0)
    with pytest.raises(InputError, match="segments"):
        best_send_hours(con, "2025-03-01", segments={"x": "a"})  # type: ignore[arg-type]


def test_no_engagement_at_all_uses_the_default_hour() -> None:
    con = _backend(
        [("a", "UTC", None), ("b", None, None)], [("a", "delivered", _ts("2025-01-01"), False)]
    )
    best = best_send_hours(con, "2025-03-01", default_hour=9)
    assert best["best_send_hour"].tolist() == [9, 9]
    assert best["send_hour_source"].tolist() == ["shop", "shop"]
    assert best["engagements"].tolist() == [0, 0]
