"""Bulk validation of staged rows, inside the engine: one SQL pass per table, no Python loop.

A :class:`TablePlan` says how a canonical table is filled from a staged file: a SQL query that
yields columns named after the canonical ones (as text or already typed) plus ``_k``. Validation
turns it into typed rows, and sends every row that breaks a rule to the rejects with the rule's
name and a reason that names the column and the value. The rules: required columns present,
values of the right type, value checks (email, URL, range, time zone, JSON, allowed values),
a plan's own checks, and unique keys within the file (the first row of a key wins).

Input bounds (docs/adr/0061): every number is finite and within its column's ``maximum``; every
timestamp lies between ``ingest.earliest_date`` (1970-01-01 by default) and one day after the
load; a date that does not exist (2011-02-30) is a type reject naming the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from sendwise.warehouse.connection import quote, sql_string
from sendwise.warehouse.schema import Column, TableSpec

if TYPE_CHECKING:
    import duckdb

EMAIL_RE = (
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
    r"\.[a-z]{2,}$"
)
URL_RE = r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$"
INT_RE = r"^[+-]?[0-9]+(\.0*)?$"
# check name -> (rule, condition that is true for a bad value {v}, message after "column: ")
CHECKS = {
    "email": (
        "email",
        "NOT regexp_full_match({v}, " + sql_string(EMAIL_RE) + ")",
        "{} is not a valid email address",
    ),
    "url": (
        "url",
        "NOT regexp_full_match({v}, '" + URL_RE + "')",
        "{} is not an absolute http(s) URL",
    ),
    "non_negative": ("range", "{v} < 0", "{} is negative"),
    "positive": ("range", "{v} <= 0", "{} must be positive"),
    "non_zero": ("range", "{v} = 0", "must not be 0"),
    # SQL's AND does not short-circuit: a CAST to JSON beside json_valid() still runs on text
    # that is not JSON and fails the whole load. CASE evaluates its branch only where it holds.
    "json": (
        "json",
        "NOT coalesce(CASE WHEN json_valid({v}) THEN json_type({v}) = 'OBJECT' END, false)",
        "{} is not a JSON object",
    ),
    "currency": (
        "currency",
        "NOT regexp_full_match({v}, '[A-Z]{3}')",
        "{} is not an ISO 4217 currency code",
    ),
    "timezone": (
        "timezone",
        "{v} NOT IN (SELECT name FROM pg_timezone_names())",
        "{} is not an IANA time zone",
    ),
}
SQL_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


@dataclass(frozen=True)
class Check:
    """A plan's own row rule: rows where ``bad`` (SQL over the typed columns) is true are
    rejected with ``message`` (a SQL string expression)."""

    rule: str
    bad: str
    message: str


@dataclass
class TablePlan:
    spec: TableSpec
    select: str
    """SQL over staged data yielding canonical-named columns, ``_k`` and helper ``_x`` columns."""
    checks: list[Check] = field(default_factory=list)
    timezone: str = "UTC"
    timestamp_format: str | None = None
    primary: bool = False
    """Rows of this table stand one-to-one for the file's rows (they decide read/loaded)."""
    patch: bool = False
    """A stored row is updated only in the columns this file gives a value for: an identify
    call without an email must not erase the email a customer has."""
    only_new: bool = False
    """Add rows whose key is not stored yet and keep stored ones as they are: for rows a file
    only hints at (a product seen in an event), which must not overwrite the catalogue."""


def _value(col: str) -> str:
    """The source value as short text, for messages."""
    return f"left(CAST(s.{quote(col)} AS VARCHAR), 80)"


def _typed(col: Column, src_type: str, plan: TablePlan) -> str:
    s = f"s.{quote(col.name)}"
    txt = f"nullif(trim(CAST({s} AS VARCHAR)), '')"
    text_src = src_type.upper() in ("VARCHAR", "JSON", "NULL", '"NULL"')
    if col.type == "string":
        if col.check == "email" or col.allowed:
            return f"lower({txt})"
        if col.check == "currency":
            return f"upper({txt})"
        return txt
    if col.type == "int64":
        if not text_src:  # a float source must hold a whole number: 1.5 is refused, not rounded
            return (
                f"CASE WHEN TRY_CAST({s} AS DOUBLE) = floor(TRY_CAST({s} AS DOUBLE))"
                f" THEN TRY_CAST({s} AS BIGINT) END"
            )
        return f"CASE WHEN regexp_full_match({txt}, '{INT_RE}') THEN TRY_CAST({txt} AS BIGINT) END"
    if col.type == "float64":
        v = f"TRY_CAST({txt if text_src else s} AS DOUBLE)"
        return f"CASE WHEN isfinite({v}) THEN {v} END"
    if col.type == "boolean":
        if not text_src:
            return f"TRY_CAST({s} AS BOOLEAN)"
        return (
            f"CASE WHEN lower({txt}) IN ('true','t','1','yes','y') THEN true"
            f" WHEN lower({txt}) IN ('false','f','0','no','n') THEN false END"
        )
    if col.type in ("timestamp", "date"):
        return _timestamp(s, txt, src_type, plan)
    raise ValueError(f"no SQL typing for {col.type}")


