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
- alias calls keep their ``previousId`` in the event's ``anonymous_id`` column: identity
  resolution links it to the ``userId`` like an identify call's anonymous id.
- identify calls whose traits carry an email-marketing consent (``email_consent`` or
  ``emailConsent``: true/false, granted/withdrawn, yes/no, subscribed/unsubscribed) add a
  ``consent`` change (source ``identify``) whenever it differs from the previous call's.
  An unknown value is rejected with its reason, never guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sendwise.warehouse.presets import Preset, earliest_of
from sendwise.warehouse.schema import (
    CONSENT,
    CUSTOMER,
    EVENT,
    MAX_PRICE,
    ORDER,
    ORDER_LINE,
    PRODUCT,
)
from sendwise.warehouse.validation import Check, TablePlan, plausible_time

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings
    from sendwise.warehouse.files import Staged


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
    "anonymous_id": ("previousId", "anonymousId"),  # only alias calls carry a previousId
    "ts_text": ("timestamp", "originalTimestamp", "sentAt", "receivedAt"),
    "email": ("traits.email", "context.traits.email", "properties.email"),
    "session_id": ("properties.session_id", "context.session_id", "context.sessionId"),
    "product_id": ("properties.product_id", "properties.sku"),
    "properties": ("properties",),
    "traits": ("traits",),
    "zone": ("context.timezone",),
}


SCALARS = {
    # column: how the message names it, for the reason of a reject
    "type": "type",
    "uid": "userId",
    "message_id": "messageId",
    "event": "event",
    "anonymous_id": "anonymousId",
    "ts_text": "timestamp",
    "email": "email",
    "session_id": "session_id",
    "product_id": "product_id",
    "zone": "timezone",
}
"""Fields that must hold a string or a number: a JSON object or array there is rejected (it
would otherwise become a customer id such as '{"a":1}')."""


CONSENT_TRAITS = ("email_consent", "emailConsent")
"""identify traits that carry the customer's email-marketing consent, first present wins."""
GRANTED = ("true", "granted", "yes", "1", "subscribed", "opted_in", "opt_in")
WITHDRAWN = ("false", "withdrawn", "no", "0", "unsubscribed", "opted_out", "opt_out")


def consent_status(value: object) -> str | None:
    """granted, withdrawn, or None for a value that says neither (the SQL below, in Python)."""
    text = str(value).strip().lower() if value is not None else ""
    return "granted" if text in GRANTED else "withdrawn" if text in WITHDRAWN else None


def _consents(ok: str) -> str:
    """One consent change per identify call whose consent trait differs from the previous
    call's (same customer, in time order)."""
    value = _first(*CONSENT_TRAITS, doc="traits")
    listed = ", ".join(f"'{v}'" for v in (*GRANTED, *WITHDRAWN))
    status = (
        f"CASE WHEN lower(trim(v)) IN ({', '.join(repr(v) for v in GRANTED)}) THEN 'granted'"
        f" WHEN lower(trim(v)) IN ({', '.join(repr(v) for v in WITHDRAWN)}) THEN 'withdrawn'"
        " ELSE v END"
    )
    calls = (
        f"SELECT uid, tsz, ts_text, _k, {status} AS status, lower(trim(v)) IN ({listed}) AS known"
        f" FROM (SELECT *, {value} AS v FROM {ok} WHERE type = 'identify' AND uid IS NOT NULL)"
        " WHERE v IS NOT NULL"
    )
    return (
        "SELECT uid AS customer_id, 'email' AS channel, 'marketing' AS purpose, status,"
        " 'identify' AS source, ts_text AS recorded_at, _k FROM (SELECT *, lag(status) OVER"
        f" (PARTITION BY uid ORDER BY tsz, _k) AS before FROM ({calls}))"
        " WHERE NOT known OR before IS NULL OR before <> status"
    )


def _calls(engine: duckdb.DuckDBPyConnection, staged: Staged) -> str:
    """Parse every line's JSON once (one multi-path extraction) into a table the plans share.

    ``_bad`` names the first field that holds an object or an array where a scalar belongs;
    ``properties`` is the properties' JSON text as sent (validated as an object for the event),
    ``props`` and ``traits`` are null unless they are objects, so that nothing derived from
    them ever parses a string or a number as an object."""
    name = f"{staged.table}_calls"
    paths: list[str] = []
    slots: dict[str, list[str]] = {}
    for column, alternatives in CALL_FIELDS.items():
        slots[column] = []
        for path in alternatives:
            paths.append(f"'$.{path}'")
            slots[column].append(f"v[{len(paths)}]")

    def text(column: str) -> str:
        found = [f"json_extract_string({slot}, '$')" for slot in slots[column]]
        return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

    def shape(slot: str) -> str:  # '{' or '[' for an object or an array (JSON text)
        return f"left(CAST({slot} AS VARCHAR), 1)"

    values = {column: text(column) for column in CALL_FIELDS}
    values["email"] = f"lower({values['email']})"
    values["properties"] = f"CAST({slots['properties'][0]} AS VARCHAR)"
    values["props"] = (
        f"CASE WHEN {shape(slots['properties'][0])} = '{{' THEN {values['properties']} END"
    )
    values["traits"] = (
        f"CASE WHEN {shape(slots['traits'][0])} = '{{'"
        f" THEN CAST({slots['traits'][0]} AS VARCHAR) END"
    )
    bad = " ".join(
        f"WHEN {shape(slot)} IN ('{{', '[') THEN '{SCALARS[column]}'"
        for column in SCALARS
        for slot in slots[column]
    )
    values["_bad"] = f"CASE {bad} END"
    picks = ", ".join(f"{value} AS {column}" for column, value in values.items())
    engine.execute(
        f"CREATE TEMP TABLE {name} AS SELECT *, TRY_CAST(ts_text AS TIMESTAMPTZ) AS tsz FROM ("
        f" SELECT _k, {picks} FROM ("
        f" SELECT _k, json_extract(_text, [{', '.join(paths)}]) AS v FROM {staged.table}))"
    )
    staged.scratch.append(name)
    return name


