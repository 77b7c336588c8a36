"""The event table: Segment-style track, page and identify calls, built chunk by chunk.

Anonymous sessions carry only an anonymous_id until their identify call, which carries both
ids (and the email), so a loader can link the whole session to the customer. The ``identity``
column is left null: the loader fills it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sendwise.simulate.catalogue import Catalogue
from sendwise.simulate.orders import OrderBook
from sendwise.simulate.render_orders import CURRENCY, order_json
from sendwise.simulate.sessions import (
    ADDED,
    CHECKOUT,
    COMPLETED_EVENT,
    EVENT_KINDS,
    IDENTIFY,
    PAGE,
    VIEWED,
)
from sendwise.simulate.strings import (
    concat,
    decimals,
    in_chunks,
    lookup,
    numbers,
    table,
    timestamps,
)
from sendwise.simulate.vocabulary import CATEGORIES

logger = logging.getLogger(__name__)

EVENT_TYPES = ("page", "identify", "track", "track", "track", "track")
EVENT_NAMES = (None, None, *EVENT_KINDS[2:])


@dataclass
class EventFrame:
    """All events as numbers, sorted by time."""

    time_us: np.ndarray  # int64
    customer: np.ndarray  # int32
    session: np.ndarray  # int64 session number (1-based, in order of session start)
    anonymous: np.ndarray  # bool: the session began anonymous
    kind: np.ndarray  # int8 index into EVENT_KINDS
    product: np.ndarray  # int32, -1 for none
    order: np.ndarray  # int32 position in the OrderBook, -1 for none
    quantity: np.ndarray  # int8

    def __len__(self) -> int:
        return len(self.time_us)


@dataclass
class EventContext:
    customer_ids: pa.Array
    emails: pa.Array
    product_ids: pa.Array
    order_ids: pa.Array
    catalogue: Catalogue
    book: OrderBook

    def product_prefix(self) -> pa.Array:
        """'{"product_id":"P000001","price":24.99' per product; callers close the object."""
        return concat(
            '{"product_id":"', self.product_ids, '","price":', decimals(self.catalogue.price)
        )


def _scatter(n: int, pieces: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """One array of length ``n`` from (row positions, values) pieces covering every row."""
    positions = np.concatenate([p for p, _ in pieces])
    values = pa.concat_arrays([v.cast(pa.string()) for _, v in pieces])
    inverse = np.empty(n, dtype=np.int64)
    inverse[positions] = np.arange(n)
    return values.take(pa.array(inverse))


def _properties(f: EventFrame, lo: int, hi: int, ctx: EventContext, prefix: pa.Array):
    kind = f.kind[lo:hi]
    product = f.product[lo:hi]
    order = f.order[lo:hi]
    rows = {k: np.flatnonzero(kind == k) for k in range(len(EVENT_KINDS))}
    paths = [f'{{"path":"/c/{c.name.lower()}","category":"{c.name}"}}' for c in CATEGORIES]
    page = rows[PAGE]
    checkout = rows[CHECKOUT]
    with_order = checkout[order[checkout] >= 0]
    abandoned = checkout[order[checkout] < 0]
    added = rows[ADDED]
    done = rows[COMPLETED_EVENT]
    return _scatter(
        hi - lo,
        [
            (page, lookup(paths, ctx.catalogue.category[product[page]])),
            (rows[IDENTIFY], pa.nulls(len(rows[IDENTIFY]), pa.string())),
            (rows[VIEWED], concat(lookup(prefix, product[rows[VIEWED]]), "}")),
            (added, concat(lookup(prefix, product[added]), ',"quantity":',
                           numbers(f.quantity[lo:hi][added]), "}")),
            (with_order, concat('{"order_id":"', lookup(ctx.order_ids, order[with_order]),
                                '","value":', decimals(ctx.book.total[order[with_order]]),
                                f',"currency":"{CURRENCY}"}}')),
            (abandoned, concat('{"value":', decimals(ctx.catalogue.price[product[abandoned]]),
                               f',"currency":"{CURRENCY}"}}')),
            (done, order_json(ctx.book, order[done].astype(np.int64), ctx.order_ids,
                              ctx.product_ids)),
        ],
    )  # fmt: skip


def event_table(f: EventFrame, ctx: EventContext) -> pa.Table:
    prefix = ctx.product_prefix()

    def build(lo: int, hi: int) -> pa.Table:
        kind = f.kind[lo:hi]
        anon = f.anonymous[lo:hi]
        customer = f.customer[lo:hi]
        no_user = anon & (kind != IDENTIFY) & (kind != COMPLETED_EVENT)
        user = lookup(ctx.customer_ids, customer, mask=no_user)
        product = f.product[lo:hi]
        no_product = (kind != VIEWED) & (kind != ADDED)
        return table(
            "event",
            {
                "message_id": concat("m", numbers(np.arange(lo + 1, hi + 1))),
                "type": lookup(EVENT_TYPES, kind),
                "event": lookup(EVENT_NAMES, kind),
                "customer_id": user,
                "user_id": user,
                "anonymous_id": concat("a", numbers(f.session[lo:hi], mask=~anon)),
                "email": lookup(ctx.emails, customer, mask=kind != IDENTIFY),
                "occurred_at": timestamps(f.time_us[lo:hi]),
                "session_id": concat("s", numbers(f.session[lo:hi])),
                "product_id": lookup(ctx.product_ids, product, mask=no_product),
                "properties": _properties(f, lo, hi, ctx, prefix),
            },
        )

    return pa.concat_tables(in_chunks(len(f), build))
