"""Next-category hit rate on Online Retail with derived categories, against the favourite
category, on a time split (issue 14, point 5).

The categories are derived from the product names (``sendwise.catalog``); the model's weights
are chosen on the window [fit_at, fit_at + h) with the history before ``fit_at``; it is judged
on [test_at, test_at + h) with the history before ``test_at``. Judged: customers who bought in
the test window and before it. Hit: the predicted category is among those they bought.

    python bench/proxy_next_category.py --project DIR [--test-at 2011-06-12] [--horizon 89]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sendwise.catalog import derive_product_categories
from sendwise.config import load_settings
from sendwise.predict.category import CategoryModel, bought_in_window, histograms, hit_rate
from sendwise.warehouse.connection import Warehouse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path, required=True, help="a project with Online Retail")
    ap.add_argument("--test-at", default="2011-06-12")
    ap.add_argument("--horizon", type=int, default=89, help="days judged (89: to 2011-09-09)")
    args = ap.parse_args()
    test_at = datetime.fromisoformat(args.test_at)
    fit_at = test_at - timedelta(days=args.horizon)
    settings = load_settings(args.project)
    with Warehouse.from_settings(settings) as wh:
        built = derive_product_categories(wh, settings.catalog)
        print(f"categories: {built.categories} ({built.reason}), {built.derived:,} products")
        model = CategoryModel().fit(
            histograms(wh, fit_at), bought_in_window(wh, fit_at, args.horizon)
        )
        hist = histograms(wh, test_at, model.categories_)
        truth = bought_in_window(wh, test_at, args.horizon)
        known = hist.bought.sum(axis=1) > 0
        judged = truth.index.intersection(hist.customers[known])
        fav = pd.DataFrame(
            {
                "customer_id": hist.customers[known],
                "next_category": np.asarray(model.categories_, dtype=object)[
                    hist.bought[known].argmax(axis=1)
                ],
            }
        )
        top, _ = model.prior_choice()
        popular = pd.DataFrame({"customer_id": judged, "next_category": top})
        chosen = {k: v for k, v in model.to_dict().items() if k not in ("categories", "share")}
        print(f"weights chosen at {fit_at:%Y-%m-%d}: {chosen}")
        print(f"judged {len(judged):,} customers on {test_at:%Y-%m-%d} + {args.horizon} days:")
        print(f"  next_category model   {hit_rate(model.predict(hist), truth.loc[judged]):.4f}")
        print(f"  favourite category    {hit_rate(fav, truth.loc[judged]):.4f}")
        print(f"  most bought category  {hit_rate(popular, truth.loc[judged]):.4f}")


if __name__ == "__main__":
    main()