def _timestamp(s: str, txt: str, src_type: str, plan: TablePlan) -> str:
    """UTC naive timestamps: offsets are honoured, naive values are read in the plan's zone."""
    st = src_type.upper()
    if "WITH TIME ZONE" in st or st == "TIMESTAMPTZ":
        return f"timezone('UTC', {s})"
    if st.startswith("TIMESTAMP") or st == "DATE":
        naive = f"CAST({s} AS TIMESTAMP)"
    else:
        if plan.timestamp_format:
            naive = f"try_strptime({txt}, {sql_string(plan.timestamp_format)})"
        else:
            naive = f"TRY_CAST({txt} AS TIMESTAMP)"
        has_offset = f"regexp_matches({txt}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$')"
        aware = f"timezone('UTC', TRY_CAST({txt} AS TIMESTAMPTZ))"
        naive = f"CASE WHEN {has_offset} THEN {aware} ELSE {_to_utc(naive, plan.timezone)} END"
        return naive
    return _to_utc(naive, plan.timezone)


def _to_utc(naive: str, zone: str) -> str:
    if zone.upper() == "UTC":
        return naive
    return f"timezone('UTC', timezone({sql_string(zone)}, {naive}))"


EARLIEST = datetime(1970, 1, 1)
"""The default earliest plausible timestamp (``ingest.earliest_date``)."""


def sql_timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"


def plausible_time(expr: str, now: datetime, earliest: datetime = EARLIEST) -> str:
    """SQL that is true when the timestamp ``expr`` lies in the plausible range (see module)."""
    return (
        f"({expr} >= {sql_timestamp(earliest)} AND {expr} <= {sql_timestamp(now)} + INTERVAL 1 DAY)"
    )


def _checks(
    col: Column, now: datetime, earliest: datetime = EARLIEST
) -> list[tuple[str, str, str]]:
    """(rule, bad condition, message) for one column, over its typed value ``t.col``."""
    name = col.name
    v = f"t.{quote(name)}"
    shown = f"left(CAST({v} AS VARCHAR), 80)"
    out: list[tuple[str, str, str]] = []
    if col.maximum is not None:
        top = f"{col.maximum:,.0f}"
        out.append(
            (
                "range",
                f"abs({v}) > {col.maximum!r}",
                f"format('{name}: {{}} is beyond {top}', {shown})",
            )
        )
    if col.type in ("timestamp", "date"):
        first = earliest.strftime("%Y-%m-%d")
        out.append(
            (
                "range",
                f"{v} < {sql_timestamp(earliest)}",
                f"format('{name}: {{}} is before {first}, not a plausible date', {shown})",
            )
        )
        out.append(
            (
                "range",
                f"{v} > {sql_timestamp(now)} + INTERVAL 1 DAY",
                f"format('{name}: {{}} is in the future', {shown})",
            )
        )
    if col.allowed:
        allowed = ", ".join(sql_string(a) for a in col.allowed)
        out.append(
            (
                "allowed",
                f"{v} NOT IN ({allowed})",
                f"format('{name}: {{}} is not one of {', '.join(col.allowed)}', {shown})",
            )
        )
    if col.check:
        rule, cond, message = CHECKS[col.check]
        cond = cond.replace("{v}", v)  # regexes hold braces: no format()
        out.append((rule, cond, f"format('{name}: {message}', {shown})"))
    # A missing value is the business of the required rule, never of a value check.
    return [(rule, f"{v} IS NOT NULL AND ({cond})", msg) for rule, cond, msg in out]


