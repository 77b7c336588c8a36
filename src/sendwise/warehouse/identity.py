"""Identity resolution: which customer an event or an email event belongs to.

In order: the customer id the row carries (``customer_id`` or Segment's ``userId``) when it is a
known customer; else its normalised email when a customer has it; else its anonymous id when an
identify call linked that anonymous id to a customer, or an alias call linked it as its
``previousId`` (the first such call wins). A row that
matches nothing keeps every id it came with, gets ``identity = 'unmatched'`` and a null
customer_id, and is tried again after every later load, so an identify call that arrives later
still claims the anonymous browsing that came before it.

Plain SQL (window functions, UPDATE ... FROM) that DuckDB and PostgreSQL both speak; on Spark,
whose Parquet tables have no UPDATE, the same joins rewrite the two tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

OPEN = "(e.identity IS NULL OR e.identity = 'unmatched')"


RESOLVED = (
    "SELECT e.message_id,"
    " coalesce(e.user_id, e.customer_id) AS user_id,"
    " coalesce(byid.customer_id, bymail.customer_id, byanon.customer_id) AS customer_id,"
    " CASE WHEN byid.customer_id IS NOT NULL THEN 'id'"
    " WHEN bymail.customer_id IS NOT NULL THEN 'email'"
    " WHEN byanon.customer_id IS NOT NULL THEN 'anonymous_id' ELSE 'unmatched' END AS how"
    f" FROM event e"
    " LEFT JOIN customer byid ON byid.customer_id = coalesce(e.customer_id, e.user_id)"
    " LEFT JOIN (SELECT email, min(customer_id) AS customer_id FROM customer"
    "   WHERE email IS NOT NULL GROUP BY email) bymail ON bymail.email = e.email"
    " LEFT JOIN (SELECT i.anonymous_id, i.customer_id FROM identity i"
    "   JOIN customer c ON c.customer_id = i.customer_id) byanon"
    "   ON byanon.anonymous_id = e.anonymous_id"
    f" WHERE {OPEN}"
)
BY_EMAIL = (
    "SELECT email, min(customer_id) AS customer_id FROM customer"
    " WHERE email IS NOT NULL GROUP BY email"
)


def resolve(wh: Warehouse) -> None:
    sql = wh.con.raw_sql
    # New links from identify and alias calls: anonymous id (an alias's previousId) -> the
    # user id of its first such call.
    sql(
        "INSERT INTO identity SELECT anonymous_id, user_id, occurred_at FROM (SELECT anonymous_id,"
        " user_id, occurred_at, row_number() OVER (PARTITION BY anonymous_id"
        " ORDER BY occurred_at, user_id) AS n FROM event WHERE type IN ('identify', 'alias')"
        " AND anonymous_id IS NOT NULL AND user_id IS NOT NULL"
        " AND anonymous_id NOT IN (SELECT anonymous_id FROM identity)) AS first_call WHERE n = 1"
    )
    if wh.is_spark:  # Parquet tables have no UPDATE: the two tables are rewritten
        _resolve_by_rewrite(wh)
        return
    # Every open row's match in one pass of hash joins, then one UPDATE keyed on message_id:
    # several UPDATE ... FROM statements over the whole table were orders of magnitude slower.
    sql("DROP TABLE IF EXISTS _sw_resolved")
    sql("CREATE TEMP TABLE _sw_resolved AS " + RESOLVED)
    sql(
        "UPDATE event SET user_id = r.user_id, customer_id = r.customer_id, identity = r.how"
        " FROM _sw_resolved r WHERE event.message_id = r.message_id"
        " AND (event.identity IS NULL OR r.how <> 'unmatched')"
    )
    sql("DROP TABLE _sw_resolved")
    # Email events carry no identity column: a null customer_id is what is left to resolve.
    sql(
        f"UPDATE email_event SET customer_id = c.customer_id FROM ({BY_EMAIL}) c"
        " WHERE email_event.customer_id IS NULL AND email_event.email = c.email"
    )


def _resolve_by_rewrite(wh: Warehouse) -> None:
    """The same two updates as new tables: what the UPDATEs set, taken from a join."""
    import ibis

    from sendwise.warehouse import spark

    con = wh.con
    ev = con.table("event")
    r = con.sql(RESOLVED)
    r = r.select(_m=r.message_id, _u=r.user_id, _c=r.customer_id, _h=r.how)
    r = wh.scratch_table(spark.scratch_name("resolved"), r)
    try:
        j = ev.left_join(r, ev.message_id == r._m)
        take = j._h.notnull() & (j.identity.isnull() | (j._h != "unmatched"))
        changed = {"user_id": j._u, "customer_id": j._c, "identity": j._h}
        cols = [ibis.ifelse(take, changed[c], j[c]).name(c) if c in changed else j[c]
                for c in ev.columns]  # fmt: skip
        spark.replace(con, "event", j.select(*cols))
    finally:
        con.drop_table(r.get_name(), force=True)
    em = con.table("email_event")
    c = con.sql(BY_EMAIL)
    c = c.select(_e=c.email, _c=c.customer_id)
    j = em.left_join(c, em.email == c._e)
    cid = ibis.ifelse(j.customer_id.isnull(), j._c, j.customer_id).name("customer_id")
    spark.replace(
        con, "email_event", j.select(*[cid if n == "customer_id" else j[n] for n in em.columns])
    )


def unmatched_counts(wh: Warehouse) -> dict[str, int]:
    """Rows no customer could be found for, per table."""
    ev = wh.table("event")
    em = wh.table("email_event")
    return {
        "event": int(ev.filter(ev.identity == "unmatched").count().execute()),
        "email_event": int(em.filter(em.customer_id.isnull()).count().execute()),
    }
