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

from sendwise.simulate.catalogue import Catalogue, ProductSampler
from sendwise.simulate.orders import OrderBook
from sendwise.simulate.render_orders import CURRENCY, order_json
from sendwise.simulate.session_events import (
    ADDED,
    CHECKOUT,
    EVENT_KINDS,
    IDENTIFY,
    ORDER_COMPLETED,
    PAGE,
    VIEWED,
    EventRows,
    blocks,
    expand,
)
from sendwise.simulate.sessions import Sessions
from sendwise.simulate.strings import (
    NullColumns,
    concat,
    decimals,
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


def _properties(rows: EventRows, ctx: EventContext, prefix: pa.Array) -> pa.Array:
    kind, product, order = rows.kind, rows.product, rows.order
    at = {k: np.flatnonzero(kind == k) for k in range(len(EVENT_KINDS))}
    paths = [f'{{"path":"/c/{c.name.lower()}","category":"{c.name}"}}' for c in CATEGORIES]
    page, added, done = at[PAGE], at[ADDED], at[ORDER_COMPLETED]
    with_order = at[CHECKOUT][order[at[CHECKOUT]] >= 0]
    abandoned = at[CHECKOUT][order[at[CHECKOUT]] < 0]
    return _scatter(
        len(rows),
        [
            (page, lookup(paths, ctx.catalogue.category[product[page]])),
            (at[IDENTIFY], pa.nulls(len(at[IDENTIFY]), pa.string())),
            (at[VIEWED], concat(lookup(prefix, product[at[VIEWED]]), "}")),
            (added, concat(lookup(prefix, product[added]), ',"quantity":',
                           numbers(rows.quantity[added]), "}")),
            (with_order, concat('{"order_id":"', lookup(ctx.order_ids, order[with_order]),
                                '","value":', decimals(ctx.book.total[order[with_order]]),
                                f',"currency":"{CURRENCY}"}}')),
            (abandoned, concat('{"value":', decimals(ctx.catalogue.price[product[abandoned]]),
                               f',"currency":"{CURRENCY}"}}')),
            (done, order_json(ctx.book, order[done].astype(np.int64), ctx.order_ids,
                              ctx.product_ids)),
        ],
    )  # fmt: skip


def _event_chunk(
    rows: EventRows,
    first: int,
    sessions: Sessions,
    ctx: EventContext,
    prefix: pa.Array,
    nulls: NullColumns,
) -> pa.Table:
    kind = rows.kind
    assert rows.time_us is not None, "events are timed before they are rendered"
    anon = sessions.anonymous[rows.session]
    customer = sessions.customer[rows.session]
    number = rows.session + 1
    no_user = anon & (kind != IDENTIFY) & (kind != ORDER_COMPLETED)
    user = lookup(ctx.customer_ids, customer, mask=no_user)  # one buffer, two columns
    no_product = (kind != VIEWED) & (kind != ADDED)
    return table(
        "event",
        {
            "message_id": concat("m", numbers(np.arange(first, first + len(rows)))),
            "type": lookup(EVENT_TYPES, kind),
            "event": lookup(EVENT_NAMES, kind),
            "customer_id": user,
            "user_id": user,
            "anonymous_id": concat("a", numbers(number, mask=~anon)),
            "email": lookup(ctx.emails, customer, mask=kind != IDENTIFY),
            "occurred_at": timestamps(rows.time_us),
            "session_id": concat("s", numbers(number)),
            "product_id": lookup(ctx.product_ids, rows.product, mask=no_product),
            "properties": _properties(rows, ctx, prefix),
        },
        nulls,
    )


def event_table(
    rng: np.random.Generator,
    sessions: Sessions,
    ctx: EventContext,
    sampler: ProductSampler,
    rows_per_chunk: int = 500_000,
) -> pa.Table:
    """The event table, expanding and rendering ``rows_per_chunk`` events at a time."""
    prefix = ctx.product_prefix()
    chunks = []
    nulls = NullColumns()
    first = 1
    for lo, hi in blocks(sessions, rows_per_chunk):
        rows = expand(rng, sessions, lo, hi, ctx.book, sampler)
        chunks.append(_event_chunk(rows, first, sessions, ctx, prefix, nulls))
        first += len(rows)
    if not chunks:
        return table("event", {"message_id": pa.array([], pa.string())})
    return pa.concat_tables(chunks)
