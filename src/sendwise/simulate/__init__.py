"""A seeded, simulated online shop that writes the canonical warehouse tables plus the ground
truth behind them, so models can be checked against what really drove the data.

    shop = simulate_shop(customers=5000, days=365, seed=0)
    shop.tables["order"], shop.truth, shop.write(Path("demo-shop/simulated"))
"""

from __future__ import annotations

from sendwise.simulate.config import ShopConfig
from sendwise.simulate.shop import TABLE_NAMES, SimulatedShop, simulate_shop
from sendwise.simulate.truth import TRUTH_SCHEMA

__all__ = ["TABLE_NAMES", "TRUTH_SCHEMA", "ShopConfig", "SimulatedShop", "simulate_shop"]
