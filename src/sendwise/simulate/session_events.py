"""Sessions expanded into their events, one block of sessions at a time.

A session that ends in an order runs: page, extra product views, a view and an add per order
line, checkout, (identify, when it began anonymous), order. A browse-only session runs: page,
views, maybe an add and a checkout, (identify). Events are spread over the session's span in
that order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from sendwise.simulate.catalogue import ProductSampler
from sendwise.simulate.orders import OrderBook
from sendwise.simulate.sessions import Sessions

logger = logging.getLogger(__name__)

EVENT_KINDS = ("page", "identify", "Product Viewed", "Product Added", "Checkout Started",
               "Order Completed")  # fmt: skip
PAGE, IDENTIFY, VIEWED, ADDED, CHECKOUT, ORDER_COMPLETED = range(len(EVENT_KINDS))


@dataclass
class EventRows:
    """The events of a block of sessions, sorted by time."""

    session: np.ndarray  # int64 position of the session (its number is this + 1)
    pos: np.ndarray  # int32 place of the event in its session
    kind: np.ndarray  # int8 index into EVENT_KINDS
    product: np.ndarray  # int32, -1 for none
    order: np.ndarray  # int32 position in the OrderBook, -1 for none
    quantity: np.ndarray  # int8
    time_us: np.ndarray | None = None  # int64

    def __len__(self) -> int:
        return len(self.session)

    def take(self, index: np.ndarray) -> EventRows:
        return EventRows(*(getattr(self, f.name)[index] for f in fields(self)))


def within(counts: np.ndarray) -> np.ndarray:
    """0, 1, .., c-1 for every count c, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


def _rows(session, pos, kind, product=-1, order=-1, quantity=0) -> EventRows:
    n = len(session)

    def fill(value, dtype) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), n).copy()

    return EventRows(
        session=fill(session, np.int64),
        pos=fill(pos, np.int32),
        kind=fill(kind, np.int8),
        product=fill(product, np.int32),
        order=fill(order, np.int32),
        quantity=fill(quantity, np.int8),
    )


def _purchase_rows(rng, s: Sessions, p: np.ndarray, book: OrderBook, sampler) -> list[EventRows]:
    order = s.order[p]
    n_lines = np.diff(book.lines.offsets)[order]
    first_line = book.lines.offsets[order]
    views = s.views[p].astype(np.int64)
    x_session = np.repeat(p, views)
    line_session = np.repeat(np.arange(len(p)), n_lines)
    line_no = within(n_lines)
    line = np.repeat(first_line, n_lines) + line_no
    line_product = book.lines.product[line]
    before_lines = 1 + views[line_session] + line_no
    anon = s.anonymous[p]
    return [
        _rows(p, 0, PAGE, book.lines.product[first_line]),
        _rows(x_session, 1 + within(views), VIEWED, sampler.products(rng, s.customer[x_session])),
        _rows(p[line_session], before_lines, VIEWED, line_product),
        _rows(p[line_session], before_lines + n_lines[line_session], ADDED, line_product,
              quantity=book.lines.quantity[line]),
        _rows(p, 1 + views + 2 * n_lines, CHECKOUT, order=order),
        _rows(p[anon], 2 + views[anon] + 2 * n_lines[anon], IDENTIFY),
        _rows(p, s.size[p] - 1, ORDER_COMPLETED, order=order),
    ]  # fmt: skip


def _browse_rows(rng, s: Sessions, b: np.ndarray, sampler: ProductSampler) -> list[EventRows]:
    views = s.views[b].astype(np.int64)
    v_session = np.repeat(b, views)
    viewed = sampler.products(rng, s.customer[v_session])
    last_view = viewed[np.cumsum(views) - 1]
    first_view = viewed[np.cumsum(views) - views]
    added, checkout, anon = s.added[b], s.checkout[b], s.anonymous[b]
    return [
        _rows(b, 0, PAGE, first_view),
        _rows(v_session, 1 + within(views), VIEWED, viewed),
        _rows(b[added], 1 + views[added], ADDED, last_view[added], quantity=1),
        _rows(b[checkout], 2 + views[checkout], CHECKOUT, last_view[checkout]),
        _rows(b[anon], s.size[b[anon]] - 1, IDENTIFY),
    ]


def expand(
    rng: np.random.Generator,
    sessions: Sessions,
    lo: int,
    hi: int,
    book: OrderBook,
    sampler: ProductSampler,
) -> EventRows:
    """The events of sessions ``lo`` .. ``hi - 1``, sorted by time."""
    s = sessions.take(np.arange(lo, hi))
    bought = np.flatnonzero(s.order >= 0)
    browsed = np.flatnonzero(s.order < 0)
    parts = [
        *_purchase_rows(rng, s, bought, book, sampler),
        *_browse_rows(rng, s, browsed, sampler),
    ]
    rows = EventRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("session", "pos",
                     "kind", "product", "order", "quantity")))  # fmt: skip
    # Spread events over the session span, strictly in position order.
    last = s.size[rows.session] - 1
    start = s.start_us[rows.session]
    frac = (rows.pos + 0.8 * rng.random(len(rows))) / np.maximum(last, 1)
    frac = np.where(rows.pos == last, 1.0, frac)
    rows.time_us = start + (frac * (s.end_us[rows.session] - start)).astype(np.int64)
    rows.session += lo
    return rows.take(np.lexsort((rows.pos, rows.time_us)))


def blocks(sessions: Sessions, rows_per_block: int) -> Iterator[tuple[int, int]]:
    """Consecutive session ranges [lo, hi) of about ``rows_per_block`` events each."""
    ends = np.cumsum(sessions.size, dtype=np.int64)
    lo = 0
    while lo < len(sessions):
        base = ends[lo - 1] if lo else 0
        hi = int(np.searchsorted(ends, base + rows_per_block, side="right"))
        hi = max(hi, lo + 1)
        yield lo, hi
        lo = hi
