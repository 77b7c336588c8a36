"""The day-by-day purchase process (BG/NBD-like) interleaved with the weekly newsletter.

Each day, every signed-up, still-alive customer buys with probability 1 - exp(-rate), where
rate = lambda x seasonality x (their email effect, in the days after a delivered email). After
each purchase they churn for good with probability p. The loop runs on past the observed
period for ``future_days`` without any email, to give the ground-truth future.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from sendwise.simulate.catalogue import ProductSampler
from sendwise.simulate.clock import (
    DAY_US,
    HOUR_US,
    epoch_us,
    newsletter_days,
    seasonality,
    utc_offsets,
)
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.newsletter import SEND, EmailBatch, MailState, send_newsletter
from sendwise.simulate.population import ZONES, Population

logger = logging.getLogger(__name__)


@dataclass
class Purchases:
    """Purchase days of the loop, one entry per order (at most one per customer and day)."""

    customer: np.ndarray  # int32
    day: np.ndarray  # int32 day index from start
    churned: np.ndarray  # bool: the customer died right after this order


@dataclass
class ProcessResult:
    observed: Purchases
    future: Purchases
    email_rows: int
    alive_at_end: np.ndarray  # bool per customer
    offsets: np.ndarray  # (zones, days + future_days) UTC offsets in seconds


def _collect(parts: list[tuple[np.ndarray, int, np.ndarray]]) -> Purchases:
    if not parts:
        empty = np.zeros(0, dtype=np.int32)
        return Purchases(empty, empty.copy(), np.zeros(0, dtype=bool))
    return Purchases(
        customer=np.concatenate([p[0] for p in parts]).astype(np.int32),
        day=np.concatenate([np.full(len(p[0]), p[1], dtype=np.int32) for p in parts]),
        churned=np.concatenate([p[2] for p in parts]),
    )


def run_process(
    rng: np.random.Generator,
    pop: Population,
    sampler: ProductSampler,
    cfg: ShopConfig,
    start: date,
    days: int,
    future_days: int,
    on_email: Callable[[EmailBatch], None],
    progress: Callable[[int, int], None] | None = None,
) -> ProcessResult:
    """Run the shop day by day; each newsletter's email rows go to ``on_email`` as sent."""
    n = len(pop)
    total = days + future_days
    season = seasonality(start, total)
    offsets = utc_offsets(ZONES, start, total)
    start_us = epoch_us(start)
    end_us = start_us + days * DAY_US
    letters = dict(newsletter_days(start, days))
    # Customers are sorted by signup, so those signed up by day d are a prefix.
    signed_by_day = np.searchsorted(pop.created_day, np.arange(total), side="right")
    dead = np.zeros(n, dtype=bool)
    mail = MailState.fresh(n)
    observed: list[tuple[np.ndarray, int, np.ndarray]] = []
    future: list[tuple[np.ndarray, int, np.ndarray]] = []
    email_rows = 0
    alive_at_end = np.ones(n, dtype=bool)
    next_message = 1

    for d in range(total):
        if d == days:
            alive_at_end = ~dead
        if d in letters:
            send_us = start_us + d * DAY_US + cfg.send_hour_utc * HOUR_US
            batch = send_newsletter(
                rng, pop, mail, dead, d, letters[d], send_us, end_us, next_message,
                offsets[:, d], sampler, cfg,
            )  # fmt: skip
            next_message += int(np.count_nonzero(batch.kind == SEND))
            email_rows += len(batch)
            on_email(batch)
        m = int(signed_by_day[d])
        rate = pop.rate[:m] * season[d]
        if d < days:
            boosted = (d - mail.last_delivery_day[:m]) < cfg.effect_days
            rate = np.where(boosted, rate * pop.effect[:m], rate)
        buy = rng.random(m) < -np.expm1(-rate)
        if d < days:  # accounts created by their first order
            lo = int(signed_by_day[d - 1]) if d > 0 else int(np.searchsorted(pop.created_day, 0))
            buy[lo:m] |= pop.first_order_at_signup[lo:m]
        buy &= ~dead[:m]
        who = np.flatnonzero(buy)
        churn = rng.random(len(who)) < pop.dropout[who]
        dead[who[churn]] = True
        (observed if d < days else future).append((who, d, churn))
        if progress is not None:
            progress(d + 1, total)
    if future_days == 0:
        alive_at_end = ~dead
    result = ProcessResult(_collect(observed), _collect(future), email_rows, alive_at_end, offsets)
    logger.info(
        "simulated %d days: %d orders, %d future orders, %d email rows",
        total, len(result.observed.customer), len(result.future.customer),
        email_rows,
    )  # fmt: skip
    return result
