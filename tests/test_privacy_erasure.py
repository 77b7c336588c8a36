"""Issue 18's acceptance on a simulated shop after a build, a campaign and tracking: export of
one customer equals what the warehouse and the store hold (read here independently), and after
erasure no byte of the project folder names them (warehouse and store files included), a
re-import of the old files and a rebuild do not bring them back, and a campaign to everyone
leaves them out."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sendwise.build import run_build
from sendwise.config import init_project, load_settings
from sendwise.delivery.previews import render_demo
from sendwise.demo import demo_campaign, demo_responses, load_tables
from sendwise.ingest.load import ingest
from sendwise.privacy.export import export
from sendwise.privacy.service import erase
from sendwise.simulate import simulate_shop
from sendwise.store import open_store
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE

pytestmark = pytest.mark.slow

FIRST, LAST = "Zebulonia", "Quaxtrelle"
EMAIL = "zebulonia.quaxtrelle@privacy-test.example"


def _target(shop) -> str:
    """The biggest spender among the customers who consented (render_demo previews them)."""
    lines = shop.tables["order_line"].to_pandas()
    orders = shop.tables["order"].to_pandas()[["order_id", "customer_id"]]
    spend = lines.assign(v=lines.quantity * lines.unit_price).merge(orders, on="order_id")
    consent = shop.tables["consent"].to_pandas()
    granted = set(consent.loc[consent.status == "granted", "customer_id"])
    ranked = spend.groupby("customer_id").v.sum().sort_values(ascending=False)
    return next(c for c in ranked.index if c in granted)


def _rename(shop, cid: str) -> None:
    """Give the target a name and address no other byte of the project can contain."""
    t = shop.tables["customer"]
    mine = pc.equal(t["customer_id"], cid)
    for col, value in (("first_name", FIRST), ("last_name", LAST), ("email", EMAIL)):
        i = t.schema.get_field_index(col)
        t = t.set_column(i, col, pc.if_else(mine, pa.scalar(value), t[col]))
    shop.tables["customer"] = t
    ee = shop.tables["email_event"]
    if "email" in ee.column_names:
        i = ee.schema.get_field_index("email")
        ee = ee.set_column(
            i, "email", pc.if_else(pc.equal(ee["customer_id"], cid), pa.scalar(EMAIL), ee["email"])
        )
        shop.tables["email_event"] = ee


def _hits(root: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out += [(str(path.relative_to(root)), n) for n in needles if n in data]
    return out


def _duck(path: Path, sql: str, params: list) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _campaign_to_everyone(settings, wh, name: str) -> str:
    """demo_campaign's campaign (everyone with an address) under a name of our own."""
    from sendwise.campaigns import create_campaign, load_definition, plan_campaign, send_campaign
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.delivery import make_messenger
    from sendwise.demo import DEMO_CAMPAIGN
    from sendwise.profiles.build import end_of_data

    path = settings.path("campaigns", "everyone.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_CAMPAIGN.format(name=name), encoding="utf-8")
    now = end_of_data(wh)
    with open_store(settings) as store:
        renderer = make_renderer(settings, wh)
        create_campaign(store, wh, settings, load_definition(path), renderer)
        plan_campaign(store, wh, settings, name, now)
        send_campaign(
            store, wh, settings, name, renderer, make_messenger(settings, "outbox"), now=now
        )
    return name


def make_shop(base: Path) -> tuple[Path, str]:
    """A project after a build, previews, a campaign and tracking; the input files also kept
    in ``base/old-files`` (outside the project). Returns the project folder and the target."""
    root = base / "shop"
    init_project(root)
    settings = load_settings(root)
    shop = simulate_shop(customers=600, days=365, seed=42)  # test_demo's shop
    cid = _target(shop)
    _rename(shop, cid)
    paths = shop.write(settings.path("simulated"))
    shutil.copytree(settings.path("simulated"), base / "old-files")
    load_tables(settings, paths)
    with Warehouse.from_settings(settings) as wh:
        run_build(wh, settings)
        previews = render_demo(settings, wh, n=3)
        campaign = demo_campaign(settings, wh)
        demo_responses(settings, wh, shop.truth, campaign.name)
    assert cid in {c for c, _, _ in previews}
    return root, cid


def test_export_then_erase_reaches_every_copy(tmp_path: Path) -> None:
    root, cid = make_shop(tmp_path)
    check_export_and_erasure(root, cid, tmp_path / "old-files")


def check_export_and_erasure(root: Path, cid: str, old: Path) -> None:
    settings = load_settings(root)
    needles = [cid.encode(), EMAIL.encode(), FIRST.encode(), LAST.encode()]
    assert {n for _, n in _hits(root, needles)} >= {cid.encode(), EMAIL.encode()}

    # -- export equals what the warehouse and the store hold --------------------------------
    wh_file, st_file = root / "warehouse.duckdb", root / "store.sqlite"
    orders = {
        r[0] for r in _duck(wh_file, 'SELECT order_id FROM "order" WHERE customer_id = ?', [cid])
    }
    events = _duck(wh_file, "SELECT count(*) FROM event WHERE customer_id = ?", [cid])[0][0]
    email_events = _duck(wh_file, "SELECT count(*) FROM email_event WHERE customer_id = ?", [cid])[
        0
    ][0]
    prediction = _duck(
        wh_file,
        "SELECT p_purchase, churn_risk, clv_12m, top_reasons FROM prediction WHERE customer_id = ?",
        [cid],
    )[0]
    with sqlite3.connect(st_file) as con:
        messages = {
            r[0]
            for r in con.execute("SELECT message_key FROM message WHERE customer_id = ?", [cid])
        }
        st_events = con.execute(
            "SELECT count(*) FROM email_event WHERE customer_id = ?", [cid]
        ).fetchone()[0]
        consents = con.execute(
            "SELECT count(*) FROM consent WHERE customer_id = ?", [cid]
        ).fetchone()[0]
    assert orders and events and messages and prediction[0] is not None
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        doc = export(settings, cid, wh=wh, store=store)
    w, s = doc["warehouse"], doc["store"]
    assert {r["order_id"] for r in w["order"]} == orders
    assert {r["order_id"] for r in w["order_line"]} == orders
    assert len(w["event"]) == events and len(w["email_event"]) == email_events
    assert {r["message_key"] for r in s["message"]} == messages
    # a target the demo campaign held out has no email events in the store: the export has none
    assert len(s.get("email_event", [])) == st_events and len(s.get("consent", [])) == consents
    assert (
        len(w["consent"])
        == _duck(wh_file, "SELECT count(*) FROM consent WHERE customer_id = ?", [cid])[0][0]
    )
    (p,) = w["prediction"]
    assert p["p_purchase"] == pytest.approx(prediction[0]) and p["clv_12m"] == pytest.approx(
        prediction[2]
    )
    assert p["top_reasons"] == list(prediction[3])
    assert w["customer"][0]["email"] == EMAIL
    assert any("Prediction p_purchase" in line for line in doc["summary"])
    assert doc["consent_state"]["email/marketing"]["status"] in ("granted", "withdrawn")

    # -- erasure ------------------------------------------------------------------------------
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        report = erase(settings, [cid], wh=wh, store=store)
    assert report.warehouse["order"] == len(orders) and report.rewritten
    assert _hits(root, needles) == []
    with open_store(settings) as store:
        (audit,) = [r for r in store.privacy.audit_log() if r["action"] == "erase"]
        assert audit["subjects"] == 1 and len(store.privacy.tombstones()) == 2

    # -- the old files again, forced, and a rebuild: still gone --------------------------------
    with Warehouse.from_settings(settings) as wh:
        for name in LOADABLE:
            if (old / f"{name}.parquet").exists():
                rep = ingest(wh, settings, old / f"{name}.parquet", table=name, force=True)
                if name == "customer":
                    assert rep.rejects_by_rule.get("erased") == 1
        run_build(wh, settings)
        name = _campaign_to_everyone(settings, wh, "Everyone after the erasure")
    assert _duck(wh_file, "SELECT count(*) FROM customer WHERE customer_id = ?", [cid]) == [(0,)]
    with open_store(settings) as store:
        record = store.campaigns.get(name)
        assert record is not None
        plan = store.messages.plan_frame(record.campaign_id)
        assert len(plan) > 200 and cid not in set(plan["customer_id"])
    assert _hits(root, needles) == []
