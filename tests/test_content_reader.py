"""The token reader (queries compiled once, rows converted column by column) gives exactly the
tokens of the row-by-row definition (data.split_row over the joined profile rows, then the
recommendations and the bestseller fallback), also after the tables change under it."""

from __future__ import annotations

import logging
import math

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content_shop import add_stand_in_scores, build_shop
from sendwise.content import data
from sendwise.content.reader import TokenRows
from sendwise.content.render import Renderer
from sendwise.content.slots import with_variants

# Python's spaces, RE2's ASCII ones, and characters that look like space but are not.
TEXT = st.text(alphabet=" \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u3000\u200bab-", max_size=4)


def reference_rows(table: pa.Table) -> list[dict]:
    """The rows as the renderer read them before: NaN as None, then one dict per row."""
    columns = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(col.type):
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
        columns[name] = col
    return pa.table(columns).to_pylist()


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), TEXT), min_size=3, max_size=3),
    number=st.one_of(st.none(), st.just(math.nan), st.floats(allow_nan=False)),
    reasons=st.one_of(st.none(), st.lists(TEXT, max_size=2)),
)
def test_token_rows_are_split_row(texts: list, number: float | None, reasons: list | None):
    first_name, segments, slot = texts
    table = pa.table(
        {
            "customer_id": ["c1"],
            "first_name": pa.array([first_name], pa.string()),
            "favourite_category": pa.array([first_name], pa.large_string()),
            "segments": pa.array([segments], pa.string()),
            "p_purchase": pa.array([number], pa.float64()),
            "top_reasons": pa.array([reasons], pa.list_(pa.string())),
            "_slot_offer": pa.array([slot], pa.string()),
        }
    )
    slots = {"offer": "_slot_offer"}
    expected = data.split_row(reference_rows(table)[0], slots)
    assert TokenRows(table, slots).tokens(0) == expected


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    settings_, wh, simulated = build_shop(tmp_path_factory.mktemp("reader") / "shop", 300, 7)
    yield settings_, wh, simulated
    wh.close()


def reference_tokens(renderer: Renderer, template: str, ids: list[str]) -> list[tuple]:
    """The tokens by the row-by-row definition, for ids that all have a profile."""
    spec = renderer.template(template).spec
    table, columns = with_variants(data.profile_table(renderer.wh), spec.slots, spec.name)
    rows = reference_rows(table.to_pyarrow())
    by_id = {r["customer_id"]: r for r in rows}
    n = spec.recommendations
    recs = data.recommendations_for(renderer.wh, renderer.settings, list(set(ids)), n)
    out = []
    for cid in ids:
        tokens = data.split_row(by_id[cid], columns)
        picks = recs.get(cid, [])
        have = {p["id"] for p in picks}
        extra = [b for b in renderer.bestsellers() if b["id"] not in have]
        tokens["recommendations"] = picks + extra[: n - len(picks)]
        out.append((cid, tokens))
    return out


def test_same_tokens_as_row_by_row_also_after_the_tables_change(shop, caplog) -> None:
    settings_, wh, _ = shop
    ids = wh.table("profile").customer_id.to_pyarrow().to_pylist()
    asked = [ids[5], "nobody", *ids[:40], ids[5]]  # order, an unknown and a repeated customer
    known = [c for c in asked if c != "nobody"]
    renderer = Renderer(settings_, wh)
    with caplog.at_level(logging.WARNING):
        got = list(renderer.tokens("newsletter.html", asked))
    assert got == reference_tokens(renderer, "newsletter.html", known)
    assert "1 customer(s) have no profile" in caplog.text
    assert got[0][1] is not got[-1][1]  # a repeated customer gets tokens of its own
    assert got[0][1]["scores"]["p_purchase"] is None  # typed null: not built yet

    # The same renderer after the scores arrive and a recommender has run.
    add_stand_in_scores(wh)
    products = wh.table("product").product_id.to_pyarrow().to_pylist()
    rec = pd.DataFrame(
        {
            "customer_id": [ids[0]] * 3 + [ids[1]] * 8,
            "rank": [*range(1, 4), *range(1, 9)],
            "product_id": products[:3] + products[10:18],
            "score": 0.5,
            "source": "test",
        }
    )
    wh.con.create_table("recommendation", rec, overwrite=True)
    try:
        for template in ("newsletter.html", "win-back.html"):
            got = list(renderer.tokens(template, known))
            assert got == reference_tokens(renderer, template, known)
        assert {t["slots"]["offer"] for _, t in got} >= {"reengage", "generic"}
        assert any(t["scores"]["p_purchase"] is not None for _, t in got)
        recommended = [p["id"] for p in dict(got)[ids[1]]["recommendations"]]
        assert recommended[:1] == products[10:11]
    finally:
        wh.con.drop_table("recommendation")
    every = dict(renderer.tokens("win-back.html", None))
    assert sorted(every) == sorted(ids)
    expected = reference_tokens(renderer, "win-back.html", known)
    assert [(c, every[c]) for c in known] == expected


