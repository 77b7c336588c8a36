"""The audience of a campaign: the profiles a segment name or a rule selects."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from sendwise.campaigns.definition import Audience
from sendwise.config import Settings
from sendwise.errors import NotFoundError
from sendwise.segments.language import compile_rule
from sendwise.segments.rules import BUILTIN_SEGMENTS, RuleSegment
from sendwise.warehouse.connection import Warehouse

PROFILE = "profile"
COLUMNS = ("customer_id", "email", "first_name", "timezone", "best_send_hour")
"""Profile columns a plan uses (those present); best_send_hour comes with the predictions."""


def profiles(wh: Warehouse) -> ir.Table:
    if PROFILE not in wh.con.list_tables():
        raise NotFoundError("table", PROFILE, "build the profiles first with `sendwise segment`")
    return wh.table(PROFILE)


def _known_segments(t: ir.Table, settings: Settings) -> list[str]:
    names = [s.name for s in BUILTIN_SEGMENTS] + list(settings.segments.rules)
    if "rfm_segment" in t.columns:
        names += [n for n in t.rfm_segment.to_pyarrow().unique().to_pylist() if n]
    return sorted(set(names))


def condition(t: ir.Table, settings: Settings, audience: Audience) -> ir.BooleanValue:
    """The audience as a boolean over the profile table; RuleError / NotFoundError when the
    rule names an unknown field or the segment does not exist."""
    if audience.rule is not None:
        return compile_rule(t, audience.rule)
    name = audience.segment or ""
    column = RuleSegment(name, "").column
    if column in t.columns:
        return t[column].fill_null(False)
    if name in settings.segments.rules:
        return compile_rule(t, settings.segments.rules[name])
    known = _known_segments(t, settings)
    if "rfm_segment" in t.columns and name in known:
        return (t.rfm_segment == name).fill_null(False)
    raise NotFoundError("segment", name, f"known segments: {', '.join(known)}")


def audience_frame(wh: Warehouse, settings: Settings, audience: Audience) -> pd.DataFrame:
    """customer_id, email, first_name, timezone, best_send_hour (those the profile has) of
    every customer in the audience, sorted by customer_id."""
    t = profiles(wh)
    cond = condition(t, settings, audience)
    cols = [c for c in COLUMNS if c in t.columns]
    frame = t.filter(cond).select(*cols).order_by(ibis.asc("customer_id")).to_pandas()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.reset_index(drop=True)


def any_customer(wh: Warehouse) -> str | None:
    """One customer id from the profiles, to try templates on (None when there is none)."""
    t = profiles(wh)
    rows = t.select("customer_id").order_by("customer_id").limit(1).to_pyarrow().to_pylist()
    return str(rows[0]["customer_id"]) if rows else None
