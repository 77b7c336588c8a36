"""Clusters: a population of three clearly separated groups must come back as three clusters, with
the words a marketer would use for each, the same way every time.

sklearn's check_estimator is not run: CustomerClusters takes a DataFrame with named columns
(the descriptions need the column names and favourite_category), not the numeric arrays the
check suite feeds; the contract itself (params stored as given, fit returns self, learned state
ending in _, check_is_fitted) is tested directly below.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from sendwise.segments import CustomerClusters, SegmentError, cluster_customers

FAST = {"n_threads": 1}  # k-means' OpenMP threads cost more than they save on 900 rows


def group(rng: np.random.Generator, label: str, n: int, **centre: float | str) -> pd.DataFrame:
    f = rng.poisson(centre["orders"], n) + 1
    aov = rng.normal(centre["aov"], 0.1 * centre["aov"], n).clip(1)
    return pd.DataFrame(
        {
            "customer_id": [f"{label}{i:03d}" for i in range(n)],
            "frequency": f,
            "monetary": f * aov,
            "avg_order_value": aov,
            "recency_days": rng.normal(centre["recency"], 0.15 * centre["recency"], n).clip(0),
            "orders_90d": rng.poisson(centre["orders"] / 4, n),
            "product_views_90d": rng.poisson(centre["views"], n),
            "open_rate": rng.normal(centre["opens"], 0.05, n).clip(0, 1),
            "favourite_category": np.where(rng.random(n) < 0.7, centre["category"], "Toys"),
            "truth": label,
        }
    )


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """Fans (frequent, recent, small baskets, read every email, mostly Home), big one-off
    spenders who left long ago (mostly Garden), and occasional buyers (mostly Kitchen)."""
    rng = np.random.default_rng(11)
    fans = dict(orders=12, aov=25, recency=5, views=60, opens=0.6, category="Home")
    gone = dict(orders=0.1, aov=250, recency=300, views=2, opens=0.05, category="Garden")
    casual = dict(orders=1, aov=60, recency=60, views=10, opens=0.25, category="Kitchen")
    groups = [("fan", 400, fans), ("gone", 300, gone), ("casual", 200, casual)]
    df = pd.concat([group(rng, *g[:2], **g[2]) for g in groups], ignore_index=True)
    df.loc[df.index % 17 == 0, "open_rate"] = np.nan  # no email delivered to some
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(population: pd.DataFrame) -> CustomerClusters:
    return CustomerClusters(random_state=0, **FAST).fit(population.drop(columns="truth"))


def test_silhouette_picks_three_and_recovers_the_groups(
    fitted: CustomerClusters, population: pd.DataFrame
) -> None:
    assert fitted.k_ == 3
    assert sorted(fitted.silhouette_) == list(range(2, 9))
    assert max(fitted.silhouette_, key=fitted.silhouette_.get) == 3
    assert adjusted_rand_score(population.truth, fitted.labels_) > 0.9
    assert list(fitted.sizes_) == sorted(fitted.sizes_, reverse=True)  # 0 is the largest
    assert np.array_equal(fitted.predict(population), fitted.labels_)
    assert fitted.features_ == [
        "frequency",
        "monetary",
        "avg_order_value",
        "recency_days",
        "orders_90d",
        "product_views_90d",
        "open_rate",
    ]
    assert fitted.flagged_ == ["open_rate"]


def test_descriptions_use_the_marketers_words(
    fitted: CustomerClusters, population: pd.DataFrame
) -> None:
    def words(label: str) -> set[str]:
        cluster = pd.Series(fitted.labels_[population.truth == label]).mode()[0]
        return set(fitted.descriptions_[int(cluster)].split(", "))

    fan = {"recent", "frequent", "low basket", "browses a lot", "engaged with email"}
    assert fan | {"mostly Home"} <= words("fan")
    gone = {"lapsed", "one-off", "high basket", "rarely opens email", "mostly Garden"}
    assert gone <= words("gone")
    assert "mostly Kitchen" in words("casual") and "frequent" not in words("casual")
    assert len(set(fitted.descriptions_.values())) == 3


def test_the_same_seed_gives_the_same_clusters(
    fitted: CustomerClusters, population: pd.DataFrame
) -> None:
    again = CustomerClusters(random_state=0, **FAST).fit(population)
    assert np.array_equal(again.labels_, fitted.labels_)
    assert np.allclose(again.cluster_centers_, fitted.cluster_centers_)
    assert again.descriptions_ == fitted.descriptions_
    assert again.silhouette_ == fitted.silhouette_


def test_cluster_customers_reads_the_features_table(population: pd.DataFrame) -> None:
    data = pa.Table.from_pandas(population.drop(columns="truth"), preserve_index=False)
    first = cluster_customers(ibis.memtable(data), random_state=0, **FAST)
    assert first.schema.names == ["customer_id", "cluster", "cluster_description"]
    assert first.schema.field("cluster").type == pa.int64()
    assert first.column("customer_id").to_pylist() == sorted(population.customer_id)
    # rows in another order give each customer the same cluster
    shuffled = ibis.memtable(data.take(np.random.default_rng(5).permutation(len(population))))
    second = cluster_customers(shuffled, random_state=0, **FAST)
    assert first.equals(second)
    truth = population.set_index("customer_id").truth[first.column("customer_id").to_pylist()]
    assert adjusted_rand_score(truth, first.column("cluster").to_pylist()) > 0.9


def test_a_sample_is_enough_to_choose_k(population: pd.DataFrame) -> None:
    model = CustomerClusters(random_state=3, sample_size=300, k_range=(2, 5), **FAST)
    assert model.fit(population).k_ == 3
    assert sorted(model.silhouette_) == [2, 3, 4, 5]


def test_a_given_k_is_used_without_silhouette(population: pd.DataFrame) -> None:
    model = CustomerClusters(k=2, **FAST).fit(population)
    assert (model.k_, model.silhouette_) == (2, {})
    assert set(model.labels_) == {0, 1}


def test_customers_without_orders_are_described_as_such() -> None:
    rng = np.random.default_rng(2)
    n = 150
    buyers = pd.DataFrame(
        {
            "frequency": rng.integers(2, 9, n),
            "avg_order_value": rng.uniform(20, 80, n),
            "recency_days": rng.uniform(1, 90, n),
        }
    )
    browsers = pd.DataFrame(
        {"frequency": np.zeros(n, "int64"), "avg_order_value": np.nan, "recency_days": np.nan}
    )
    model = CustomerClusters(k=2, **FAST).fit(pd.concat([buyers, browsers], ignore_index=True))
    assert model.flagged_ == ["avg_order_value", "recency_days"]
    words = {d.split(", ")[0] for d in model.descriptions_.values()}
    assert "no orders yet" in words


def test_the_estimator_contract(population: pd.DataFrame) -> None:
    model = CustomerClusters(k=None, k_range=(2, 4), random_state=7)
    assert model.get_params()["k_range"] == (2, 4)
    assert not [a for a in vars(model) if a.endswith("_")]
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(population)
    assert model.set_params(n_threads=1).fit(population) is model
    with pytest.raises(SegmentError, match="lacks"):
        model.predict(population.drop(columns="recency_days"))


def test_unusable_input_is_refused_and_no_customers_is_an_empty_result() -> None:
    with pytest.raises(SegmentError, match="none of the features"):
        CustomerClusters().fit(pd.DataFrame({"customer_id": ["a", "b"], "x": [1, 2]}))
    same = pd.DataFrame({"frequency": [1, 1, 1, 1], "monetary": [5.0] * 4})
    with pytest.raises(SegmentError, match="distinct"):
        CustomerClusters(**FAST).fit(same)
    with pytest.raises(SegmentError, match="distinct"):
        CustomerClusters(k=3, **FAST).fit(same)
    with pytest.raises(SegmentError, match="not numeric"):
        CustomerClusters(features=["favourite_category"]).fit(
            pd.DataFrame({"favourite_category": ["Home", "Toys"]})
        )
    with pytest.raises(SegmentError, match="DataFrame"):
        CustomerClusters().fit(np.zeros((3, 2)))
    empty = ibis.memtable(
        pa.table({"customer_id": pa.array([], pa.string()), "frequency": pa.array([], pa.int64())})
    )
    none = cluster_customers(empty)
    assert none.num_rows == 0
    assert none.schema.names == ["customer_id", "cluster", "cluster_description"]
    tiny = pa.table({"customer_id": ["a", "b"], "frequency": pa.array([1, 2], pa.int64())})
    with pytest.raises(SegmentError, match="distinct"):
        cluster_customers(ibis.memtable(tiny))
