"""The canonical warehouse tables: one declaration that the DDL, the loaders' validation and
``docs/data-model.md`` are all derived from.

Every timestamp column holds UTC as a naive ``timestamp``: inputs with an offset are converted,
inputs without one are read in the source's time zone (``ingest.timezone``, UTC by default) and
converted. Nothing in the warehouse is in local time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """An Ibis type name: string, int64, float64, boolean, timestamp, date."""
    required: bool = False
    doc: str = ""
    check: str | None = None
    """A named value check from :mod:`sendwise.warehouse.validation` (email, non_negative, ...)."""
    allowed: tuple[str, ...] = ()
    """The closed set of values for an enumerated column."""
    default: str | None = None
    """SQL literal used when the column is absent from the input."""
    maximum: float | None = None
    """The largest plausible absolute value of a number (see docs/adr/0061): a larger one is
    rejected, so that no build meets sums that overflow to infinity."""


@dataclass(frozen=True)
class Reference:
    column: str
    table: str
    target: str
    optional: bool = True
    """Null is allowed (a guest order has no customer)."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    loadable: bool = True
    """Users load it from files (``reject`` and the bookkeeping tables are written by sendwise)."""
    upsert: bool = False
    """Rows whose key is already stored replace it when their content differs (dimensions);
    fact tables instead reject a conflicting row, so history is never rewritten."""
    derived: tuple[str, ...] = ()
    """Columns sendwise fills after loading (identity resolution): a reload that does not carry
    them is not a change."""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ibis_schema(self) -> ibis.Schema:
        return ibis.schema({c.name: dt.dtype(c.type) for c in self.columns})


MAX_PRICE = 1e9
"""Prices above a billion (in any currency) are typing errors or attacks, not products."""
MAX_QUANTITY = 1e6
"""Units of one line (and line numbers) above a million are not a shop's orders."""

EMAIL_EVENT_TYPES = (
    "send",
    "delivered",
    "open",
    "click",
    "bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "skipped",
    "failed",
    "conversion",
)
ORDER_STATUSES = ("completed", "refund", "cancelled", "adjustment")

CUSTOMER = TableSpec(
    "customer",
    "One row per customer: identity and the attributes a shop knows about them.",
    (
        Column("customer_id", "string", True, "The shop's own customer id (text, trimmed)."),
        Column("email", "string", False, "Lower-cased, trimmed address; validated.", check="email"),
        Column("first_name", "string"),
        Column("last_name", "string"),
        Column(
            "created_at", "timestamp", False, "When the customer signed up or first bought (UTC)."
        ),
        Column("country", "string"),
        Column("city", "string"),
        Column(
            "timezone", "string", False, "IANA zone, for send-time optimisation.", check="timezone"
        ),
        Column("attributes", "string", False, "Any other fields, as a JSON object.", check="json"),
    ),
    key=("customer_id",),
    upsert=True,
)

PRODUCT = TableSpec(
    "product",
    "One row per product of the catalogue.",
    (
        Column("product_id", "string", True, "The shop's SKU or product id."),
        Column("name", "string", True),
        Column("description", "string"),
        Column("category", "string", False, "Top-level category, used by next-best-category."),
        Column(
            "price",
            "float64",
            False,
            "Current list price; never negative.",
            check="non_negative",
            maximum=MAX_PRICE,
        ),
        Column(
            "in_stock", "boolean", False, "False excludes it from recommendations.", default="true"
        ),
        Column("url", "string", False, "Absolute http(s) URL of the product page.", check="url"),
        Column("image_url", "string", False, "Absolute http(s) URL of its image.", check="url"),
        Column("created_at", "timestamp", False, "When it entered the catalogue (UTC)."),
    ),
    key=("product_id",),
    upsert=True,
)

ORDER = TableSpec(
    "order",
    "One row per order (invoice). Refunds are orders of status 'refund' whose lines have negative"
    " quantities; they stay linked to their customer.",
    (
        Column("order_id", "string", True),
        Column("customer_id", "string", False, "Null for a guest order."),
        Column("ordered_at", "timestamp", True, "When the order was placed (UTC)."),
        Column("status", "string", True, allowed=ORDER_STATUSES, default="'completed'"),
        Column("currency", "string", False, "ISO 4217 code.", check="currency"),
        Column("refund_of", "string", False, "The order a refund reverses, when the source says."),
    ),
    key=("order_id",),
    references=(Reference("customer_id", "customer", "customer_id"),),
)

ORDER_LINE = TableSpec(
    "order_line",
    "One row per line of an order.",
    (
        Column("order_id", "string", True),
        Column(
            "line_number",
            "int64",
            True,
            "1-based position of the line in its order.",
            check="positive",
            maximum=MAX_QUANTITY,
        ),
        Column("product_id", "string", True),
        Column(
            "quantity",
            "int64",
            True,
            "Units; negative only on refund and adjustment orders.",
            check="non_zero",
            maximum=MAX_QUANTITY,
        ),
        Column(
            "unit_price",
            "float64",
            True,
            "Price of one unit; never negative.",
            check="non_negative",
            maximum=MAX_PRICE,
        ),
    ),
    key=("order_id", "line_number"),
    references=(
        Reference("order_id", "order", "order_id", optional=False),
        Reference("product_id", "product", "product_id", optional=False),
    ),
)

