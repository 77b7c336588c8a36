"""Browsing sessions, as rows of the event table in numeric form.

Every completed order is the end of a session (page, product views, adds, checkout, order);
customers also browse without buying, in their preferred categories, sometimes leaving a cart
or a checkout behind. A share of sessions are anonymous until an identify call links them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sendwise.simulate.catalogue import ProductSampler
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

EVENT_KINDS = ("page", "identify", "Product Viewed", "Product Added", "Checkout Started",
               "Order Completed")  # fmt: skip
PAGE, IDENTIFY, VIEWED, ADDED, CHECKOUT, COMPLETED_EVENT = range(len(EVENT_KINDS))


@dataclass
class Sessions:
    """Session-level facts; events refer to sessions by position here."""

    customer: np.ndarray  # int32
    start_us: np.ndarray  # int64
    end_us: np.ndarray  # int64 time of the last event
    size: np.ndarray  # int64 number of events
    anonymous: np.ndarray  # bool


@dataclass
class EventRows:
    """One entry per event, unsorted; ``pos`` orders events inside their session."""

    session: np.ndarray  # int64 position in Sessions
    pos: np.ndarray  # int64
    kind: np.ndarray  # int8 index into EVENT_KINDS
    product: np.ndarray  # int32, -1 for none
    order: np.ndarray  # int32 position in the OrderBook, -1 for none
    quantity: np.ndarray  # int8


def within(counts: np.ndarray) -> np.ndarray:
    """0, 1, .., c-1 for every count c, concatenated."""
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


def _rows(session, pos, kind, product=-1, order=-1, quantity=0) -> EventRows:
    n = len(session)
    return EventRows(
        session=np.asarray(session, dtype=np.int64),
        pos=np.asarray(pos, dtype=np.int64),
        kind=np.full(n, kind, dtype=np.int8),
        product=np.broadcast_to(np.asarray(product, dtype=np.int32), n).copy(),
        order=np.broadcast_to(np.asarray(order, dtype=np.int32), n).copy(),
        quantity=np.broadcast_to(np.asarray(quantity, dtype=np.int8), n).copy(),
    )


def concat_rows(parts: list[EventRows]) -> EventRows:
    return EventRows(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in EventRows.__dataclass_fields__)
    )


def purchase_sessions(
    rng: np.random.Generator, pop: Population, book: OrderBook, sampler: ProductSampler,
    start_us: int, cfg: ShopConfig,
) -> tuple[Sessions, EventRows]:  # fmt: skip
    """The session that ends in each completed order."""
    orders = np.flatnonzero(book.status == COMPLETED).astype(np.int32)
    customer = book.customer[orders]
    t_order = book.time_us[orders]
    n_lines = np.diff(book.lines.offsets)[orders]
    extra = rng.choice(3, size=len(orders), p=[0.4, 0.35, 0.25])
    fresh = t_order - pop.created_us[customer] < 31 * MINUTE_US  # signing up at checkout
    anon = fresh | (rng.random(len(orders)) < cfg.anonymous_share)
    size = 3 + extra + 2 * n_lines + anon
    s = np.arange(len(orders))
    first_line = book.lines.offsets[orders]
    line_session = np.repeat(s, n_lines)
    line_no = within(n_lines)
    line_idx = np.repeat(first_line, n_lines) + line_no
    line_product = book.lines.product[line_idx]
    x_session = np.repeat(s, extra)
    parts = [
        _rows(s, 0, PAGE, book.lines.product[first_line]),
        _rows(x_session, 1 + within(extra), VIEWED, sampler.products(rng, customer[x_session])),
        _rows(line_session, 1 + extra[line_session] + line_no, VIEWED, line_product),
        _rows(line_session, 1 + extra[line_session] + n_lines[line_session] + line_no, ADDED,
              line_product, quantity=book.lines.quantity[line_idx]),
        _rows(s, 1 + extra + 2 * n_lines, CHECKOUT, order=orders),
        _rows(s[anon], 2 + extra[anon] + 2 * n_lines[anon], IDENTIFY),
        _rows(s, size - 1, COMPLETED_EVENT, order=orders),
    ]  # fmt: skip
    duration = rng.integers(3 * MINUTE_US, 25 * MINUTE_US, size=len(orders))
    begin = np.maximum(t_order - duration, np.maximum(start_us, pop.created_us[customer]))
    begin = np.minimum(begin, t_order)
    sessions = Sessions(customer, begin, t_order, size.astype(np.int64), anon)
    return sessions, concat_rows(parts)


def browse_sessions(
    rng: np.random.Generator, pop: Population, sampler: ProductSampler, start_us: int,
    active_until_us: np.ndarray, season: np.ndarray, offsets: np.ndarray, cfg: ShopConfig,
) -> tuple[Sessions, EventRows]:  # fmt: skip
    """Sessions without an order, while the customer is signed up and alive."""
    begin = np.maximum(pop.created_us, start_us)
    span = np.maximum(active_until_us - begin - 30 * MINUTE_US, 0)
    rate = cfg.browse_rate_base + cfg.browse_rate_per_purchase * pop.rate
    peak = season.max()
    counts = rng.poisson(rate * peak * span / DAY_US)
    customer = np.repeat(np.arange(len(pop), dtype=np.int32), counts)
    t = np.repeat(begin, counts) + (rng.random(len(customer)) * np.repeat(span, counts)).astype(
        np.int64
    )
    day = (t - start_us) // DAY_US
    keep = rng.random(len(t)) < season[day] / peak  # thinning: busier days get more sessions
    customer, t, day = customer[keep], t[keep], day[keep]
    # Inner days take a local shopping hour; the first and last day keep the uniform moment.
    inner = (t - begin[customer] > DAY_US) & (active_until_us[customer] - t > DAY_US)
    shift = offsets[pop.zone[customer[inner]], day[inner]]
    hours = draw_hours(rng, int(inner.sum()), PURCHASE_HOUR_WEIGHTS)
    t[inner] = local_time_in_utc_day(rng, start_us + day[inner] * DAY_US, shift, hours)

    n = len(customer)
    views = 1 + np.minimum(rng.poisson(1.5, size=n), 5)
    added = rng.random(n) < cfg.abandon_cart_share
    checkout = added & (rng.random(n) < cfg.abandon_checkout_share)
    anon = rng.random(n) < cfg.anonymous_share
    size = 1 + views + added + checkout + anon
    s = np.arange(n)
    v_session = np.repeat(s, views)
    viewed = sampler.products(rng, customer[v_session])
    last_view = viewed[np.cumsum(views) - 1]
    first_view = viewed[np.cumsum(views) - views]
    parts = [
        _rows(s, 0, PAGE, first_view),
        _rows(v_session, 1 + within(views), VIEWED, viewed),
        _rows(s[added], 1 + views[added], ADDED, last_view[added], quantity=1),
        _rows(s[checkout], 2 + views[checkout], CHECKOUT, last_view[checkout]),
        _rows(s[anon], size[anon] - 1, IDENTIFY),
    ]
    duration = rng.integers(MINUTE_US, 15 * MINUTE_US, size=n)
    sessions = Sessions(customer, t, t + duration, size.astype(np.int64), anon)
    return sessions, concat_rows(parts)


def event_times(rng: np.random.Generator, sessions: Sessions, rows: EventRows) -> np.ndarray:
    """Spread each session's events over its span, strictly in position order."""
    last = sessions.size[rows.session] - 1
    start = sessions.start_us[rows.session]
    length = sessions.end_us[rows.session] - start
    frac = (rows.pos + 0.8 * rng.random(len(rows.pos))) / np.maximum(last, 1)
    frac = np.where(rows.pos == last, 1.0, frac)
    return start + (frac * length).astype(np.int64)
