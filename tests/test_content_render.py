"""Rendering the starter templates for every customer of a simulated shop: valid MIME, both
parts, subject, unsubscribe link, no "None", no empty blocks; variant counts against pandas."""

from __future__ import annotations

import email
import os
import re
from email import policy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from content_shop import add_stand_in_scores, build_shop
from sendwise.content.render import DefaultLinks, Renderer, preview
from sendwise.content.starters import FOLDER, NAMES
from sendwise.delivery.previews import preview_eml, render_demo
from sendwise.errors import NotFoundError

EMPTY_BLOCK = re.compile(r"<(p|h1|h2|td|a|strong)\b[^>]*>\s*</\1>")
ATTR = re.compile(r'\b(href|src|alt)="([^"]*)"')


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    settings, wh, simulated = build_shop(tmp_path_factory.mktemp("content") / "shop")
    add_stand_in_scores(wh)
    yield settings, wh, simulated
    wh.close()


def check_message(raw: bytes, first_name: str | None, unsubscribe: str) -> None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert not msg.defects
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert msg["Subject"].strip()
    html, text = parts["text/html"], parts["text/plain"]
    for body in (html, text, str(msg["Subject"])):
        assert "None" not in body
        assert "Undefined" not in body
    assert f'href="{unsubscribe}"' in html
    assert unsubscribe in text
    assert not EMPTY_BLOCK.search(html), EMPTY_BLOCK.search(html).group(0)
    for attr, value in ATTR.findall(html):
        assert value.strip(), f"empty {attr}"
        if attr == "href":
            assert value.startswith(("https://", "mailto:")), value
    if first_name:
        assert str(escape(first_name)) in html


@pytest.mark.parametrize("template", NAMES)
def test_every_starter_renders_for_every_customer(shop, template: str) -> None:
    settings, wh, _ = shop
    renderer = Renderer(settings, wh)
    rows = wh.table("profile").select("customer_id", "first_name").to_pyarrow().to_pylist()
    names = {r["customer_id"]: r["first_name"] for r in rows}
    assert None in names.values()  # the simulated shop has customers without a first name
    links = DefaultLinks(renderer)
    rendered = list(renderer.render_many(template, list(names), links=links))
    assert [cid for cid, _ in rendered] == list(names)
    for cid, message in rendered:
        raw = preview_eml(
            renderer, message, customer_id=cid, to=f"{cid}@example.com", links=links[cid]
        )
        check_message(raw, names[cid], links[cid]["unsubscribe"])
        assert settings.content.shop.postal_address in message.html
        assert message.text.strip() and message.preheader


def test_guide_score_table_counts_match_pandas(shop) -> None:
    settings, wh, _ = shop
    renderer = Renderer(settings, wh)
    counts = renderer.variant_counts("newsletter.html")["offer"]
    p = wh.table("profile").to_pandas()
    pp, churn = p.p_purchase.to_numpy(dtype=float), p.churn_risk.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares false, as a null does in a rule
        chosen = np.select(
            [(churn >= 0.7) | (pp < 0.3), pp > 0.8, pp >= 0.4],
            ["reengage", "premium", "browsing"],
            default="generic",
        )
    expected = pd.Series(chosen).value_counts().to_dict()
    assert counts == {k: expected.get(k, 0) for k in counts}
    assert sum(counts.values()) == len(p)
    assert all(n > 0 for n in counts.values())  # every row of the table is exercised
    # and each rendered message carries exactly the variant the count gave it
    seen = (
        pd.Series(
            [
                m.slots["offer"]
                for _, m in renderer.render_many(
                    "newsletter.html", list(p.customer_id), links=DefaultLinks(renderer)
                )
            ]
        )
        .value_counts()
        .to_dict()
    )
    assert seen == {k: v for k, v in counts.items() if v}


