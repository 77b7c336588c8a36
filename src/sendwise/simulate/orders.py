"""From purchase days to orders: moments, baskets, refunds and the final order numbering.

Orders end up sorted by time and numbered in that order (O00000001 is the first), refunds
included; lines are stored flat with per-order offsets so every step stays vectorized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sendwise.simulate.catalogue import Catalogue, ProductSampler
from sendwise.simulate.clock import (
    DAY_US,
    MINUTE_US,
    PURCHASE_HOUR_WEIGHTS,
    SECOND_US,
    draw_hours,
    local_time_in_utc_day,
)
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.population import Population
from sendwise.simulate.process import Purchases

logger = logging.getLogger(__name__)

COMPLETED, REFUND = 0, 1


@dataclass
class Baskets:
    """Lines of a set of orders: order i owns lines offsets[i] .. offsets[i+1]-1."""

    offsets: np.ndarray  # int64, len = orders + 1
    product: np.ndarray  # int32
    quantity: np.ndarray  # int64
    unit_price: np.ndarray  # float64

    def totals(self) -> np.ndarray:
        amount = self.quantity * self.unit_price
        order_of_line = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        return np.round(np.bincount(order_of_line, amount, minlength=len(self.offsets) - 1), 2)


@dataclass
class OrderBook:
    customer: np.ndarray  # int32
    time_us: np.ndarray  # int64, sorted
    status: np.ndarray  # int8 COMPLETED or REFUND
    refund_of: np.ndarray  # int64 position of the refunded order, -1 for none
    lines: Baskets
    total: np.ndarray  # float64 sum of quantity x unit price


def segment_take(offsets: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Positions of the elements of segments ``picks``, concatenated in that order."""
    lengths = np.diff(offsets)[picks]
    starts = offsets[:-1][picks]
    new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(starts - new_starts, lengths) + np.arange(lengths.sum())


def draw_baskets(
    rng: np.random.Generator,
    customers: np.ndarray,
    sampler: ProductSampler,
    catalogue: Catalogue,
    cfg: ShopConfig,
) -> Baskets:
    probs = np.array(cfg.line_count_probs)
    counts = 1 + rng.choice(len(probs), size=len(customers), p=probs / probs.sum())
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    product = sampler.products(rng, np.repeat(customers, counts))
    qprobs = np.array(cfg.quantity_probs)
    quantity = 1 + rng.choice(len(qprobs), size=len(product), p=qprobs / qprobs.sum())
    noise = 1.0 + rng.normal(0.0, cfg.price_noise, size=len(product))
    unit_price = np.maximum(0.0, np.round(catalogue.price[product] * noise, 2))
    return Baskets(offsets, product, quantity.astype(np.int64), unit_price)


def order_times(
    rng: np.random.Generator,
    pop: Population,
    purchases: Purchases,
    start_us: int,
    end_us: int,
    offsets: np.ndarray,
) -> np.ndarray:
    """Moments of the orders: shopping hours in local time; minutes after signup on day one."""
    customer, day = purchases.customer, purchases.day.astype(np.int64)
    hours = draw_hours(rng, len(customer), PURCHASE_HOUR_WEIGHTS)
    shift = offsets[pop.zone[customer], day]
    times = local_time_in_utc_day(rng, start_us + day * DAY_US, shift, hours)
    signup_day = day == pop.created_day[customer]
    after_signup = pop.created_us[customer] + rng.integers(2 * MINUTE_US, 30 * MINUTE_US, len(day))
    times = np.where(signup_day, np.minimum(after_signup, end_us - SECOND_US), times)
    return times


def build_order_book(
    rng: np.random.Generator,
    pop: Population,
    purchases: Purchases,
    times: np.ndarray,
    died_us: np.ndarray,
    sampler: ProductSampler,
    catalogue: Catalogue,
    end_us: int,
    cfg: ShopConfig,
) -> OrderBook:
    """Completed orders with their baskets, plus the refunds that fall inside the period."""
    baskets = draw_baskets(rng, purchases.customer, sampler, catalogue, cfg)
    n = len(times)
    delay = rng.integers(3 * DAY_US, 30 * DAY_US, size=n)
    refund_us = times + delay
    customer = purchases.customer
    refunded = (rng.random(n) < cfg.refund_share) & (refund_us < end_us)
    refunded &= refund_us < died_us[customer]  # the dead never come back, not even to return
    originals = np.flatnonzero(refunded)

    all_customer = np.concatenate([customer, customer[originals]])
    all_time = np.concatenate([times, refund_us[originals]])
    all_status = np.concatenate(
        [np.full(n, COMPLETED, np.int8), np.full(len(originals), REFUND, np.int8)]
    )
    source = np.concatenate([np.arange(n), originals])  # whose basket each row carries
    order = np.argsort(all_time, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))

    refund_of = np.full(len(order), -1, dtype=np.int64)
    is_refund = all_status[order] == REFUND
    refund_of[is_refund] = rank[source[order][is_refund]]

    src = source[order]
    line_pos = segment_take(baskets.offsets, src)
    sign = np.where(is_refund, -1, 1)
    counts = np.diff(baskets.offsets)[src]
    lines = Baskets(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        product=baskets.product[line_pos],
        quantity=baskets.quantity[line_pos] * np.repeat(sign, counts),
        unit_price=baskets.unit_price[line_pos],
    )
    return OrderBook(
        customer=all_customer[order],
        time_us=all_time[order],
        status=all_status[order],
        refund_of=refund_of,
        lines=lines,
        total=lines.totals(),
    )
