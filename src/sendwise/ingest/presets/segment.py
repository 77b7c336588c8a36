"""Segment JSON Lines: one track, identify or page call per line (the Segment Spec).

- Every call becomes an ``event`` row (the file's primary table): messageId, type, event,
  userId, anonymousId, the email from traits or properties, timestamp (falling back to
  originalTimestamp, sentAt, receivedAt), session id, properties.product_id and properties.
- identify calls create or update customers from their traits (email, first_name/firstName,
  last_name/lastName, createdAt, address.country, address.city, context.timezone); the latest
  call wins. A userId seen only in other calls creates a bare customer, never overwriting one.
- Products named in events (properties, or the products of 'Order Completed') are added to the
  catalogue when unknown, never overwriting it.
- 'Order Completed' calls become orders (properties.order_id, currency) with one line per
  entry of properties.products (product_id or sku, quantity, price).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sendwise.ingest.presets import Preset
from sendwise.ingest.validate import TablePlan
from sendwise.warehouse.schema import CUSTOMER, EVENT, ORDER, ORDER_LINE, PRODUCT

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings
    from sendwise.ingest.sources import Staged


def _get(path: str, doc: str = "_doc") -> str:
    return f"json_extract_string({doc}, '$.{path}')"


def _first(*paths: str, doc: str = "_doc") -> str:
    return "coalesce(" + ", ".join(_get(p, doc) for p in paths) + ")"


def plans(engine: duckdb.DuckDBPyConnection, staged: Staged, settings: Settings) -> list[TablePlan]:
    ts = _first("timestamp", "originalTimestamp", "sentAt", "receivedAt")
    calls = (
        f"SELECT _k, _doc, {_get('type')} AS type, {_get('userId')} AS uid,"
        f" {ts} AS ts_text, TRY_CAST({ts} AS TIMESTAMPTZ) AS tsz,"
        f" lower({_first('traits.email', 'context.traits.email', 'properties.email')}) AS email"
        f" FROM {staged.table}"
    )
    latest = "arg_max({x}, tsz) FILTER (WHERE {x} IS NOT NULL)"

    def trait(*paths: str) -> str:
        return latest.format(x=_first(*paths))

    identified = (
        f"SELECT uid AS customer_id, {latest.format(x='email')} AS email,"
        f" {trait('traits.first_name', 'traits.firstName')} AS first_name,"
        f" {trait('traits.last_name', 'traits.lastName')} AS last_name,"
        f" coalesce({trait('traits.created_at', 'traits.createdAt')}, min(ts_text)) AS created_at,"
        f" {trait('traits.address.country', 'traits.country')} AS country,"
        f" {trait('traits.address.city', 'traits.city')} AS city,"
        f" {trait('context.timezone')} AS timezone,"
        f" {latest.format(x='CAST(json_extract(_doc, ' + chr(39) + '$.traits' + chr(39) + ') AS VARCHAR)')}"
        " AS attributes, min(_k) AS _k"
        f" FROM ({calls}) WHERE type = 'identify' AND uid IS NOT NULL GROUP BY uid"
    )
    bare = (
        f"SELECT uid AS customer_id, min(ts_text) AS created_at, min(_k) AS _k FROM ({calls})"
        f" WHERE uid IS NOT NULL AND uid NOT IN (SELECT uid FROM ({calls})"
        " WHERE type = 'identify' AND uid IS NOT NULL) GROUP BY uid"
    )
    items = (
        "SELECT c._k, c.tsz, c.uid, c.ts_text, c._doc, p.value AS item, p.ord AS ord FROM"
        f" ({calls}) c, unnest(CAST(json_extract(c._doc, '$.properties.products') AS JSON[]))"
        " WITH ORDINALITY AS p(value, ord)"
        f" WHERE {_get('event', 'c._doc')} = 'Order Completed'"
    )
    hinted = (
        f"SELECT _k, tsz, {_first('properties.product_id', 'properties.sku')} AS pid,"
        f" {_get('properties.name')} AS name, {_get('properties.category')} AS category,"
        f" {_get('properties.price')} AS price, {_get('properties.url')} AS url,"
        f" {_get('properties.image_url')} AS image_url FROM ({calls})"
        f" UNION ALL SELECT _k, tsz, {_first('product_id', 'sku', doc='item')},"
        f" {_get('name', 'item')}, {_get('category', 'item')}, {_get('price', 'item')},"
        f" {_get('url', 'item')}, {_get('image_url', 'item')} FROM ({items})"
    )
    products = (
        "SELECT pid AS product_id, coalesce(" + latest.format(x="name") + ", pid) AS name,"
        f" {latest.format(x='category')} AS category, {latest.format(x='price')} AS price,"
        f" {latest.format(x='url')} AS url, {latest.format(x='image_url')} AS image_url,"
        f" min(_k) AS _k FROM ({hinted}) WHERE pid IS NOT NULL GROUP BY pid"
    )
    orders = (
        f"SELECT {_get('properties.order_id')} AS order_id, uid AS customer_id,"
        f" ts_text AS ordered_at, 'completed' AS status, upper({_get('properties.currency')})"
        f" AS currency, _k FROM ({calls}) WHERE {_get('event')} = 'Order Completed'"
    )
    lines = (
        f"SELECT {_get('properties.order_id', 'c._doc')} AS order_id, ord AS line_number,"
        f" {_first('product_id', 'sku', doc='item')} AS product_id,"
        f" coalesce({_get('quantity', 'item')}, '1') AS quantity,"
        f" {_get('price', 'item')} AS unit_price, _k FROM ({items}) c"
    )
    events = (
        f"SELECT {_get('messageId')} AS message_id, type, {_get('event')} AS event,"
        f" uid AS user_id, {_get('anonymousId')} AS anonymous_id, email, ts_text AS occurred_at,"
        f" {_first('properties.session_id', 'context.session_id', 'context.sessionId')}"
        f" AS session_id, {_first('properties.product_id', 'properties.sku')} AS product_id,"
        f" CAST(json_extract(_doc, '$.properties') AS VARCHAR) AS properties, _k FROM ({calls})"
    )
    zone = settings.ingest.timezone
    return [
        TablePlan(CUSTOMER, identified, timezone=zone),
        TablePlan(CUSTOMER, bare, timezone=zone, only_new=True),
        TablePlan(PRODUCT, products, only_new=True),
        TablePlan(ORDER, orders, timezone=zone),
        TablePlan(ORDER_LINE, lines),
        TablePlan(EVENT, events, primary=True, timezone=zone),
    ]


PRESET = Preset("segment", "jsonl", plans, "Segment track/identify/page calls (JSON Lines)")
