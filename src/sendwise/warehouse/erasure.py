"""One person's rows in the warehouse: found (export) or deleted (erasure), and the DuckDB file
rewritten so that no deleted byte stays in its free blocks.

A table is about people when it has a ``customer_id``, ``user_id`` or ``anonymous_id`` column
(anonymous ids are those the ``identity`` table links to the customers); ``reject`` keeps the
raw text of refused rows, searched word by word. Every table of the warehouse is looked at, so
a table a later step adds is covered when it names customers the usual way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.warehouse import spark
from sendwise.warehouse.connection import quote, sql_string

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

ID_COLUMNS = ("customer_id", "user_id")
WORDS = r"[\w.%+@-]+"
TEXT_TABLES = {"reject": "raw"}
"""Tables whose free text may name a person, and the column."""


def _tables(duck: Any) -> dict[str, set[str]]:
    rows = duck.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'main' AND table_catalog = current_database()"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(str(table), set()).add(str(column))
    return out


def resolve(wh: Warehouse, customer_ids: list[str], emails: list[str]) -> dict[str, list[str]]:
    """The customer ids, addresses and linked anonymous ids of the people named by any of
    ``customer_ids`` or ``emails`` (an address names every customer record that has it)."""
    if wh.is_spark:
        raise spark.refuse("finding a person's warehouse rows", "a DuckDB warehouse")
    duck = wh.engine
    tables = _tables(duck)
    ids, addresses = set(customer_ids), {e.strip().lower() for e in emails}
    names: set[str] = set()
    if "customer" in tables:
        duck.execute(
            "CREATE OR REPLACE TEMP TABLE _sw_q_ids AS SELECT unnest(?::VARCHAR[]) v", [sorted(ids)]
        )
        duck.execute(
            "CREATE OR REPLACE TEMP TABLE _sw_q_em AS SELECT unnest(?::VARCHAR[]) v",
            [sorted(addresses)],
        )
        name_cols = [c for c in ("first_name", "last_name") if c in tables["customer"]]
        select_names = ", ".join(name_cols) if name_cols else "NULL"
        for cid, email, *name in duck.execute(
            f"SELECT customer_id, lower(trim(email)), {select_names} FROM customer"
            " WHERE customer_id IN (SELECT v FROM _sw_q_ids)"
            " OR lower(trim(email)) IN (SELECT v FROM _sw_q_em)"
        ).fetchall():
            ids.add(str(cid))
            if email:
                addresses.add(str(email))
            full = " ".join(str(n) for n in name if n)
            if " " in full:
                names.add(full)
    anonymous: set[str] = set()
    if "identity" in tables and ids:
        duck.execute(
            "CREATE OR REPLACE TEMP TABLE _sw_q_ids AS SELECT unnest(?::VARCHAR[]) v", [sorted(ids)]
        )
        anonymous = {
            str(a)
            for (a,) in duck.execute(
                "SELECT DISTINCT anonymous_id FROM identity"
                " WHERE customer_id IN (SELECT v FROM _sw_q_ids)"
            ).fetchall()
            if a
        }
    return {
        "customer_ids": sorted(ids),
        "emails": sorted(addresses),
        "anonymous_ids": sorted(anonymous),
        "names": sorted(names),
    }


def _load_people(duck: Any, people: dict[str, list[str]]) -> None:
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE _sw_p_ids AS SELECT unnest(?::VARCHAR[]) v",
        [people["customer_ids"]],
    )
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE _sw_p_em AS SELECT unnest(?::VARCHAR[]) v", [people["emails"]]
    )
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE _sw_p_anon AS SELECT unnest(?::VARCHAR[]) v",
        [people["anonymous_ids"]],
    )
    words = sorted(
        {w.lower() for w in (*people["customer_ids"], *people["emails"], *people["anonymous_ids"])}
    )
    if "order" in _tables(duck):
        duck.execute(
            "CREATE OR REPLACE TEMP TABLE _sw_p_orders AS SELECT DISTINCT order_id AS v"
            ' FROM "order" WHERE customer_id IN (SELECT v FROM _sw_p_ids)'
        )
    else:
        duck.execute("CREATE OR REPLACE TEMP TABLE _sw_p_orders (v VARCHAR)")
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE _sw_p_words AS SELECT list(v) AS words"
        " FROM (SELECT unnest(?::VARCHAR[]) v)",
        [words],
    )


def _where(table: str, columns: set[str]) -> str | None:
    parts = [f"{quote(c)} IN (SELECT v FROM _sw_p_ids)" for c in ID_COLUMNS if c in columns]
    if "email" in columns:
        parts.append("lower(trim(email)) IN (SELECT v FROM _sw_p_em)")
    if "order_id" in columns and not parts:  # order lines: by the people's orders
        parts.append("order_id IN (SELECT v FROM _sw_p_orders)")
    if "anonymous_id" in columns:
        parts.append("anonymous_id IN (SELECT v FROM _sw_p_anon)")
    text = TEXT_TABLES.get(table)
    if text and text in columns:
        parts.append(
            f"list_has_any(regexp_extract_all(lower({quote(text)}), {sql_string(WORDS)}),"
            " (SELECT words FROM _sw_p_words))"
        )
    return " OR ".join(parts) or None


def rows_of(wh: Warehouse, people: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """Every warehouse row about the people, by table (JSON-ready values)."""
    if wh.is_spark:
        raise spark.refuse("the privacy export", "a DuckDB warehouse")
    duck = wh.engine
    _load_people(duck, people)
    out: dict[str, list[dict[str, Any]]] = {}
    for table, columns in sorted(_tables(duck).items()):
        where = _where(table, columns)
        if where is None:
            continue
        frame = duck.execute(f"SELECT * FROM {quote(table)} WHERE {where}").fetch_arrow_table()
        if frame.num_rows:
            out[table] = frame.to_pylist()
    return out


def erase_rows(wh: Warehouse, people: dict[str, list[str]]) -> dict[str, int]:
    """Delete every warehouse row about the people, in one transaction; rows by table."""
    if wh.is_spark:
        raise spark.refuse("erasure", "a DuckDB warehouse")
    duck = wh.engine
    _load_people(duck, people)
    counts: dict[str, int] = {}
    duck.execute("BEGIN TRANSACTION")
    try:
        for table, columns in sorted(_tables(duck).items()):
            where = _where(table, columns)
            if where is None:
                continue
            found = duck.execute(f"DELETE FROM {quote(table)} WHERE {where}").fetchone()
            n = found[0] if found else 0
            if n:
                counts[table] = int(n)
        duck.execute("COMMIT")
    except Exception:
        duck.execute("ROLLBACK")
        raise
    return counts


def rewrite_file(wh: Warehouse) -> bool:
    """Copy the DuckDB file into a fresh one and put it in place (DuckDB leaves the bytes of
    deleted rows in the free blocks of its file: only a new file holds none). False when the
    warehouse is not a DuckDB file (a server database reclaims space with its own VACUUM)."""
    if not wh.is_duckdb or not wh.shareable:
        return False
    import duckdb

    path = Path(wh.url.removeprefix("duckdb://"))
    fresh = path.with_name(path.name + ".rewrite")
    fresh.unlink(missing_ok=True)
    wh.engine.execute("CHECKPOINT")
    with wh.released():
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH {sql_string(str(path))} AS old_db (READ_ONLY)")
            con.execute(f"ATTACH {sql_string(str(fresh))} AS new_db")
            con.execute("COPY FROM DATABASE old_db TO new_db")
            con.execute("DETACH new_db")
            con.execute("DETACH old_db")
        finally:
            con.close()
        os.replace(fresh, path)
        Path(str(path) + ".wal").unlink(missing_ok=True)
    return True
