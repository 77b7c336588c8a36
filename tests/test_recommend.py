"""Recommenders on data with a known answer: the checkerboard (each collaborative algorithm must
rank the one held-out item first), metrics against hand-computed values, business rules as
properties over random shops, and the real-time path (answer changes, under 10 ms)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from sendwise.config import RecommendSettings
from sendwise.recommend import (
    ALS,
    BuyAgain,
    Content,
    CoOccurrence,
    Engine,
    Hybrid,
    Interactions,
    Popularity,
    fit_components,
)
from sendwise.recommend.engine import hybrid_of, make_rules
from sendwise.recommend.metrics import average_precision, ranking_metrics
from sendwise.recommend.rules import Rules

N = 40  # customers and products of the checkerboard


def checkerboard() -> Interactions:
    """Even customers bought and viewed every even product, odd ones every odd product, except
    that customer u never touched product u (held out). Names say 'even' or 'odd'."""
    pairs = pd.DataFrame(
        [(f"c{u}", f"p{i}") for u in range(N) for i in range(N) if u % 2 == i % 2 and u != i],
        columns=["customer_id", "product_id"],
    )
    pairs["viewed"] = 1.0
    catalogue = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(N)],
            "name": ["even lamp" if i % 2 == 0 else "odd kettle" for i in range(N)],
            "price": 10.0,
        }
    )
    return Interactions.from_pairs(pairs, catalogue=catalogue)


COLLABORATIVE = {
    "bought_together": lambda: CoOccurrence("bought", neighbours=10),
    "viewed_together": lambda: CoOccurrence("viewed", neighbours=10),
    # rank 2 is the true rank of the checkerboard
    "als": lambda: ALS(factors=2, iterations=30, regularization=0.01, seed=1),
    "hybrid": lambda: Hybrid(
        {
            "bought_together": CoOccurrence("bought", neighbours=10),
            "als": ALS(factors=2, iterations=30, regularization=0.01, seed=1),
            "content": Content(),
        }
    ),
}


@pytest.mark.parametrize("name", sorted(COLLABORATIVE))
def test_checkerboard_held_out_item_comes_first(name: str) -> None:
    algo = COLLABORATIVE[name]().fit(checkerboard())
    firsts = [algo.recommend(f"c{u}", 3, exclude_bought=True)[0][0] for u in range(N)]
    assert firsts == [f"p{u}" for u in range(N)]


def test_checkerboard_through_the_engine_with_rules_and_fallbacks() -> None:
    data = checkerboard()
    cfg = RecommendSettings(k=5, exclude_bought=True, max_per_category=None)
    components = fit_components(data, cfg.model_copy(update={"factors": 2, "seed": 1}))
    engine = Engine(
        hybrid_of(components, cfg, {"bought_together": 1.0, "viewed_together": 1.0}),
        make_rules(data, cfg, exclude_bought=True),
        components,
        k=5,
    )
    frame = engine.recommend_many([f"c{u}" for u in range(N)])
    assert (frame.groupby("customer_id").size() == 5).all()  # K each, fallbacks fill
    first = frame[frame["rank"] == 1].set_index("customer_id")["product_id"]
    assert all(first[f"c{u}"] == f"p{u}" for u in range(N))
    assert set(frame["source"]) <= {"bought_together", "viewed_together", "fallback:popularity"}


def test_the_interface_speaks_ids_and_checks_fitting() -> None:
    with pytest.raises(NotFittedError):
        ALS().recommend("c0")
    algo = Popularity().fit(checkerboard())
    recs = algo.recommend("somebody new", 3)
    assert [type(p) for p, _ in recs] == [str, str, str]
    many = algo.recommend_many(["c0", "c1"], 2)
    assert list(many.columns) == ["customer_id", "rank", "product_id", "score"]
    assert many["product_id"].str.startswith("p").all()


def test_buy_again_ranks_repeat_and_recent_purchases_first() -> None:
    pairs = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "product_id": ["x", "y", "z", "x"],
            "purchases": [3.0, 0.5, 1.0, 1.0],
        }
    )
    algo = BuyAgain().fit(Interactions.from_pairs(pairs))
    assert [p for p, _ in algo.recommend("a", 5)] == ["x", "z", "y"]
    assert algo.recommend("nobody", 5) == []  # no opinion: the fallback chain answers


def test_content_finds_the_new_products_of_the_same_kind() -> None:
    catalogue = pd.DataFrame(
        {
            "product_id": ["k1", "k2", "g1", "new-k"],
            "name": ["steel kettle", "glass teapot", "garden hose", "copper kettle"],
            "description": ["boils water", "brews tea", "waters plants", "boils water fast"],
            "category": ["Kitchen", "Kitchen", "Garden", "Kitchen"],
            "price": 20.0,
        }
    )
    pairs = pd.DataFrame({"customer_id": ["a"], "product_id": ["k1"]})
    algo = Content().fit(Interactions.from_pairs(pairs, catalogue=catalogue))
    assert algo.similar_products("k1", 1)[0][0] == "new-k"  # never bought by anyone
    assert algo.recommend("a", 1, exclude_bought=True)[0][0] == "new-k"


def test_content_without_any_word_has_no_opinion() -> None:
    catalogue = pd.DataFrame({"product_id": ["a", "b"], "name": ["123", "45-6"], "price": 1.0})
    pairs = pd.DataFrame({"customer_id": ["x"], "product_id": ["a"]})
    assert Content().fit(Interactions.from_pairs(pairs, catalogue=catalogue)).recommend("x") == []


def test_metrics_match_hand_computed_values() -> None:
    idx = np.array([[3, 1, 4, -1], [0, 2, 5, 6]])
    relevant = [np.array([1, 4, 9]), np.array([7])]
    # customer 0: hits at ranks 2 and 3 -> AP = (1/2 + 2/3) / min(4, 3) = 0.388888...
    ap = average_precision(idx, relevant, 4)
    assert ap == pytest.approx([(1 / 2 + 2 / 3) / 3, 0.0])
    m = ranking_metrics(idx, relevant, 4, n_products=10, item_share=np.full(10, 0.25))
    assert m["precision"] == pytest.approx((2 / 4 + 0) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["hit_rate"] == pytest.approx(0.5)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / ideal / 2)
    assert m["coverage"] == pytest.approx(7 / 10)
    assert m["novelty"] == pytest.approx(2.0)  # -log2(0.25)


@st.composite
def shops(draw):
    n_c = draw(st.integers(2, 12))
    n_p = draw(st.integers(12, 30))
    cells = draw(st.lists(st.tuples(st.integers(0, n_c - 1), st.integers(0, n_p - 1)), max_size=80))
    in_stock = draw(st.lists(st.booleans(), min_size=n_p, max_size=n_p))
    priced = draw(st.lists(st.booleans(), min_size=n_p, max_size=n_p))
    cats = draw(st.lists(st.sampled_from(["A", "B", "C", None]), min_size=n_p, max_size=n_p))
    pairs = pd.DataFrame(
        {
            "customer_id": [f"c{u}" for u, _ in cells] or ["c0"],
            "product_id": [f"p{i}" for _, i in cells] or ["p0"],
        }
    ).drop_duplicates()
    catalogue = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(n_p)],
            "name": [f"thing {c or 'misc'}" for c in cats],
            "category": cats,
            "price": [5.0 + i if ok else None for i, ok in enumerate(priced)],
            "in_stock": in_stock,
        }
    )
    customers = pd.DataFrame({"customer_id": [f"c{u}" for u in range(n_c)] + ["cold"]})
    return Interactions.from_pairs(pairs, customers=customers, catalogue=catalogue)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=shops(), exclude=st.booleans(), cap=st.sampled_from([None, 1, 2]))
def test_business_rules_hold_and_everyone_gets_k(data, exclude, cap) -> None:
    cfg = RecommendSettings(
        k=4,
        exclude_bought=exclude,
        max_per_category=cap,
        bury=["p1"],
        algorithms=["popularity", "buy_again", "bought_together", "content"],
    )
    components = fit_components(data, cfg)
    rules = make_rules(data, cfg, exclude)
    engine = Engine(hybrid_of(components, cfg, {}), rules, components, k=4)
    frame = engine.recommend_many(data.customers)
    cat = data.catalogue.set_index("product_id")
    chosen = cat.loc[frame["product_id"]]
    assert chosen["in_stock"].all() and (chosen["price"] > 0).all()
    assert "p1" not in set(frame["product_id"])
    assert not frame.duplicated(["customer_id", "product_id"]).any()
    allowed = int((rules.allowed).sum())
    per_customer = frame.groupby("customer_id").size().reindex(data.customers, fill_value=0)
    if exclude:
        bought = {
            (data.customers[r], data.products[c])
            for r, c in zip(*data.bought.nonzero(), strict=True)
        }
        assert not any(
            pair in bought for pair in zip(frame.customer_id, frame.product_id, strict=True)
        )
        # K whenever K products are left after the customer's own purchases
        for cust, n in per_customer.items():
            row = data.customer_pos[cust]
            left = allowed - int(data.bought[row].multiply(rules.allowed).sum())
            assert n == min(4, left)
    else:
        assert (per_customer == min(4, allowed)).all()


def test_at_most_n_per_category_until_nothing_else_is_left() -> None:
    pairs = pd.DataFrame(
        {
            "customer_id": [f"c{u}" for u in range(30) for _ in range(3)],
            "product_id": [f"a{i}" for _ in range(30) for i in range(3)],
        }
    )
    catalogue = pd.DataFrame(
        {
            "product_id": ["a0", "a1", "a2", "b0", "c0"],
            "name": "thing",
            "category": ["A", "A", "A", "B", None],
            "price": 1.0,
        }
    )
    data = Interactions.from_pairs(pairs, catalogue=catalogue)
    cfg = RecommendSettings(algorithms=["popularity"], max_per_category=2, exclude_bought=False)
    components = fit_components(data, cfg)
    engine = Engine(components["popularity"], make_rules(data, cfg, False), components, k=4)
    got = [r.product_id for r in engine.recommend("c0")]
    assert got[:2] == ["a0", "a1"] and set(got[2:]) == {"b0", "c0"}  # third A waits
    engine = Engine(components["popularity"], make_rules(data, cfg, False), components, k=5)
    assert [r.product_id for r in engine.recommend("c0")][-1] == "a2"  # cap gives way last


def test_boost_lifts_and_price_band_filters() -> None:
    data = checkerboard()
    cfg = RecommendSettings(algorithms=["popularity"], max_per_category=None)
    rules = Rules.build(data, boost={"p39": 100.0}, min_price=5, max_price=15)
    components = fit_components(data, cfg)
    engine = Engine(components["popularity"], rules, components, k=3)
    assert engine.recommend("c0")[0].product_id == "p39"
    expensive = Rules.build(data, min_price=11)
    engine = Engine(components["popularity"], expensive, components, k=3)
    assert engine.recommend("c0") == []


def test_real_time_answer_changes_and_is_fast() -> None:
    rng = np.random.default_rng(0)
    n_c, n_p = 3000, 2000
    # two worlds again: customers browse in one half of the catalogue
    half = rng.integers(0, 2, n_c)
    items = rng.integers(0, n_p // 2, (n_c, 8)) * 2 + half[:, None]
    pairs = pd.DataFrame(
        {
            "customer_id": np.repeat([f"c{u}" for u in range(n_c)], 8),
            "product_id": [f"p{i}" for i in items.ravel()],
        }
    ).drop_duplicates()
    catalogue = pd.DataFrame(
        {"product_id": [f"p{i}" for i in range(n_p)], "name": "thing", "price": 9.99}
    )
    data = Interactions.from_pairs(pairs, catalogue=catalogue)
    cfg = RecommendSettings(
        factors=16, iterations=8, alpha=2.0, max_per_category=None, exclude_bought=True
    )
    components = fit_components(data, cfg)
    engine = Engine(
        hybrid_of(components, cfg, {"als": 1.0, "viewed_together": 1.0, "bought_together": 1.0}),
        make_rules(data, cfg, True),
        components,
        k=10,
        event_weights=cfg.event_weights,
    )
    odd_customer = f"c{int(np.flatnonzero(half == 1)[0])}"
    before = engine.recommend(odd_customer)
    assert all(int(r.product_id[1:]) % 2 == 1 for r in before)
    evens = [("Product Viewed", f"p{i}") for i in range(0, 40, 2)] + [("purchase", "p2")]
    after = engine.recommend(odd_customer, fresh=evens)
    assert [r.product_id for r in after] != [r.product_id for r in before]
    assert sum(int(r.product_id[1:]) % 2 == 0 for r in after) >= 5
    assert "p2" not in {r.product_id for r in after}  # just bought: excluded
    new = engine.recommend("just-signed-up", fresh=["p4", "p6"])
    assert len(new) == 10
    timings = []
    for i in range(60):
        started = time.perf_counter()
        engine.recommend(f"c{i}", fresh=[("Product Viewed", f"p{i}")])
        timings.append(time.perf_counter() - started)
    assert np.median(timings[10:]) < 0.010, f"median {np.median(timings[10:]) * 1000:.1f} ms"


def test_real_time_als_solve_equals_implicits_recalculation() -> None:
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 300, 3000)],
            "product_id": [f"p{i}" for i in rng.integers(0, 200, 3000)],
            "confidence": rng.random(3000) * 5 + 0.1,
        }
    ).drop_duplicates(["customer_id", "product_id"])
    data = Interactions.from_pairs(pairs)
    als = ALS(factors=12, iterations=4, alpha=2.0, regularization=0.05).fit(data)
    rows = data.confidence[:20]
    from sendwise.recommend.threads import blas_single

    with blas_single():
        reference = als.model_.recalculate_user(np.arange(20), rows)
    mine = np.vstack(
        [als._solve(rows[i].indices, rows[i].data) for i in range(20)]  # the real-time path
    )
    np.testing.assert_allclose(mine, reference, atol=1e-4)


def test_bad_recommend_settings_are_one_config_error(make_project) -> None:
    from sendwise.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown algorithm.*svd"):
        make_project('[recommend]\nalgorithms = ["als", "svd"]\n')
    with pytest.raises(ConfigError, match=r"recommend\.k"):
        make_project("[recommend]\nk = 0\n")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruned_top_k_equals_scoring_every_product(seed: int) -> None:
    from sendwise.recommend.topk import pruned_top_k

    rng = np.random.default_rng(seed)
    users = rng.standard_normal((500, 8)).astype(np.float32)
    # factor norms spread like ALS's: a few large (bestsellers), a long tail of small ones
    items = (rng.standard_normal((700, 8)) * rng.pareto(2.0, (700, 1))).astype(np.float32)
    exclude = sp.random(500, 700, density=0.05, format="csr", random_state=seed)
    ids, scores = pruned_top_k(users, items, 10, exclude=exclude, head=64)
    dense = users @ items.T
    dense[exclude.nonzero()] = -np.inf
    expected = np.sort(dense, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    picked = np.take_along_axis(dense, ids, axis=1)
    np.testing.assert_allclose(picked, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["bought_together", "viewed_together", "als", "content"])
def test_real_time_paths_score_like_the_batch_paths(name: str) -> None:
    rng = np.random.default_rng(5)
    pairs = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 60, 600)],
            "product_id": [f"p{i}" for i in rng.integers(0, 80, 600)],
            "confidence": rng.random(600) * 4 + 0.5,
            "viewed": 1.0,
        }
    ).drop_duplicates(["customer_id", "product_id"])
    catalogue = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(80)],
            "name": [f"{'abcdefg'[i % 7] * 3} {'hijkl'[i % 5] * 4}" for i in range(80)],
            "category": ["Home", "Garden", "Toys"] * 26 + ["Home", "Garden"],
            "price": 1.0,
        }
    )
    data = Interactions.from_pairs(pairs, catalogue=catalogue)
    algo = fit_components(data, RecommendSettings(algorithms=[name], factors=8))[name]
    ids = [f"c{i}" for i in range(40)]
    together = algo.scores(algo.batch(ids))  # more than SMALL customers: the batch path
    alone = np.vstack([algo.scores(algo.batch([c])) for c in ids])  # the real-time path
    np.testing.assert_allclose(alone, together, rtol=1e-4, atol=1e-5)