def test_compiled_query_gives_the_rows_and_types_of_ibis(shop) -> None:
    from sendwise.content.reader import ChunkQuery

    _, wh, _ = shop
    ids = wh.table("profile").customer_id.to_pyarrow().to_pylist()[:30]
    table = data.profile_table(wh)
    fast = ChunkQuery(wh, lambda t: table.join(t, "customer_id")).run(ids)
    ibis_ids = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
    slow = table.join(ibis_ids, "customer_id").to_pyarrow()
    assert fast.schema == slow.schema
    assert fast.sort_by("customer_id").equals(slow.sort_by("customer_id"))


@settings(max_examples=500, deadline=None)
@given(
    text=st.lists(st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\xa0", "a", "b c"])).map("".join)
)
def test_tidy_is_the_regular_expression_it_replaced(text: str) -> None:
    import re

    from sendwise.content.htmltext import tidy

    by_regex = re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]*\n[ \t]*", "\n", text)).strip() + "\n"
    assert tidy(text) == by_regex


FIELD_CASES = {
    "{{ profile.a }} {{ profile['b'] }}": {"a", "b"},
    "{{ profile.a|default('x') }} {{ customer.first_name }} {{ profile.a.b }}": {"a"},
    "{{ profile }}": None,
    "{% set p = profile %}{{ p.a }}": None,
    "{{ profile[key] }}": None,
    "{{ profile.get('a') }}": {"get"},  # not a column: the reader then reads every column
    "{% for profile in recommendations %}{{ profile.name }}{% endfor %}": None,
    "{% macro m(profile) %}{{ profile.a }}{% endmacro %}": None,
    "{% include 'blocks/footer.html' %}": None,
}


@pytest.mark.parametrize(("source", "expected"), FIELD_CASES.items())
def test_profile_fields_are_only_named_ones(source: str, expected: set | None) -> None:
    from sendwise.content.fields import profile_fields
    from sendwise.content.sandbox import make_environment

    got = profile_fields(make_environment(html=False), [source])
    assert got == (None if expected is None else frozenset(expected))


def test_rendering_with_only_the_fields_used_gives_the_same_messages(shop) -> None:
    from sendwise.content.render import DefaultLinks
    from sendwise.content.starters import NAMES

    settings_, wh, _ = shop
    ids = wh.table("profile").customer_id.to_pyarrow().to_pylist()[:60]
    renderer = Renderer(settings_, wh)
    links = DefaultLinks(renderer)
    for template in NAMES:
        fields = renderer._fields(renderer.template(template))
        assert fields is not None and len(fields) < 5  # the starters name their few fields
        fast = list(renderer.render_many(template, ids, links=links))
        full = [
            (c, renderer.render_context(template, t, links[c]))
            for c, t in renderer.tokens(template, ids)
        ]
        assert fast == full


def test_the_blank_text_pattern_knows_every_space_python_strips() -> None:
    from sendwise.content.reader import SPACE_POINTS

    assert list(SPACE_POINTS) == [c for c in range(0x110000) if chr(c).isspace()]