EVENT = TableSpec(
    "event",
    "One row per behavioural event, after the Segment spec: track (e-commerce v2 names such as"
    " 'Product Viewed', 'Product Added', 'Cart Viewed', 'Checkout Started', 'Order Completed'),"
    " identify and page calls.",
    (
        Column("message_id", "string", True, "Segment messageId; the key, so replays are no-ops."),
        Column(
            "type",
            "string",
            True,
            allowed=("track", "identify", "page", "screen", "alias", "group"),
        ),
        Column("event", "string", False, "The track event's name; null for identify and page."),
        Column("customer_id", "string", False, "The resolved customer (see identity resolution)."),
        Column("user_id", "string", False, "Segment userId as sent."),
        Column("anonymous_id", "string", False, "Segment anonymousId as sent."),
        Column(
            "email",
            "string",
            False,
            "Lower-cased address, when the event carried one.",
            check="email",
        ),
        Column("occurred_at", "timestamp", True, "Segment timestamp (UTC)."),
        Column("session_id", "string", False, "Browsing session, when known."),
        Column("product_id", "string", False, "properties.product_id, lifted out for joins."),
        Column(
            "properties", "string", False, "The event's properties as a JSON object.", check="json"
        ),
        Column(
            "identity",
            "string",
            False,
            "How customer_id was found: id, email, anonymous_id, or unmatched.",
            allowed=("id", "email", "anonymous_id", "unmatched"),
        ),
    ),
    key=("message_id",),
    derived=("customer_id", "identity"),
)

EMAIL_EVENT = TableSpec(
    "email_event",
    "One row per email outcome: send, delivery, open, click, bounce, complaint, unsubscribe,"
    " and the sends that were skipped or failed, with their reason.",
    (
        Column("event_id", "string", True, "Unique id of this outcome (idempotency key)."),
        Column("customer_id", "string", False, "Resolved by id or by email."),
        Column("email", "string", False, check="email"),
        Column("message_id", "string", False, "The email message this outcome belongs to."),
        Column("campaign_id", "string", False),
        Column("variant", "string", False),
        Column("type", "string", True, allowed=EMAIL_EVENT_TYPES),
        Column("occurred_at", "timestamp", True, "(UTC)"),
        Column("url", "string", False, "The clicked link, for clicks."),
        Column("user_agent", "string", False),
        Column(
            "is_machine",
            "boolean",
            False,
            "A privacy-proxy open or a link-scanner click.",
            default="false",
        ),
        Column("reason", "string", False, "Why a send was skipped or failed, or the bounce text."),
    ),
    key=("event_id",),
    derived=("customer_id",),
)

CONSENT = TableSpec(
    "consent",
    "One row per consent change; the latest per (customer, channel, purpose) is in force.",
    (
        Column("customer_id", "string", True),
        Column("channel", "string", True, allowed=("email", "sms", "push"), default="'email'"),
        Column(
            "purpose",
            "string",
            True,
            allowed=("marketing", "transactional", "profiling"),
            default="'marketing'",
        ),
        Column("status", "string", True, allowed=("granted", "withdrawn")),
        Column("source", "string", False, "Where the consent was given or withdrawn."),
        Column("recorded_at", "timestamp", True, "(UTC)"),
    ),
    key=("customer_id", "channel", "purpose", "recorded_at"),
    references=(Reference("customer_id", "customer", "customer_id", optional=False),),
)

REJECT = TableSpec(
    "reject",
    "One row per input row that could not be loaded, with where it came from and why.",
    (
        Column("ingest_id", "string", True, "The load that read it (see ingest_log)."),
        Column("source", "string", True, "The file's path as given."),
        Column("target", "string", True, "The table (or preset) it was meant for."),
        Column(
            "line",
            "int64",
            True,
            "Line number in the file (the header is line 1); row number for Parquet.",
        ),
        Column("raw", "string", True, "The row as read, as JSON."),
        Column("reason", "string", True, "What is wrong, naming the column and value."),
        Column(
            "rule",
            "string",
            True,
            "The rule that fired: parse, required, type, email, range,"
            " duplicate_key, duplicate_line, reference, conflict, ...",
        ),
    ),
    key=("ingest_id", "target", "line", "rule"),
    loadable=False,
)

INGEST_LOG = TableSpec(
    "ingest_log",
    "One row per load: what was read and what became of it. loaded + rejected = read.",
    (
        Column("ingest_id", "string", True),
        Column("source", "string", True),
        Column("sha256", "string", True, "Content hash of the file."),
        Column("target", "string", True, "Table or preset name."),
        Column("read", "int64", True),
        Column("loaded", "int64", True, "Rows stored or already present unchanged."),
        Column("rejected", "int64", True),
        Column("inserted", "int64", True, "New rows, over all the tables written."),
        Column("updated", "int64", True),
        Column("started_at", "timestamp", True),
        Column("finished_at", "timestamp", True),
    ),
    key=("ingest_id",),
    loadable=False,
)

IDENTITY = TableSpec(
    "identity",
    "Links an anonymous id to the customer that a later identify call revealed.",
    (
        Column("anonymous_id", "string", True),
        Column("customer_id", "string", True),
        Column("linked_at", "timestamp", True, "When the identify call happened (UTC)."),
    ),
    key=("anonymous_id",),
    loadable=False,
)

PRODUCT_CATEGORY = TableSpec(
    "product_category",
    "Categories sendwise derived for products that have none (from their names and"
    " descriptions, see docs/models.md); the shop's own `product.category` always wins.",
    (
        Column("product_id", "string", True),
        Column("category", "string", True, "The derived category, named by its top terms."),
        Column(
            "source",
            "string",
            True,
            "How it was found: 'derived' (text clustering).",
            allowed=("derived",),
        ),
        Column("derived_at", "timestamp", True, "When it was derived (UTC)."),
    ),
    key=("product_id",),
    loadable=False,
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        CUSTOMER,
        PRODUCT,
        ORDER,
        ORDER_LINE,
        EVENT,
        EMAIL_EVENT,
        CONSENT,
        REJECT,
        INGEST_LOG,
        IDENTITY,
        PRODUCT_CATEGORY,
    )
}
LOADABLE = [name for name, t in TABLES.items() if t.loadable]
