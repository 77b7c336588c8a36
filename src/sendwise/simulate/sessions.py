"""Browsing sessions: when each happens, who browses, and what it will contain.

Every completed order is the end of a session; customers also browse without buying while
they are signed up and alive, sometimes leaving a cart or a checkout behind. A share of
sessions are anonymous until an identify call links them. Sessions are kept as one row each;
their events are expanded block by block later (see :mod:`sendwise.simulate.session_events`),
so the tens of millions of events never sit in memory as numbers all at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

from sendwise.simulate.clock import (
    DAY_US,
    MINUTE_US,
    PURCHASE_HOUR_WEIGHTS,
    draw_hours,
    local_time_in_utc_day,
)
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.orders import COMPLETED, OrderBook
from sendwise.simulate.population import Population

logger = logging.getLogger(__name__)


@dataclass
class Sessions:
    """One entry per session; after :func:`all_sessions`, sorted by start (number = pos + 1)."""

    customer: np.ndarray  # int32
    start_us: np.ndarray  # int64
    end_us: np.ndarray  # int64 time of the last event
    anonymous: np.ndarray  # bool: anonymous until an identify call
    order: np.ndarray  # int32 position of the order it ends in, -1 for browse-only
    views: np.ndarray  # int8 product views besides the ordered products
    added: np.ndarray  # bool: browse-only session that put a product in the cart
    checkout: np.ndarray  # bool: ... and started the checkout
    size: np.ndarray  # int32 number of events

    def __len__(self) -> int:
        return len(self.customer)

    def take(self, index: np.ndarray) -> Sessions:
        return Sessions(*(getattr(self, f.name)[index] for f in fields(self)))


def purchase_sessions(
    rng: np.random.Generator, pop: Population, book: OrderBook, start_us: int, cfg: ShopConfig
) -> Sessions:
    """The session ending in each completed order: page, views, adds, checkout, order."""
    orders = np.flatnonzero(book.status == COMPLETED).astype(np.int32)
    n = len(orders)
    customer = book.customer[orders]
    t_order = book.time_us[orders]
    n_lines = np.diff(book.lines.offsets)[orders]
    views = rng.choice(3, size=n, p=[0.4, 0.35, 0.25]).astype(np.int8)
    fresh = t_order - pop.created_us[customer] < 31 * MINUTE_US  # signing up at checkout
    anon = fresh | (rng.random(n) < cfg.anonymous_share)
    duration = rng.integers(3 * MINUTE_US, 25 * MINUTE_US, size=n)
    begin = np.maximum(t_order - duration, np.maximum(start_us, pop.created_us[customer]))
    no = np.zeros(n, dtype=bool)
    return Sessions(
        customer=customer,
        start_us=np.minimum(begin, t_order),
        end_us=t_order,
        anonymous=anon,
        order=orders,
        views=views,
        added=no,
        checkout=no.copy(),
        size=(3 + views + 2 * n_lines + anon).astype(np.int32),
    )


def browse_sessions(
    rng: np.random.Generator, pop: Population, start_us: int, active_until_us: np.ndarray,
    season: np.ndarray, offsets: np.ndarray, cfg: ShopConfig,
) -> Sessions:  # fmt: skip
    """Sessions without an order, while the customer is signed up and alive."""
    begin = np.maximum(pop.created_us, start_us)
    span = np.maximum(active_until_us - begin - 30 * MINUTE_US, 0)
    rate = cfg.browse_rate_base + cfg.browse_rate_per_purchase * pop.rate
    peak = season.max()
    counts = rng.poisson(rate * peak * span / DAY_US)
    customer = np.repeat(np.arange(len(pop), dtype=np.int32), counts)
    offset_in_span = rng.random(len(customer)) * np.repeat(span, counts)
    t = np.repeat(begin, counts) + offset_in_span.astype(np.int64)
    day = (t - start_us) // DAY_US
    keep = rng.random(len(t)) < season[day] / peak  # thinning: busier days get more sessions
    customer, t, day = customer[keep], t[keep], day[keep]
    # Inner days take a local shopping hour; the first and last day keep the uniform moment.
    inner = (t - begin[customer] > DAY_US) & (active_until_us[customer] - t > DAY_US)
    shift = offsets[pop.zone[customer[inner]], day[inner]]
    hours = draw_hours(rng, int(inner.sum()), PURCHASE_HOUR_WEIGHTS)
    t[inner] = local_time_in_utc_day(rng, start_us + day[inner] * DAY_US, shift, hours)

    n = len(customer)
    views = (1 + np.minimum(rng.poisson(1.5, size=n), 5)).astype(np.int8)
    added = rng.random(n) < cfg.abandon_cart_share
    checkout = added & (rng.random(n) < cfg.abandon_checkout_share)
    anon = rng.random(n) < cfg.anonymous_share
    return Sessions(
        customer=customer,
        start_us=t,
        end_us=t + rng.integers(MINUTE_US, 15 * MINUTE_US, size=n),
        anonymous=anon,
        order=np.full(n, -1, dtype=np.int32),
        views=views,
        added=added,
        checkout=checkout,
        size=(1 + views + added + checkout + anon).astype(np.int32),
    )


def all_sessions(
    rng: np.random.Generator, pop: Population, book: OrderBook, start_us: int,
    active_until_us: np.ndarray, season: np.ndarray, offsets: np.ndarray, cfg: ShopConfig,
) -> Sessions:  # fmt: skip
    """Every session of the period, sorted by start time."""
    bought = purchase_sessions(rng, pop, book, start_us, cfg)
    browsed = browse_sessions(rng, pop, start_us, active_until_us, season, offsets, cfg)
    both = Sessions(
        *(
            np.concatenate([getattr(bought, f.name), getattr(browsed, f.name)])
            for f in fields(bought)
        )
    )
    logger.info(
        "browsing: %d sessions with an order, %d without, %d events",
        len(bought), len(browsed), int(both.size.sum()),
    )  # fmt: skip
    return both.take(np.argsort(both.start_us, kind="stable"))
