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


def _get(path: str, doc: str = "_text") -> str:
    return f"json_extract_string({doc}, '$.{path}')"


def _first(*paths: str, doc: str = "_text") -> str:
    return "coalesce(" + ", ".join(_get(p, doc) for p in paths) + ")"


CALL_FIELDS = {
    # column: JSON paths, first present wins
    "type": ("type",),
    "uid": ("userId",),
    "message_id": ("messageId",),
    "event": ("event",),
    "anonymous_id": ("anonymousId",),
    "ts_text": ("timestamp", "originalTimestamp", "sentAt", "receivedAt"),
    "email": ("traits.email", "context.traits.email", "properties.email"),
    "session_id": ("properties.session_id", "context.session_id", "context.sessionId"),
    "product_id": ("properties.product_id", "properties.sku"),
    "properties": ("properties",),
    "traits": ("traits",),
    "zone": ("context.timezone",),
}


def _calls(engine: duckdb.DuckDBPyConnection, staged: Staged) -> str:
    """Parse every line's JSON once (one multi-path extraction) into a table the plans share."""
    name = f"{staged.table}_calls"
    paths: list[str] = []
    values: dict[str, str] = {}
    for column, alternatives in CALL_FIELDS.items():
        slots = []
        for path in alternatives:
            paths.append(f"'$.{path}'")
            slots.append(f"v[{len(paths)}]")
        values[column] = slots[0] if len(slots) == 1 else f"coalesce({', '.join(slots)})"
    values["email"] = f"lower({values['email']})"
    picks = ", ".join(f"{value} AS {column}" for column, value in values.items())
    engine.execute(
        f"CREATE TEMP TABLE {name} AS SELECT _k, {picks},"
        f" TRY_CAST({values['ts_text']} AS TIMESTAMPTZ) AS tsz FROM ("
        f" SELECT _k, json_extract_string(_text, [{', '.join(paths)}]) AS v FROM {staged.table})"
    )
    staged.scratch.append(name)
    return name


def plans(engine: duckdb.DuckDBPyConnection, staged: Staged, settings: Settings) -> list[TablePlan]:
    calls = _calls(engine, staged)
    latest = "arg_max({x}, tsz) FILTER (WHERE {x} IS NOT NULL)"

    def trait(*paths: str) -> str:
        return latest.format(x=_first(*paths, doc="traits"))

    identified = (
        f"SELECT uid AS customer_id, {latest.format(x='email')} AS email,"
        f" {trait('first_name', 'firstName')} AS first_name,"
        f" {trait('last_name', 'lastName')} AS last_name,"
        f" coalesce({trait('created_at', 'createdAt')}, min(ts_text)) AS created_at,"
        f" {trait('address.country', 'country')} AS country,"
        f" {trait('address.city', 'city')} AS city,"
        f" {latest.format(x='zone')} AS timezone, {latest.format(x='traits')} AS attributes,"
        f" min(_k) AS _k FROM {calls} WHERE type = 'identify' AND uid IS NOT NULL GROUP BY uid"
    )
    bare = (
        f"SELECT uid AS customer_id, min(ts_text) AS created_at, min(_k) AS _k FROM {calls}"
        f" WHERE uid IS NOT NULL GROUP BY uid HAVING NOT bool_or(type = 'identify')"
    )
    completed = f"SELECT * FROM {calls} WHERE event = 'Order Completed'"
    items = (
        "SELECT c._k, c.tsz, c.uid, c.properties, p.value AS item, p.ord AS ord FROM"
        f" ({completed}) c, unnest(CAST(json_extract(c.properties, '$.products') AS JSON[]))"
        " WITH ORDINALITY AS p(value, ord)"
    )
    hinted = (
        "SELECT _k, tsz, product_id AS pid, "
        + ", ".join(f"{_get(f, 'properties')} AS {f}" for f in PRODUCT_FIELDS)
        + f" FROM {calls} WHERE product_id IS NOT NULL UNION ALL"
        f" SELECT _k, tsz, {_first('product_id', 'sku', doc='item')}, "
        + ", ".join(_get(f, "item") for f in PRODUCT_FIELDS)
        + f" FROM ({items})"
    )
    products = (
        "SELECT pid AS product_id, coalesce("
        + latest.format(x="name")
        + ", pid) AS name, "
        + ", ".join(f"{latest.format(x=f)} AS {f}" for f in PRODUCT_FIELDS[1:])
        + f", min(_k) AS _k FROM ({hinted}) WHERE pid IS NOT NULL GROUP BY pid"
    )
    orders = (
        f"SELECT {_get('order_id', 'properties')} AS order_id, uid AS customer_id,"
        " ts_text AS ordered_at, 'completed' AS status,"
        f" upper({_get('currency', 'properties')}) AS currency, _k FROM ({completed})"
    )
    lines = (
        f"SELECT {_get('order_id', 'properties')} AS order_id, ord AS line_number,"
        f" {_first('product_id', 'sku', doc='item')} AS product_id,"
        f" coalesce({_get('quantity', 'item')}, '1') AS quantity,"
        f" {_get('price', 'item')} AS unit_price, _k FROM ({items})"
    )
    events = (
        "SELECT message_id, type, event, uid AS user_id, anonymous_id, email,"
        " ts_text AS occurred_at, session_id, product_id, properties, _k"
        f" FROM {calls}"
    )
    zone = settings.ingest.timezone
    return [
        TablePlan(CUSTOMER, identified, timezone=zone, patch=True),
        TablePlan(CUSTOMER, bare, timezone=zone, only_new=True),
        TablePlan(PRODUCT, products, only_new=True),
        TablePlan(ORDER, orders, timezone=zone),
        TablePlan(ORDER_LINE, lines),
        TablePlan(EVENT, events, primary=True, timezone=zone),
    ]


PRODUCT_FIELDS = ("name", "category", "price", "url", "image_url")


PRESET = Preset("segment", "jsonl", plans, "Segment track/identify/page calls (JSON Lines)")
