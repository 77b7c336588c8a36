"""The simulated shop: the entry point that runs every step, and its result."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sendwise.errors import InputError
from sendwise.simulate.catalogue import ProductSampler, build_catalogue
from sendwise.simulate.clock import DAY_US, epoch_us, seasonality
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.orders import build_order_book, draw_baskets, order_times
from sendwise.simulate.population import build_population
from sendwise.simulate.process import run_process
from sendwise.simulate.progress import ProgressReporter
from sendwise.simulate.render_email import EmailLog
from sendwise.simulate.render_entities import (
    consent_table,
    customer_emails,
    customer_ids,
    customer_table,
    product_ids,
    product_table,
)
from sendwise.simulate.render_events import EventContext, event_table
from sendwise.simulate.render_orders import order_ids, order_line_table, order_table
from sendwise.simulate.sessions import all_sessions
from sendwise.simulate.truth import NO_DEATH, truth_table
from sendwise.simulate.vocabulary import CATEGORIES

logger = logging.getLogger(__name__)

TABLE_NAMES = ("customer", "product", "order", "order_line", "event", "email_event", "consent")
MAX_CUSTOMERS = 100_000_000
MAX_DAYS = 3660
RENDER_STEPS = 5


@dataclass
class SimulatedShop:
    tables: dict[str, pa.Table]
    """The canonical warehouse tables, keyed by table name."""
    truth: pa.Table
    """One row per customer: latent traits and the future they go on to have."""
    params: dict
    """The arguments and derived facts (start, end, products, config) that produced it."""

    def write(self, folder: Path) -> dict[str, Path]:
        """Write ``<table>.parquet``, ``truth.parquet`` and ``manifest.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, tbl in {**self.tables, "truth": self.truth}.items():
            paths[name] = folder / f"{name}.parquet"
            pq.write_table(tbl, paths[name])
        manifest = {
            "params": self.params,
            "rows": {
                name: tbl.num_rows for name, tbl in {**self.tables, "truth": self.truth}.items()
            },
        }
        paths["manifest"] = folder / "manifest.json"
        paths["manifest"].write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
        logger.info("wrote the simulated shop to %s", folder)
        return paths


def _json_default(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:,} and {high:,}, got {value:,}")
    return int(value)


def _validate(customers, days, seed, start, future_days, products) -> tuple:
    customers = _whole("customers", customers, 1, MAX_CUSTOMERS)
    days = _whole("days", days, 1, MAX_DAYS)
    seed = _whole("seed", seed, 0, 2**63 - 1)
    future_days = _whole("future_days", future_days, 0, MAX_DAYS)
    if products is not None:
        products = _whole("products", products, len(CATEGORIES), 10_000_000)
    if isinstance(start, datetime):
        start = start.date()
    if not isinstance(start, date):
        raise InputError(f"start must be a date, got {start!r}")
    return customers, days, seed, start, future_days, products


def simulate_shop(
    customers: int = 5000,
    days: int = 365,
    seed: int = 0,
    start: date = date(2025, 1, 1),
    future_days: int = 90,
    products: int | None = None,
    show_progress: bool = False,
    progress: Callable[[int, int], None] | None = None,
    *,
    config: ShopConfig | None = None,
) -> SimulatedShop:
    """Simulate a shop's customers, catalogue, orders, browsing, email and consent.

    Same arguments, same tables. ``progress(done, total)`` is called once per simulated day
    and once per table built; ``show_progress`` draws a progress bar on the terminal.
    ``config`` overrides the processes' knobs (rates, shares, effect sizes).
    """
    customers, days, seed, start, future_days, products = _validate(
        customers, days, seed, start, future_days, products
    )
    n_products = products or min(50_000, max(200, customers // 20))
    if config is not None and not isinstance(config, ShopConfig):
        raise InputError(f"config must be a ShopConfig, got {type(config).__name__}")
    cfg = config or ShopConfig()
    rng = np.random.default_rng(seed)
    start_us = epoch_us(start)
    end_us = start_us + days * DAY_US
    total = days + future_days + RENDER_STEPS
    with ProgressReporter(total, show_progress, progress) as report:
        catalogue = build_catalogue(rng, n_products, start, cfg.zipf_exponent)
        pop = build_population(rng, customers, start, days, cfg)
        sampler = ProductSampler(catalogue, pop.prefs_cum, pop.price_sensitivity)
        c_ids, emails = customer_ids(customers), customer_emails(customers)
        p_ids = product_ids(n_products)
        log = EmailLog(start, c_ids, emails, p_ids)
        result = run_process(rng, pop, sampler, cfg, start, days, future_days, log.add, report.step)

        tables = {"email_event": log.table()}
        withdrawn = log.unsubscribes()
        del log
        report.advance()

        observed = result.observed
        times = order_times(rng, pop, observed, start_us, end_us, result.offsets)
        died_us = np.full(customers, NO_DEATH, dtype=np.int64)
        died_us[observed.customer[observed.churned]] = times[observed.churned]
        book = build_order_book(rng, pop, observed, times, died_us, sampler, catalogue, end_us, cfg)
        future_baskets = draw_baskets(rng, result.future.customer, sampler, catalogue, cfg)
        o_ids = order_ids(book)
        tables["customer"] = customer_table(pop, c_ids, emails)
        tables["product"] = product_table(catalogue, p_ids, rng)
        tables["order"] = order_table(book, o_ids, c_ids)
        tables["order_line"] = order_line_table(book, o_ids, p_ids)
        tables["consent"] = consent_table(pop, c_ids, withdrawn)
        report.advance()

        sessions = all_sessions(
            rng, pop, book, start_us, np.minimum(died_us, end_us),
            seasonality(start, days), result.offsets, cfg,
        )  # fmt: skip
        report.advance()
        ctx = EventContext(c_ids, emails, p_ids, o_ids, catalogue, book)
        tables["event"] = event_table(rng, sessions, ctx, sampler)
        del sessions
        report.advance()
        truth = truth_table(
            pop, c_ids, result.alive_at_end, died_us, result.future, future_baskets, catalogue
        )
        report.advance()
    params = {
        "customers": customers,
        "days": days,
        "seed": seed,
        "start": start,
        "end": start + timedelta(days=days),
        "future_days": future_days,
        "future_end": start + timedelta(days=days + future_days),
        "products": n_products,
        "config": cfg.as_dict(),
    }
    logger.info("simulated shop: %s", ", ".join(f"{k} {t.num_rows:,}" for k, t in tables.items()))
    return SimulatedShop(tables={k: tables[k] for k in TABLE_NAMES}, truth=truth, params=params)
