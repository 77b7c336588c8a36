"""A small simulated shop with profiles, shared by the content, campaign and delivery tests.

Until the prediction models write ``p_purchase`` and ``churn_risk`` into ``profile``, the tests
add deterministic stand-in columns (spread over 0..1, some missing) so that every variant of the
guide's score table is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sendwise.config import init_project, load_settings
from sendwise.ingest.load import ingest
from sendwise.profiles import build_profiles
from sendwise.simulate import simulate_shop
from sendwise.warehouse.connection import Warehouse
from sendwise.warehouse.schema import LOADABLE


def build_shop(folder: Path, customers: int = 400, seed: int = 5, days: int = 120):
    """A project in ``folder`` with a simulated shop loaded and its profiles built (no
    clusters); (settings, the open warehouse, the simulated shop)."""
    init_project(folder)
    settings = load_settings(folder)
    settings.segments.clusters = False
    shop = simulate_shop(customers=customers, days=days, seed=seed)
    paths = shop.write(folder / "simulated")
    wh = Warehouse.from_settings(settings)
    for name in LOADABLE:
        if name in paths:
            ingest(wh, settings, paths[name], table=name)
    build_profiles(wh, settings)
    return settings, wh, shop


def add_stand_in_scores(wh: Warehouse) -> None:
    """Deterministic p_purchase / churn_risk (about 1 in 11 / 13 missing) on the profile table."""
    p = wh.table("profile").to_pandas()
    n = p.customer_id.str[1:].astype(int).to_numpy()
    p["p_purchase"] = np.where(n % 11 == 0, np.nan, (n * 37 % 100) / 100)
    p["churn_risk"] = np.where(n % 13 == 0, np.nan, (n * 53 % 100) / 100)
    wh.con.create_table("profile", p, overwrite=True)
