"""``docs/data-model.md``, written from the schema declaration so the two never disagree.

python -m sendwise.warehouse.docs > docs/data-model.md
"""

from __future__ import annotations

from sendwise.warehouse.schema import TABLES, TableSpec

INTRO = """\
# The canonical data model

Generated from `src/sendwise/warehouse/schema.py` by `python -m sendwise.warehouse.docs`;
a test fails when this file and the code disagree.

**The UTC rule.** Every timestamp is stored as a naive `timestamp` that means UTC. A value with
an offset (`2024-05-01T10:00:00+02:00`, `...Z`) is converted; a value without one is read in the
source's time zone (`ingest.timezone` in `sendwise.toml`, or the mapping's own `timezone`, UTC
by default; the `online-retail` preset reads Europe/London) and converted.

**Every row is accounted for.** A row of a loaded file is either stored or written to `reject`
with the file, the line, the raw row and a reason: for every file, loaded + rejected = read.

**Input bounds** (ADR 61). Numbers are finite and within their column's limit; timestamps lie
between `ingest.earliest_date` (1970-01-01 by default) and one day after the load; a date that
does not exist is a `type` reject naming it. A row outside the bounds is rejected and never
replaces a stored one.

**Keys and reloads.** Loading rows whose key is already stored changes nothing when the content
is the same. For `customer` and `product` (dimensions) a row with other content replaces the
stored one: the newest export wins. For the other tables (facts) such a row is rejected as a
`conflict`, naming the columns that differ: history is never rewritten by a reload.

**Events** follow the [Segment spec](https://segment.com/docs/connections/spec/): `track` calls
with the e-commerce v2 names (`Product Viewed`, `Product Added`, `Product Removed`,
`Cart Viewed`, `Checkout Started`, `Order Completed`, ...), `identify` and `page` calls.
"""

TYPES = {
    "string": "text",
    "int64": "integer",
    "float64": "double",
    "boolean": "boolean",
    "timestamp": "timestamp (UTC)",
    "date": "date",
}


def table_markdown(spec: TableSpec) -> str:
    lines = [f"## `{spec.name}`", "", spec.doc, ""]
    key = ", ".join(f"`{k}`" for k in spec.key)
    kind = "dimension (upsert)" if spec.upsert else "fact (insert only)"
    if not spec.loadable:
        kind = "written by sendwise"
    lines.append(f"Key: {key}. Kind: {kind}.")
    for ref in spec.references:
        null = " (may be null)" if ref.optional else ""
        lines.append(f"`{ref.column}` references `{ref.table}.{ref.target}`{null}.")
    lines += ["", "| column | type | required | checks | meaning |", "|---|---|---|---|---|"]
    for c in spec.columns:
        checks = []
        if c.check:
            checks.append(c.check.replace("_", " "))
        if c.allowed:
            checks.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
        if c.maximum is not None:
            checks.append(f"at most {c.maximum:,.0f} in absolute value")
        if c.type in ("timestamp", "date") and spec.loadable:
            checks.append("plausible (ingest.earliest_date .. a day after the load)")
        if c.default:
            checks.append(f"default {c.default}")
        required = "yes" if c.required else ""
        lines.append(
            f"| `{c.name}` | {TYPES[c.type]} | {required} | {'; '.join(checks)} | {c.doc} |"
        )
    return "\n".join(lines) + "\n"


def data_model_markdown() -> str:
    return INTRO + "\n" + "\n".join(table_markdown(t) for t in TABLES.values())


if __name__ == "__main__":
    print(data_model_markdown(), end="")