def validate(
    engine: duckdb.DuckDBPyConnection,
    plan: TablePlan,
    *,
    ok: str,
    rejects: str,
    now: datetime,
    line_of: Callable[[str], str],
    earliest: datetime = EARLIEST,
) -> None:
    """Type and check ``plan``'s rows: good rows go to engine table ``ok`` (canonical columns
    and ``_k``), bad ones are appended to ``rejects`` (_k, target, rule, reason)."""
    spec = plan.spec
    src_types = {r[0]: r[1] for r in engine.execute(f"DESCRIBE ({plan.select})").fetchall()}
    helpers = [c for c in src_types if c.startswith("_") and c != "_k"]
    typed_cols, problems = [], []
    for col in spec.columns:
        if col.name in src_types:
            typed = _typed(col, src_types[col.name], plan)
            given = f"nullif(trim(CAST(s.{quote(col.name)} AS VARCHAR)), '') IS NOT NULL"
            what = "date/time" if col.type in ("timestamp", "date") else col.type
            problems.append(
                (
                    "type",
                    f"({given}) AND {typed} IS NULL",
                    f"format('{col.name}: {{}} is not a valid {what}', {_value(col.name)})",
                )
            )
            if col.required:
                problems.append(
                    ("required", f"NOT ({given})", f"'{col.name} is required but empty'")
                )
        else:
            typed = f"CAST({col.default or 'NULL'} AS {SQL_TYPES[col.type]})"
            if col.required and col.default is None:
                problems.append(("required", "true", f"'{col.name} is required but missing'"))
        typed_cols.append(f"{typed} AS {quote(col.name)}")
    first = ", ".join(typed_cols + ["s._k"] + [f"s.{quote(h)}" for h in helpers])
    # Value checks and plan checks see typed values (t.*), so they run on a second layer.
    late = [p for col in spec.columns for p in _checks(col, now, earliest)]
    late += [(c.rule, c.bad, c.message) for c in plan.checks]
    early_reason = _reasons("s", problems)
    late_reason = _reasons("t", late)
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE {ok}_all AS SELECT t.*,"
        f" coalesce(t._early, {late_reason}) AS _why FROM ("
        f" SELECT {first}, {early_reason} AS _early FROM ({plan.select}) s) t"
    )
    _dedupe(engine, spec, f"{ok}_all", line_of)
    cols = ", ".join(quote(c) for c in spec.column_names)
    engine.execute(
        f"INSERT INTO {rejects} SELECT _k, {sql_string(spec.name)}, _why.rule, _why.reason"
        f" FROM {ok}_all WHERE _why IS NOT NULL"
    )
    # A view, not a copy: the merge reads the valid rows once.
    engine.execute(
        f"CREATE OR REPLACE TEMP VIEW {ok} AS SELECT {cols}, _k FROM {ok}_all WHERE _why IS NULL"
    )


def named_values(engine: duckdb.DuckDBPyConnection, ok: str, column: str) -> pa.Table:
    """The distinct non-null values of ``column`` over every row of the plan validated as
    ``ok``, good or bad (before :func:`drop`)."""
    return engine.execute(
        f"SELECT DISTINCT {quote(column)} FROM {ok}_all WHERE {quote(column)} IS NOT NULL"
    ).to_arrow_table()


def drop(engine: duckdb.DuckDBPyConnection, ok: str) -> None:
    """Drop what :func:`validate` made for ``ok``."""
    engine.execute(f"DROP VIEW IF EXISTS {ok}")
    engine.execute(f"DROP TABLE IF EXISTS {ok}_all")


def _reasons(alias: str, problems: list[tuple[str, str, str]]) -> str:
    """A struct (rule, reason) naming the first rule broken and every broken rule, or NULL."""
    if not problems:
        return "CAST(NULL AS STRUCT(rule VARCHAR, reason VARCHAR))"
    bad = [f"coalesce({cond}, false)" for _, cond, _ in problems]
    rule = (
        "CASE "
        + " ".join(f"WHEN {b} THEN '{r}'" for b, (r, _, _) in zip(bad, problems, strict=True))
        + " END"
    )
    reason = (
        "concat_ws('; ', "
        + ", ".join(
            f"CASE WHEN {b} THEN {m} END" for b, (_, _, m) in zip(bad, problems, strict=True)
        )
        + ")"
    )
    return f"CASE WHEN {' OR '.join(bad)} THEN {{'rule': {rule}, 'reason': {reason}}} END"


def _dedupe(
    engine: duckdb.DuckDBPyConnection, spec: TableSpec, table: str, line_of: Callable[[str], str]
) -> None:
    """Within the file, the first row of each key wins; later rows are rejected, naming it."""
    key = ", ".join(quote(k) for k in spec.key)
    shown = " || ', ' || ".join(
        f"'{k}=' || coalesce(CAST({quote(k)} AS VARCHAR), 'NULL')" for k in spec.key
    )
    # Most files have no duplicate keys: a hash aggregate says so without sorting the file.
    dupes = engine.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE _why IS NULL GROUP BY {key}"
        " HAVING count(*) > 1)"
    ).fetchone()[0]  # type: ignore[index]
    if not dupes:
        return
    others = [c for c in spec.column_names if c not in spec.key]
    same = (
        " AND ".join(
            f"{quote(c)} IS NOT DISTINCT FROM first_value({quote(c)}) OVER w" for c in others
        )
        or "true"
    )
    engine.execute(
        f"UPDATE {table} AS x SET _why = {{'rule': 'duplicate_key', 'reason': d.reason"
        f" || ', first seen on line ' || {line_of('d.first_k')}}} FROM ("
        f" SELECT _k, CASE WHEN {same} THEN 'repeats the row with ' ELSE 'duplicate key ' END"
        f" || {shown} AS reason, first_value(_k) OVER w AS first_k, row_number() OVER w AS n"
        f" FROM {table} WHERE _why IS NULL WINDOW w AS (PARTITION BY {key} ORDER BY _k)"
        ") d WHERE x._k = d._k AND d.n > 1"
    )