def test_recommendations_come_from_the_recommendation_table_then_bestsellers(shop) -> None:
    settings, wh, _ = shop
    lines = wh.table("order_line").to_pandas()
    products = wh.table("product").to_pandas().set_index("product_id")
    in_stock = products[products.in_stock.fillna(True)].index
    units = lines.groupby("product_id").quantity.sum().reindex(in_stock).fillna(0)
    renderer = Renderer(settings, wh)
    best = [p["id"] for p in renderer.bestsellers()[:3]]
    top_units = units.sort_values(ascending=False).iloc[:3].to_numpy()
    assert [units[b] for b in best] == list(top_units)

    cid = wh.table("profile").customer_id.to_pyarrow().to_pylist()[0]
    picks = [pid for pid in in_stock if pid not in best][:2]
    rec = pd.DataFrame(
        {
            "customer_id": [cid, cid],
            "rank": [1, 2],
            "product_id": picks[::-1],
            "score": [0.9, 0.8],
            "source": ["test", "test"],
        }
    )
    wh.con.create_table("recommendation", rec, overwrite=True)
    try:
        tokens = dict(Renderer(settings, wh).tokens("welcome.html", [cid]))[cid]
    finally:
        wh.con.drop_table("recommendation")
    ids = [p["id"] for p in tokens["recommendations"]]
    assert ids[:2] == picks[::-1]  # the recommender's, in rank order
    assert ids[2:] == [b["id"] for b in renderer.bestsellers() if b["id"] not in picks][:4]
    assert len(ids) == 6


def test_scores_not_built_yet_fall_back_to_the_default_variant(tmp_path: Path) -> None:
    settings, wh, _ = build_shop(tmp_path / "plain", customers=60, seed=2)
    with wh:
        renderer = Renderer(settings, wh)
        assert renderer.variant_counts("newsletter.html") == {
            "offer": {"reengage": 0, "premium": 0, "browsing": 0, "generic": 60}
        }
        one = wh.table("profile").customer_id.to_pyarrow().to_pylist()[0]
        message = renderer.render("newsletter.html", one, links=renderer.default_links(one))
        assert message.slots == {"offer": "generic"}
        with pytest.raises(NotFoundError):
            renderer.render("newsletter.html", "NOPE", links=renderer.default_links("NOPE"))
        written = render_demo(settings, wh, n=3)
        assert len(written) == 3 and all(p.exists() for _, p, _ in written)


def test_preview_uses_a_made_up_customer_and_the_real_rules(project) -> None:
    settings, _ = project
    renderer = Renderer(settings)
    shown = preview(renderer, "newsletter.html")
    assert "Alex" in shown.html and shown.slots == {"offer": "premium"}
    low = preview(renderer, "newsletter.html", {"p_purchase": 0.5})
    assert low.slots == {"offer": "browsing"}
    assert "None" not in low.html + low.text


def test_init_copies_the_starters(project) -> None:
    settings, _ = project
    folder = settings.path("templates")
    for name in NAMES:
        assert (folder / name).read_text() == (FOLDER / name).read_text()
    assert (folder / "blocks" / "footer.html").exists()


PG_URL = os.environ.get("SENDWISE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not PG_URL, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
def test_same_tokens_and_variants_on_postgres(shop) -> None:
    from sendwise.warehouse.connection import Warehouse

    settings, wh, _ = shop
    pg = Warehouse(str(PG_URL))
    try:
        for name in ("profile", "product", "order_line"):
            pg.con.create_table(name, wh.table(name).to_pyarrow(), overwrite=True)
        on_duck, on_pg = Renderer(settings, wh), Renderer(settings, pg)
        assert on_pg.variant_counts("newsletter.html") == on_duck.variant_counts("newsletter.html")
        ids = wh.table("profile").customer_id.to_pyarrow().to_pylist()[:50]
        duck = dict(on_duck.render_many("newsletter.html", ids, links=DefaultLinks(on_duck)))
        post = dict(on_pg.render_many("newsletter.html", ids, links=DefaultLinks(on_pg)))
        assert list(post) == ids
        for cid in ids:
            assert post[cid].slots == duck[cid].slots
            assert post[cid].subject == duck[cid].subject
            assert [p for p in duck[cid].html.split('href="') if "/p/" in p[:40]] == [
                p for p in post[cid].html.split('href="') if "/p/" in p[:40]
            ]
    finally:
        for name in ("profile", "product", "order_line"):
            pg.con.drop_table(name, force=True)
        pg.close()
