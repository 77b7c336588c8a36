"""The ground-truth table: each customer's latent traits and their actual future.

Models are judged against these columns; nothing here is visible in the warehouse tables.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from sendwise.simulate.catalogue import Catalogue
from sendwise.simulate.orders import Baskets
from sendwise.simulate.population import EFFECT_TYPES, ZONES, Population
from sendwise.simulate.process import Purchases
from sendwise.simulate.strings import concat, lookup, timestamps
from sendwise.simulate.vocabulary import CATEGORIES

logger = logging.getLogger(__name__)

NO_DEATH = np.iinfo(np.int64).max

TRUTH_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("purchase_rate", pa.float64()),
        ("dropout_p", pa.float64()),
        ("alive_at_end", pa.bool_()),
        ("died_at", pa.timestamp("us")),
        ("favourite_category", pa.string()),
        ("category_prefs", pa.string()),
        ("price_sensitivity", pa.float64()),
        ("preferred_hour", pa.int64()),
        ("timezone", pa.string()),
        ("open_propensity", pa.float64()),
        ("click_propensity", pa.float64()),
        ("uses_privacy_proxy", pa.bool_()),
        ("email_effect_type", pa.string()),
        ("email_effect", pa.float64()),
        ("future_orders", pa.int64()),
        ("future_revenue", pa.float64()),
        ("future_categories", pa.string()),
        ("consented", pa.bool_()),
        ("email_frequency", pa.string()),
    ]
)


def _category_sets() -> list[str]:
    """JSON list of category names for every bitmask of categories (index = mask)."""
    names = [c.name for c in CATEGORIES]
    out = []
    for mask in range(1 << len(names)):
        members = [f'"{n}"' for i, n in enumerate(names) if mask >> i & 1]
        out.append("[" + ",".join(members) + "]")
    return out


def _prefs_json(prefs: np.ndarray) -> pa.Array:
    parts: list = ["{"]
    for i, c in enumerate(CATEGORIES):
        share = pa.array(np.round(prefs[:, i], 4) + 0.0).cast(pa.string())
        parts += [("," if i else "") + f'"{c.name}":', share]
    return concat(*parts, "}")


def truth_table(
    pop: Population,
    ids: pa.Array,
    alive_at_end: np.ndarray,
    died_us: np.ndarray,
    future: Purchases,
    future_baskets: Baskets,
    catalogue: Catalogue,
) -> pa.Table:
    n = len(pop)
    future_orders = np.bincount(future.customer, minlength=n)
    counts = np.diff(future_baskets.offsets)
    line_customer = np.repeat(future.customer.astype(np.int64), counts)
    amount = future_baskets.quantity * future_baskets.unit_price
    revenue = np.round(np.bincount(line_customer, amount, minlength=n), 2)
    bits = np.left_shift(1, catalogue.category[future_baskets.product].astype(np.int64))
    mask = np.zeros(n, dtype=np.int64)
    np.bitwise_or.at(mask, line_customer, bits)
    columns = [
        ids,
        pa.array(pop.rate),
        pa.array(pop.dropout),
        pa.array(alive_at_end),
        timestamps(died_us, mask=died_us == NO_DEATH),
        lookup([c.name for c in CATEGORIES], pop.favourite),
        _prefs_json(pop.prefs),
        pa.array(pop.price_sensitivity),
        pa.array(pop.preferred_hour, pa.int64()),
        lookup(ZONES, pop.zone),
        pa.array(pop.open_propensity),
        pa.array(pop.click_propensity),
        pa.array(pop.privacy_proxy),
        lookup(EFFECT_TYPES, pop.effect_type),
        pa.array(pop.effect),
        pa.array(future_orders.astype(np.int64)),
        pa.array(revenue),
        lookup(_category_sets(), mask),
        pa.array(pop.consent),
        lookup(["monthly", "weekly"], pop.weekly.astype(np.int64), mask=~pop.consent),
    ]
    return pa.Table.from_arrays(columns, schema=TRUTH_SCHEMA)
