"""Adaptive allocation end to end: a campaign on a simulated shop sent in waves through the real
campaign library (SQLite store, outbox messenger), clicks recorded through the tracking path
with known click rates per variant (the ground truth), Thompson sampling moving the waves to
the better variant while the holdout stays the one drawn up front; reruns change nothing."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from rich.console import Console

from conftest import sql_store
from content_shop import build_shop
from sendwise.campaigns import create_campaign, parse_definition, send_campaign
from sendwise.campaigns.design import assign
from sendwise.campaigns.message_preview import campaign_message
from sendwise.campaigns.overview import campaign_status, preview_campaign
from sendwise.campaigns.rendering import make_renderer
from sendwise.campaigns.results import campaign_results
from sendwise.campaigns.results_plots import save_plots
from sendwise.campaigns.waves import WAITING, allot, placeholder, wave_of
from sendwise.cli.results_table import print_results
from sendwise.config import load_settings
from sendwise.delivery import make_messenger
from sendwise.errors import CampaignError, InputError
from sendwise.store import open_store
from sendwise.store.memory import MemoryStore
from sendwise.store.records import utcnow
from sendwise.tracking.events import engagement
from sendwise.tracking.recorder import write_events
from sendwise.warehouse.connection import Warehouse

CLICK_RATE = {"A": 0.03, "B": 0.20}  # the ground truth: B is the better email
WAVES = 6
ADAPTIVE = {
    "name": "Waves of news",
    "audience": {"rule": "email is not null"},
    "holdout": 10,
    "quiet_hours": False,
    "variants": [
        {"name": "A", "template": "newsletter.html"},
        {"name": "B", "template": "win-back.html"},
    ],
    "allocation": {"method": "thompson", "waves": WAVES, "every": "1d", "metric": "click",
                   "floor": 0.05},
}  # fmt: skip
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("waves-shop")
    _, wh, _ = build_shop(folder, customers=1500, seed=8, days=150)
    wh.close()
    return folder


def _settings(shop: Path, tmp_path: Path):
    return load_settings(
        shop,
        store={"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
        delivery={"outbox": str(tmp_path / "outbox")},
    )


def _click(store, sent: pd.DataFrame, rng: np.random.Generator) -> int:
    """Each newly sent message is clicked with its variant's true rate, via the tracking path."""
    p = sent["variant"].map(CLICK_RATE).to_numpy(float)
    hit = sent[rng.random(len(sent)) < p]
    at = utcnow() + timedelta(hours=1)
    write_events(store, [engagement("click", k, user_agent=UA, ip="203.0.113.7",
                                    url="https://shop.example/", at=at)
                         for k in hit["message_key"]])  # fmt: skip
    return len(hit)


def _snapshot(store, cid: str, outbox: Path) -> tuple:
    frame = store.messages.plan_frame(cid).sort_values("message_key").reset_index(drop=True)
    events = len(store.events.for_campaign(cid, ["send", "click", "skipped"]))
    return frame, events, sorted(p.name for p in outbox.glob("*.eml"))


