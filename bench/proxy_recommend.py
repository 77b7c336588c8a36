"""The development proxy of issue 14 for recommendations, on Online Retail.

As a new user would: ``sendwise init``, ``sendwise ingest FILE --preset online-retail``,
``sendwise build --as-of 2011-06-12 --horizon 90``, ``sendwise export recommendations``; then
the exported top 10 is judged on the orders from 2011-06-12 to the end of the file
(2011-09-09). Judged customers: those who bought both before 2011-06-12 and in the window
("returning customers"). precision@10 = share of the 10 recommended products the customer
bought in the window; MAP@10 as in ``sendwise.recommend.metrics``.

``--algorithms`` also judges every algorithm of the library, fitted on the same history and
served through the same rules and fallbacks, on the same customers (popularity, buy-again,
ALS, the hybrid with weights chosen on the validation window, and the ranker).

    python bench/proxy_recommend.py [--project DIR] [--as-of 2011-06-12] [--skip-build]
        [--algorithms]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sendwise.config import load_settings
from sendwise.recommend.metrics import ranking_metrics
from sendwise.warehouse.connection import Warehouse

RETAIL = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "online_retail"
    / "online_retail_2010-12-01_2011-09-09.csv.gz"
)


def cli(project: Path, *args: str, check: bool = True) -> float:
    """Run ``sendwise ARGS`` in ``project``; its wall time (negative when it failed)."""
    import sendwise

    exe = Path(sys.executable).with_name("sendwise")
    env = os.environ.copy()  # the same sendwise as this script, whatever the folder
    src = str(Path(sendwise.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    done = subprocess.run([str(exe), *args], cwd=project, check=check, env=env)
    seconds = time.perf_counter() - started
    return seconds if done.returncode == 0 else -seconds


def truth(wh: Warehouse, as_of: datetime) -> tuple[pd.Series, set[str]]:
    """customer -> products bought in [as_of, end); and the customers who bought before."""
    order, line = wh.table("order"), wh.table("order_line")
    done = order.filter(order.status == "completed", order.customer_id.notnull())
    t = done.join(line, "order_id").select("customer_id", "product_id", "ordered_at")
    df = t.to_pyarrow().to_pandas()
    after = df[df["ordered_at"] >= as_of]
    before = set(df.loc[df["ordered_at"] < as_of, "customer_id"])
    return after.groupby("customer_id")["product_id"].agg(set), before


def judge(recs: pd.DataFrame, bought: pd.Series, customers: list[str], k: int = 10) -> dict:
    """precision@k and MAP@k of ``recs`` (customer_id, rank, product_id) on ``customers``."""
    products = {p: i for i, p in enumerate(sorted(set(recs["product_id"]) | set().union(*bought)))}
    recs = recs.sort_values(["customer_id", "rank"])
    grouped = recs.groupby("customer_id")["product_id"].agg(list)
    idx = np.full((len(customers), k), -1, dtype=np.int64)
    for i, c in enumerate(customers):
        ranked = grouped.get(c, [])[:k]
        idx[i, : len(ranked)] = [products[p] for p in ranked]
    relevant = [np.array(sorted(products[p] for p in bought[c]), dtype=np.int64) for c in customers]
    m = ranking_metrics(
        idx, relevant, k, n_products=len(products), item_share=np.ones(len(products))
    )
    return {"precision": m["precision"], "map": m["map"], "customers": len(customers)}


def judge_algorithms(wh: Warehouse, settings, as_of: datetime) -> dict[str, pd.DataFrame]:
    """Top 10 of every customer from each algorithm, fitted before ``as_of``, served through
    the same rules and fallbacks; the hybrid and the ranker as chosen on the validation
    window before ``as_of``."""
    from sendwise.recommend import Engine, fit_components, load_interactions
    from sendwise.recommend.build import decide_exclude, repeat_share
    from sendwise.recommend.engine import hybrid_of, make_rules
    from sendwise.recommend.select import select_model, serving_ranker

    cfg = settings.recommend
    exclude = decide_exclude(cfg, repeat_share(wh, as_of))
    started = time.perf_counter()
    chosen = select_model(wh, cfg, as_of, exclude)
    print(
        f"validation {chosen.start:%Y-%m-%d}..{chosen.cutoff:%Y-%m-%d}: {chosen.winner} wins"
        f" (held-out MAP@10 {chosen.holdout}), {time.perf_counter() - started:.1f} s"
    )
    if chosen.ranker is not None:
        top = list(chosen.ranker.importance().items())[:8]
        print("  ranker gain: " + ", ".join(f"{n} {v:.2f}" for n, v in top))
    data = load_interactions(wh, cfg, as_of)
    components = fit_components(data, cfg)
    rules = make_rules(data, cfg, exclude)
    primaries = {n: components[n] for n in ("popularity", "buy_again", "als")}
    primaries["hybrid"] = hybrid_of(components, cfg, chosen.weights)
    if chosen.ranker is not None:
        primaries["ranker"] = serving_ranker(chosen, components, data, cfg)
    return {
        name: Engine(algo, rules, components, k=cfg.k).recommend_many(data.customers)
        for name, algo in primaries.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path, default=Path("/tmp/sendwise-proxy-recommend"))
    ap.add_argument("--as-of", default="2011-06-12")
    ap.add_argument("--horizon", default="90")
    ap.add_argument("--skip-build", action="store_true", help="judge the project as it is")
    ap.add_argument("--algorithms", action="store_true", help="judge each algorithm too")
    args = ap.parse_args()
    project, as_of = args.project, datetime.fromisoformat(args.as_of)
    out = project / "recs.csv"
    if not args.skip_build:
        if project.exists():
            subprocess.run(["rm", "-rf", str(project)], check=True)
        project.parent.mkdir(parents=True, exist_ok=True)
        cli(project.parent, "init", str(project))
        t_ingest = cli(project, "ingest", str(RETAIL), "--preset", "online-retail")
        t_build = cli(
            project, "build", "--as-of", args.as_of, "--horizon", args.horizon, check=False
        )
        if t_build < 0:  # the models could not train: the recommendation step on its own
            print("build failed; running its recommendation step alone (sendwise recommend)")
            t_build = cli(project, "recommend", "--as-of", args.as_of, "--no-evaluate")
        cli(project, "export", "recommendations", "--out", str(out))
        print(f"ingest {t_ingest:.1f} s, build {t_build:.1f} s (load {os.getloadavg()[0]:.1f})")
    settings = load_settings(project)
    with Warehouse.from_settings(settings) as wh:
        bought, before = truth(wh, as_of)
        customers = sorted(c for c in bought.index if c in before)
        exported = pd.read_csv(out, dtype={"customer_id": str, "product_id": str})
        row = judge(exported, bought, customers)
        print(
            f"exported recommendations, {row['customers']:,} returning customers:"
            f" precision@10 {row['precision']:.4f}, MAP@10 {row['map']:.4f}"
        )
        if args.algorithms:
            for name, recs in judge_algorithms(wh, settings, as_of).items():
                r = judge(recs, bought, customers)
                print(f"{name:>20}: precision@10 {r['precision']:.4f}, MAP@10 {r['map']:.4f}")


if __name__ == "__main__":
    main()
