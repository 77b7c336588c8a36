"""ALS fit plus top-10 for every customer, and the real-time answer's latency.

Target: 1,000,000 customers x 50,000 products x 20,000,000 interactions, ALS fit + top-10 for
every customer in under 5 minutes on 2 cores; a real-time answer (fresh interactions, no
retraining) in under 10 ms. The data is synthetic (customers pick products with a skewed
popularity, several events each); building it is not timed. Peak memory is the process's
maximum resident set size.

    python bench/bench_recommend.py [--customers 1000000] [--products 50000]
        [--interactions 20000000] [--factors 64] [--iterations 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sendwise.config import RecommendSettings
from sendwise.recommend import ALS, Engine, Interactions, fit_components
from sendwise.recommend.engine import hybrid_of, make_rules
from sendwise.recommend.select import make_ranker


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthetic(n_c: int, n_p: int, n_i: int, seed: int) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_c, n_i, dtype=np.int32)
    items = (n_p * rng.random(n_i) ** 2.5).astype(np.int32)  # a few bestsellers, a long tail
    weights = rng.choice(np.array([1.0, 3.0, 8.0], np.float32), n_i, p=[0.7, 0.2, 0.1])
    conf = sp.csr_matrix((weights, (users, items)), shape=(n_c, n_p), dtype=np.float32)
    conf.sum_duplicates()
    bought = conf.copy()
    bought.data = (bought.data >= 8).astype(np.float32)
    bought.eliminate_zeros()
    catalogue = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(n_p)],
            "name": [f"thing {i % 97}" for i in range(n_p)],
            "description": None,
            "category": [f"cat{i % 20}" for i in range(n_p)],
            "price": 9.99,
            "in_stock": True,
        }
    )
    return Interactions(
        customers=np.array([f"c{u}" for u in range(n_c)], dtype=object),
        products=catalogue["product_id"].to_numpy(dtype=object),
        confidence=conf,
        purchases=bought,
        bought=bought,
        viewed=conf,
        recent=np.asarray(bought.sum(axis=0)).ravel(),
        catalogue=catalogue,
        segments=np.full(n_c, -1, np.int32),
    )


def latency(engine: Engine, n_c: int, n_p: int, calls: int = 200) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    times = []
    for i in range(calls):
        fresh = [("Product Viewed", f"p{j}") for j in rng.integers(0, n_p, 3)]
        started = time.perf_counter()
        engine.recommend(f"c{rng.integers(0, n_c)}", fresh=fresh)
        if i >= 10:  # warm-up calls not counted
            times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-als", action="store_true", help="only the real-time figures")
    args = parser.parse_args()
    n_c, n_p = args.customers, args.products
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.skip_als:
        als_figures(args, n_c, n_p)
    hybrid_and_ranker(args, n_c, n_p)


def als_figures(args, n_c: int, n_p: int) -> None:
    started = time.perf_counter()
    data = synthetic(n_c, n_p, args.interactions, args.seed)
    print(
        f"data: {n_c:,} customers x {n_p:,} products, {data.confidence.nnz:,} distinct pairs"
        f" from {args.interactions:,} interactions (built in {time.perf_counter() - started:.1f} s)"
    )

    als = ALS(factors=args.factors, iterations=args.iterations, seed=args.seed)
    started, cpu = time.perf_counter(), time.process_time()
    als.fit(data)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    ids, _ = als.top_k_all(10, exclude=data.bought)
    top_s, top_cpu = time.perf_counter() - started, time.process_time() - cpu
    total = fit_s + top_s
    print(
        f"ALS fit ({args.factors} factors, {args.iterations} iterations): {fit_s:.1f} s"
        f" (CPU {fit_cpu:.1f} s); top-10 for all {ids.shape[0]:,} customers, bought ones left"
        f" out: {top_s:.1f} s (CPU {top_cpu:.1f} s); total {total:.1f} s wall"
        f" (target < 300 s: {'ok' if total < 300 else 'MISSED'}); peak memory"
        f" {peak_gib():.2f} GiB; load average now {os.getloadavg()[0]:.1f} on"
        f" {os.cpu_count()} cores (other processes share them)"
    )

    cfg = RecommendSettings(algorithms=["als"], exclude_bought=True)
    components = fit_components(data, cfg.model_copy(update={"algorithms": ["popularity"]}))
    components["als"] = als
    rules = make_rules(data, cfg, True)
    engine = Engine(als, rules, components, k=10, event_weights=cfg.event_weights)
    median, p99 = latency(engine, n_c, n_p)
    print(
        f"real time, ALS + rules + fallbacks, {n_p:,} products: median {median:.2f} ms,"
        f" p99 {p99:.2f} ms"
    )


def hybrid_and_ranker(args, n_c: int, n_p: int) -> None:
    # the full hybrid (every algorithm) on a smaller customer base, same catalogue
    small = synthetic(min(n_c, 50_000), n_p, min(args.interactions, 1_000_000), args.seed + 1)
    cfg = RecommendSettings(exclude_bought=True)
    components = fit_components(small, cfg)
    hybrid = hybrid_of(components, cfg, {})
    engine = Engine(
        hybrid, make_rules(small, cfg, True), components, k=10, event_weights=cfg.event_weights
    )
    median, p99 = latency(engine, small.shape[0], n_p)
    print(
        f"real time, hybrid of {len(cfg.algorithms)} algorithms, {n_p:,} products:"
        f" median {median:.2f} ms, p99 {p99:.2f} ms; peak memory {peak_gib():.2f} GiB"
    )
    started = time.perf_counter()
    batch_ids = small.customers[:5000]
    engine.recommend_many(batch_ids)
    hybrid_batch = time.perf_counter() - started

    # the ranker over the same algorithms, trained on 2,000 customers whose "future" is a
    # popularity-weighted draw (the figures are about speed, not quality)
    rng = np.random.default_rng(args.seed + 2)
    train_ids = small.customers[:2000]
    popular = np.asarray(small.bought.sum(axis=0)).ravel() + 1.0
    relevant = [
        np.unique(rng.choice(n_p, 5, p=popular / popular.sum())) for _ in range(len(train_ids))
    ]
    ranker = make_ranker(components, cfg).fit(small)
    started = time.perf_counter()
    ranker.train(ranker.batch(train_ids), relevant)
    train_s = time.perf_counter() - started
    engine = Engine(
        ranker, make_rules(small, cfg, True), components, k=10, event_weights=cfg.event_weights
    )
    median, p99 = latency(engine, small.shape[0], n_p)
    started = time.perf_counter()
    engine.recommend_many(batch_ids)
    ranker_batch = time.perf_counter() - started
    print(
        f"ranker over {len(cfg.algorithms)} algorithms ({cfg.ranker_candidates} candidates"
        f" each): trained on {ranker.trained_on_['rows']:,} rows in {train_s:.1f} s; real time"
        f" median {median:.2f} ms, p99 {p99:.2f} ms; batch top-10 for {len(batch_ids):,}"
        f" customers {ranker_batch:.1f} s (hybrid {hybrid_batch:.1f} s); peak memory"
        f" {peak_gib():.2f} GiB; load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