def test_thompson_waves_move_to_the_better_variant_and_keep_the_holdout(
    shop: Path, tmp_path: Path
) -> None:
    settings = _settings(shop, tmp_path)
    defn = parse_definition(ADAPTIVE)
    cid = defn.campaign_id
    rng = np.random.default_rng(3)
    t0 = datetime(2026, 3, 2, 9)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        messenger = make_messenger(settings)
        create_campaign(store, wh, settings, defn, renderer)
        shown = preview_campaign(store, wh, settings, defn.name, renderer, now=t0)
        assert {v for v, _, _ in shown.samples} == {"A", "B"}
        assert shown.by_variant[placeholder(2)] > 0  # later waves are counted, not rendered
        clicked: set[str] = set()
        for w in range(WAVES):
            now = t0 + timedelta(days=w, minutes=5)
            report = send_campaign(store, wh, settings, defn.name, renderer, messenger, now=now)
            frame = store.messages.plan_frame(cid)
            later = campaign_status(store, defn.name, now=now).pending_due_later
            assert later == (frame["status"] == WAITING).sum()
            if w == 0:
                first_plan = frame.copy()
                holdout = set(frame.loc[frame["variant"] == "holdout", "customer_id"])
                # the holdout is the fixed design's, drawn once up front
                drawn = assign(cid, frame["customer_id"].tolist(), defn.arms())
                assert holdout == set(frame["customer_id"][drawn == "holdout"])
            # a second run at the same time plans and sends nothing more
            again = send_campaign(store, wh, settings, defn.name, renderer, messenger, now=now)
            assert again.sent == 0
            pd.testing.assert_frame_equal(frame, store.messages.plan_frame(cid))
            waves = wave_of(cid, frame["customer_id"], WAVES)
            assert not frame["variant"].isin([placeholder(k) for k in range(1, w + 2)]).any()
            assert frame.loc[waves > w + 1, "status"].isin([WAITING, "skipped", "holdout"]).all()
            sent = frame[(frame["status"] == "sent") & ~frame["message_key"].isin(clicked)]
            assert report.sent == len(sent) > 0
            _click(store, sent, rng)
            clicked |= set(sent["message_key"])
        final = store.messages.plan_frame(cid)
        assert set(final.loc[final["variant"] == "holdout", "customer_id"]) == holdout
        # rows never move between customers, waves or the holdout; only placeholders change
        merged = first_plan.merge(final, on="message_key", suffixes=("_0", ""))
        assert len(merged) == len(final) == len(first_plan)
        assert (merged["customer_id_0"] == merged["customer_id"]).all()
        moved = merged["variant_0"] != merged["variant"]
        assert merged.loc[moved, "variant_0"].str.startswith("(wave").all()
        assert store.campaigns.get(cid).status == "done"

        res = campaign_results(store, wh, settings, defn.name)
        before = _snapshot(store, cid, tmp_path / "outbox")
        late = send_campaign(store, wh, settings, defn.name, renderer, messenger,
                             now=t0 + timedelta(days=30))  # fmt: skip
        assert late.sent == 0
        after = _snapshot(store, cid, tmp_path / "outbox")
    pd.testing.assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]

    alloc = res.allocation
    assert alloc is not None and list(alloc.index) == list(range(1, WAVES + 1))
    share_b = alloc["B"] / (alloc["A"] + alloc["B"])
    print("share of B by wave:", np.round(share_b.to_numpy(), 3).tolist())
    print("holdout share by wave:", np.round(alloc["holdout_share"].to_numpy(), 3).tolist())
    assert abs(share_b.iloc[0] - 0.5) <= 0.5 / (alloc["A"].iloc[0] + alloc["B"].iloc[0]) + 1e-9
    assert share_b.iloc[1:].max() > 0.8 and share_b.iloc[-1] > 0.8
    assert (alloc[["A", "B"]].div(alloc[["A", "B"]].sum(axis=1), axis=0) >= 0.05 - 0.02).all().all()
    n = alloc[["A", "B", "holdout"]].sum(axis=1)
    sd = np.sqrt(0.1 * 0.9 / n)
    assert ((alloc["holdout_share"] - 0.1).abs() < 4 * sd).all()
    seq = res.sequences
    assert seq is not None
    for arm, rate in CLICK_RATE.items():
        assert seq.at[arm, "low"] <= rate <= seq.at[arm, "high"]
    assert seq.at["B", "trials"] > 3 * seq.at["A", "trials"]
    assert not res.srm.mismatch
    console = Console(record=True, width=140)
    print_results(console, res)
    text = console.export_text()
    assert "allocation over time" in text and "always-valid" in text
    assert any("adaptive allocation" in note for note in res.notes)
    assert save_plots(res, tmp_path / "plots")  # what `campaign results` does next


