"""Dynamic slots: which variant of each slot every customer gets, decided in the warehouse.

A slot's variants are tried in order and the first whose rule (the segments rule language, over
the profile's columns such as ``p_purchase`` or ``seg_inactive``) is true wins; the variant
without a rule catches everyone else and is required. A rule over a missing value is false (see
the rule language), so a customer without scores falls through to the default. The choice is a
``CASE`` expression evaluated for the whole audience in one query, never row by row in Python, so
every customer gets exactly one variant per slot.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from sendwise.content.errors import TemplateError
from sendwise.segments.errors import RuleError
from sendwise.segments.language import compile_rule

if TYPE_CHECKING:
    from sendwise.content.spec import Slot


def slot_column(name: str) -> str:
    return "_slot_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def with_variants(
    table: ir.Table, slots: dict[str, Slot], template: str = ""
) -> tuple[ir.Table, dict[str, str]]:
    """``table`` plus one column per slot holding the chosen variant's name; slot -> column."""
    columns: dict[str, ir.Value] = {}
    for slot in slots.values():
        default = slot.default
        if default is None:
            msg = f"slot {slot.name!r} has no default variant (one without a rule)"
            raise TemplateError(msg, file=template or None)
        cases = []
        for variant in slot.ruled:
            try:
                condition = compile_rule(table, str(variant.rule))
            except RuleError as exc:
                msg = f"slot {slot.name!r}, variant {variant.name!r}: {exc}"
                raise TemplateError(msg, file=template or None) from None
            cases.append((condition, variant.name))
        fallback = ibis.literal(default.name, type="string")
        chosen = ibis.cases(*cases, else_=fallback) if cases else fallback
        columns[slot_column(slot.name)] = chosen
    names = {slot.name: slot_column(slot.name) for slot in slots.values()}
    return (table.mutate(**columns) if columns else table), names


def variant_counts(table: ir.Table, slots: dict[str, Slot], template: str = "") -> dict:
    """slot -> variant -> customers (every variant listed, zeros included), in one query each."""
    assigned, names = with_variants(table, slots, template)
    out: dict[str, dict[str, int]] = {}
    for slot_name, column in names.items():
        counts = assigned.group_by(column).aggregate(n=assigned.count()).to_pyarrow().to_pylist()
        found = {r[column]: int(r["n"]) for r in counts}
        out[slot_name] = {v.name: found.get(v.name, 0) for v in slots[slot_name].variants}
    return out
