"""The order and order_line tables, and the JSON an 'Order Completed' event carries."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from sendwise.simulate.orders import OrderBook, segment_take
from sendwise.simulate.session_events import within
from sendwise.simulate.strings import (
    concat,
    decimals,
    id_width,
    json_list,
    lookup,
    numbers,
    prefixed_ids,
    table,
    timestamps,
)

logger = logging.getLogger(__name__)

CURRENCY = "GBP"
STATUS_NAMES = ("completed", "refund")


def order_ids(book: OrderBook) -> pa.Array:
    n = len(book.customer)
    return prefixed_ids("O", n, id_width(n, 8))


def order_table(book: OrderBook, ids: pa.Array, customer_ids: pa.Array) -> pa.Table:
    n = len(book.customer)
    return table(
        "order",
        {
            "order_id": ids,
            "customer_id": customer_ids.take(pa.array(book.customer.astype(np.int64))),
            "ordered_at": timestamps(book.time_us),
            "status": lookup(STATUS_NAMES, book.status),
            "currency": lookup([CURRENCY], np.zeros(n, dtype=np.int64)),
            "refund_of": lookup(ids, book.refund_of, mask=book.refund_of < 0),
        },
    )


def order_line_table(book: OrderBook, ids: pa.Array, product_ids: pa.Array) -> pa.Table:
    counts = np.diff(book.lines.offsets)
    order_of_line = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return table(
        "order_line",
        {
            "order_id": ids.take(pa.array(order_of_line)),
            "line_number": pa.array(within(counts) + 1, pa.int64()),
            "product_id": lookup(product_ids, book.lines.product),
            "quantity": pa.array(book.lines.quantity, pa.int64()),
            "unit_price": pa.array(book.lines.unit_price, pa.float64()),
        },
    )


def order_json(
    book: OrderBook, orders: np.ndarray, ids: pa.Array, product_ids: pa.Array
) -> pa.Array:
    """Segment 'Order Completed' properties of ``orders``: id, total, currency, products."""
    line_pos = segment_take(book.lines.offsets, orders)
    counts = np.diff(book.lines.offsets)[orders]
    items = concat(
        '{"product_id":"',
        lookup(product_ids, book.lines.product[line_pos]),
        '","quantity":',
        numbers(book.lines.quantity[line_pos]),
        ',"price":',
        decimals(book.lines.unit_price[line_pos]),
        "}",
    )
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return concat(
        '{"order_id":"',
        lookup(ids, orders),
        '","total":',
        decimals(book.total[orders]),
        f',"currency":"{CURRENCY}","products":',
        json_list(items, offsets),
        "}",
    )