@hyp_settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 400),
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4),
    st.integers(0, 10_000),
)
def test_allot_gives_exact_counts_whatever_the_order(n: int, weights: list, seed: int) -> None:
    from sendwise.uplift.bandit import split

    shares = {f"V{i}": w for i, w in enumerate(weights)}
    ids = [f"c{seed}-{i}" for i in range(n)]
    got = allot("camp", 3, ids, shares)
    total = sum(weights)
    want = split(n, {a: w / total for a, w in shares.items()})
    assert {a: int((got == a).sum()) for a in shares} == want
    perm = np.random.default_rng(seed).permutation(n)
    again = allot("camp", 3, [ids[i] for i in perm], shares)
    assert dict(zip(ids, got, strict=True)) == dict(zip([ids[i] for i in perm], again, strict=True))
    waves = wave_of("camp", ids, 5)
    assert set(waves.tolist()) <= {1, 2, 3, 4, 5}
    assert (wave_of("camp", ids[::-1], 5) == waves[::-1]).all()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):
    """The in-memory store and the SQL ones (conftest's sql_store)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


def test_a_wave_is_assigned_once(any_store) -> None:
    store = any_store
    from sendwise.campaigns.planning import Exclusions, plan
    from sendwise.campaigns.service import record_plan
    from sendwise.config import CampaignSettings
    from sendwise.store.repositories import CampaignRecord

    defn = parse_definition(ADAPTIVE)
    ids = [f"{i:05d}" for i in range(600)]
    audience = pd.DataFrame({"customer_id": ids, "email": [f"c{i}@example.com" for i in ids]})
    ex = Exclusions(pd.Series("granted", index=ids), pd.Series(dtype=str),
                    pd.Series(dtype="int64"))  # fmt: skip
    now = datetime(2026, 1, 1, 12)
    planned = plan(defn, audience, ex, CampaignSettings(quiet_start=None), now)
    waiting = planned[planned["status"] == WAITING]
    wave = waiting["variant"].str.extract(r"(\d+)")[0].astype(int)
    assert ((pd.to_datetime(waiting["scheduled_at"]) - now) == pd.to_timedelta(wave - 1, "D")).all()
    store.campaigns.save(CampaignRecord(defn.campaign_id, defn.name, "created",
                                        defn.model_dump(mode="json")), now)  # fmt: skip
    assert record_plan(store, defn.campaign_id, planned, now)
    two = planned[planned["variant"] == placeholder(2)]
    first = {k: "B" for k in two["message_key"]}
    templates = {"A": "newsletter.html", "B": "win-back.html"}
    assert store.messages.assign_wave(defn.campaign_id, placeholder(2), first, templates, now)
    other = {k: "A" for k in two["message_key"]}
    assert not store.messages.assign_wave(defn.campaign_id, placeholder(2), other, templates, now)
    frame = store.messages.plan_frame(defn.campaign_id)
    assert set(frame.loc[frame["message_key"].isin(first), "variant"]) == {"B"}
    assert set(frame.loc[frame["message_key"].isin(first), "status"]) == {"pending"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"every": "soon"}, "allocation.every: 'soon' is not a positive duration"),
        ({"metric": "open"}, "allocation.metric: Input should be 'click' or 'conversion'"),
        ({"floor": 0.6}, "allocation.floor"),
        ({"waves": 1}, "allocation.waves"),
        ({"method": "epsilon"}, "allocation.method"),
    ],
)
def test_a_bad_allocation_is_a_one_line_error(change: dict, message: str) -> None:
    with pytest.raises(CampaignError, match=message) as err:
        parse_definition({**ADAPTIVE, "allocation": {**ADAPTIVE["allocation"], **change}})
    assert "\n" not in str(err.value)


def test_adaptive_variants_take_no_fixed_shares() -> None:
    variants = [{"name": "A", "template": "a", "share": 60}, {"name": "B", "template": "b"}]
    with pytest.raises(CampaignError, match="chooses the variants' shares"):
        parse_definition({**ADAPTIVE, "variants": variants})
    with pytest.raises(CampaignError, match="two or more"):
        parse_definition({**ADAPTIVE, "variants": variants[1:]})
    stored = parse_definition(ADAPTIVE).model_dump(mode="json")
    assert parse_definition(stored).adaptive  # a stored definition reads back
    assert math.isclose(parse_definition(stored).variants[0].share or 0, 45)


def test_the_cli_refuses_a_bad_allocation_in_one_line(shop: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "Bad waves"\nholdout = 10\n[audience]\nrule = "email is not null"\n'
        '[[variants]]\nname = "A"\ntemplate = "newsletter.html"\n[[variants]]\nname = "B"\n'
        'template = "win-back.html"\n[allocation]\nmethod = "thompson"\nmetric = "opens"\n',
        encoding="utf-8",
    )
    r = subprocess.run(
        [sys.executable, "-m", "sendwise.cli", "campaign", "create", str(path), "--project",
         str(shop)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200",
             "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.db'}"},
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "allocation.metric" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_waves_on_conversions_use_attributed_orders(shop: Path, tmp_path: Path) -> None:
    """The conversion metric: wave 2 is planned from the warehouse's attributed orders, and the
    results give each variant's always-valid lift over the holdout."""
    settings = _settings(shop, tmp_path)
    allocation = {**ADAPTIVE["allocation"], "metric": "conversion", "waves": 3}
    defn = parse_definition({**ADAPTIVE, "name": "Waves on orders", "allocation": allocation})
    t0 = datetime(2026, 3, 2, 9)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        create_campaign(store, wh, settings, defn, renderer)
        for w in range(2):
            now = t0 + timedelta(days=w, minutes=5)
            send_campaign(store, wh, settings, defn.name, renderer, make_messenger(settings),
                          now=now)  # fmt: skip
        frame = store.messages.plan_frame(defn.campaign_id)
        assert not frame["variant"].isin([placeholder(1), placeholder(2)]).any()
        assert frame["variant"].eq(placeholder(3)).any()
        later = frame.loc[frame["status"] == WAITING, "customer_id"].iloc[0]
        with pytest.raises(InputError, match=r"is in \(wave 3\).*chosen when the wave is due"):
            campaign_message(store, wh, settings, defn.name, later, renderer)
        res = campaign_results(store, wh, settings, defn.name)
    seq = res.sequences
    assert seq is not None and {"A", "B", "holdout"} <= set(seq.index)
    for arm in ("A", "B"):
        assert seq.at[arm, "lift_low"] <= seq.at[arm, "lift"] <= seq.at[arm, "lift_high"]
    assert list(res.allocation.index) == [1, 2]


