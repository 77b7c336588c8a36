"""Identity resolution: which customer an event or an email event belongs to.

In order: the customer id the row carries (``customer_id`` or Segment's ``userId``) when it is a
known customer; else its normalised email when a customer has it; else its anonymous id when an
identify call linked that anonymous id to a customer (the first such call wins). A row that
matches nothing keeps every id it came with, gets ``identity = 'unmatched'`` and a null
customer_id, and is tried again after every later load, so an identify call that arrives later
still claims the anonymous browsing that came before it.

Plain SQL UPDATE ... FROM, which DuckDB and PostgreSQL both speak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

OPEN = "(e.identity IS NULL OR e.identity = 'unmatched')"


def resolve(wh: Warehouse) -> None:
    sql = wh.con.raw_sql
    # A customer id given by the source is kept as the raw user id before matching.
    sql(
        "UPDATE event SET user_id = customer_id"
        " WHERE identity IS NULL AND user_id IS NULL AND customer_id IS NOT NULL"
    )
    # New links from identify calls: anonymous id -> the user id of its first identify.
    sql(
        "INSERT INTO identity SELECT anonymous_id, arg_min(user_id, occurred_at), min(occurred_at)"
        " FROM event WHERE type = 'identify' AND anonymous_id IS NOT NULL AND user_id IS NOT NULL"
        " AND anonymous_id NOT IN (SELECT anonymous_id FROM identity) GROUP BY anonymous_id"
    )
    sql(
        "UPDATE event AS e SET customer_id = c.customer_id, identity = 'id' FROM customer c"
        f" WHERE {OPEN} AND c.customer_id = coalesce(e.customer_id, e.user_id)"
    )
    sql(
        "UPDATE event AS e SET customer_id = c.customer_id, identity = 'email' FROM customer c"
        f" WHERE {OPEN} AND e.email IS NOT NULL AND c.email = e.email"
    )
    sql(
        "UPDATE event AS e SET customer_id = i.customer_id, identity = 'anonymous_id'"
        f" FROM identity i JOIN customer c ON c.customer_id = i.customer_id"
        f" WHERE {OPEN} AND e.anonymous_id = i.anonymous_id"
    )
    sql("UPDATE event SET customer_id = NULL, identity = 'unmatched' WHERE identity IS NULL")
    # Email events carry no identity column: a null customer_id is what is left to resolve.
    sql(
        "UPDATE email_event AS e SET customer_id = c.customer_id FROM customer c"
        " WHERE e.customer_id IS NULL AND e.email IS NOT NULL AND c.email = e.email"
    )


def unmatched_counts(wh: Warehouse) -> dict[str, int]:
    """Rows no customer could be found for, per table."""
    ev = wh.table("event")
    em = wh.table("email_event")
    return {
        "event": int(ev.filter(ev.identity == "unmatched").count().execute()),
        "email_event": int(em.filter(em.customer_id.isnull()).count().execute()),
    }