def plans(engine: duckdb.DuckDBPyConnection, staged: Staged, settings: Settings) -> list[TablePlan]:
    calls = _calls(engine, staged)
    now = datetime.now(UTC).replace(tzinfo=None)
    plausible = plausible_time("CAST(tsz AS TIMESTAMP)", now, earliest_of(settings))
    ok = f"(SELECT * FROM {calls} WHERE _bad IS NULL)"
    latest = "arg_max({x}, tsz) FILTER (WHERE {x} IS NOT NULL)"
    price_ok = f"TRY_CAST({{x}} AS DOUBLE) BETWEEN 0 AND {MAX_PRICE!r}"
    first_seen = f"min(ts_text) FILTER (WHERE {plausible})"

    def trait(*paths: str) -> str:
        return latest.format(x=_first(*paths, doc="traits"))

    def latest_of(field: str, doc: str) -> str:
        if field != "price":
            return latest.format(x=field)
        return f"arg_max({field}, tsz) FILTER (WHERE {price_ok.format(x=field)})"

    identified = (
        f"SELECT uid AS customer_id, {latest.format(x='email')} AS email,"
        f" {trait('first_name', 'firstName')} AS first_name,"
        f" {trait('last_name', 'lastName')} AS last_name,"
        f" coalesce({trait('created_at', 'createdAt')}, {first_seen}) AS created_at,"
        f" {trait('address.country', 'country')} AS country,"
        f" {trait('address.city', 'city')} AS city,"
        f" {latest.format(x='zone')} AS timezone, {latest.format(x='traits')} AS attributes,"
        f" min(_k) AS _k FROM {ok} WHERE type = 'identify' AND uid IS NOT NULL GROUP BY uid"
    )
    bare = (
        f"SELECT uid AS customer_id, {first_seen} AS created_at, min(_k) AS _k FROM {ok}"
        f" WHERE uid IS NOT NULL GROUP BY uid HAVING NOT bool_or(type = 'identify')"
    )
    completed = f"SELECT * FROM {ok} WHERE event = 'Order Completed'"
    products_of = "json_extract(c.props, '$.products')"
    items = (
        "SELECT c._k, c.tsz, c.uid, c.props, p.value AS item, p.ord AS ord FROM"
        f" ({completed}) c, unnest(CASE WHEN json_type({products_of}) = 'ARRAY'"
        f" THEN CAST({products_of} AS JSON[]) END) WITH ORDINALITY AS p(value, ord)"
    )
    hinted = (
        "SELECT _k, tsz, product_id AS pid, "
        + ", ".join(f"{_get(f, 'props')} AS {f}" for f in PRODUCT_FIELDS)
        + f" FROM {ok} WHERE product_id IS NOT NULL UNION ALL"
        f" SELECT _k, tsz, {_first('product_id', 'sku', doc='item')}, "
        + ", ".join(_get(f, "item") for f in PRODUCT_FIELDS)
        + f" FROM ({items})"
    )
    products = (
        "SELECT pid AS product_id, coalesce("
        + latest.format(x="name")
        + ", pid) AS name, "
        + ", ".join(f"{latest_of(f, 'x')} AS {f}" for f in PRODUCT_FIELDS[1:])
        + f", min(_k) AS _k FROM ({hinted}) WHERE pid IS NOT NULL GROUP BY pid"
    )
    orders = (
        f"SELECT {_get('order_id', 'props')} AS order_id, uid AS customer_id,"
        " ts_text AS ordered_at, 'completed' AS status,"
        f" upper({_get('currency', 'props')}) AS currency, _k FROM ({completed})"
    )
    lines = (
        f"SELECT {_get('order_id', 'props')} AS order_id, ord AS line_number,"
        f" {_first('product_id', 'sku', doc='item')} AS product_id,"
        f" coalesce({_get('quantity', 'item')}, '1') AS quantity,"
        f" {_get('price', 'item')} AS unit_price, _k FROM ({items})"
    )
    events = (
        "SELECT message_id, type, event, uid AS user_id, anonymous_id, email,"
        " ts_text AS occurred_at, session_id, product_id, properties, _k, _bad"
        f" FROM {calls}"
    )
    not_scalar = Check(
        "type",
        "t._bad IS NOT NULL",
        "t._bad || ': a JSON object or array where a string or a number belongs'",
    )
    zone = settings.ingest.timezone
    return [
        TablePlan(CUSTOMER, identified, timezone=zone, patch=True),
        TablePlan(CUSTOMER, bare, timezone=zone, only_new=True),
        TablePlan(PRODUCT, products, only_new=True),
        TablePlan(ORDER, orders, timezone=zone),
        TablePlan(ORDER_LINE, lines),
        TablePlan(EVENT, events, primary=True, timezone=zone, checks=[not_scalar]),
        TablePlan(CONSENT, _consents(ok), timezone=zone),
    ]


PRODUCT_FIELDS = ("name", "category", "price", "url", "image_url")


PRESET = Preset("segment", "jsonl", plans, "Segment track/identify/page calls (JSON Lines)")