def test_the_cli_sends_wave_one_and_reports_the_allocation(shop: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "CLI waves"\nholdout = 10\nquiet_hours = false\n[audience]\n'
        'rule = "email is not null"\n[[variants]]\nname = "A"\ntemplate = "newsletter.html"\n'
        '[[variants]]\nname = "B"\ntemplate = "win-back.html"\n'
        '[allocation]\nmethod = "thompson"\nwaves = 3\nevery = "1d"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "COLUMNS": "200",
           "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.db'}",
           "SENDWISE_DELIVERY__OUTBOX": str(tmp_path / "out")}  # fmt: skip

    def cli(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "sendwise.cli", *args, "--project", str(shop)],
                           capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    cli("campaign", "create", str(path))
    first = cli("campaign", "send", "CLI waves")
    files = list((tmp_path / "out").glob("*.eml"))
    assert f"sent {len(files):,}, failed 0" in first.stdout and len(files) > 100
    assert "waiting" in first.stdout and "(wave 2)" in first.stdout  # the status table
    again = cli("campaign", "send", "CLI waves")
    assert "sent 0, failed 0" in again.stdout  # wave 2 is not due yet: nothing more
    assert len(list((tmp_path / "out").glob("*.eml"))) == len(files)
    results = cli("campaign", "results", "CLI waves")
    assert "allocation over time" in results.stdout and "always-valid" in results.stdout
