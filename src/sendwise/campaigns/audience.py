"""The audience of a campaign: the profiles a segment name or a rule selects."""

from __future__ import annotations

import ibis.expr.types as ir
import pandas as pd

from sendwise.campaigns.definition import Audience
from sendwise.config import Settings
from sendwise.errors import NotFoundError
from sendwise.segments.language import compile_rule
from sendwise.segments.rules import BUILTIN_SEGMENTS, RuleSegment
from sendwise.warehouse import campaigns as reads
from sendwise.warehouse.connection import Warehouse

PROFILE = reads.PROFILE
COLUMNS = ("customer_id", "email", "first_name", "timezone", "best_send_hour")
"""Profile columns a plan uses (those present); best_send_hour comes with the predictions."""


def profiles(wh: Warehouse) -> ir.Table:
    return reads.profiles(wh)


def _known_segments(t: ir.Table, settings: Settings) -> list[str]:
    names = [s.name for s in BUILTIN_SEGMENTS] + list(settings.segments.rules)
    return sorted(set(names + reads.segment_names(t)))


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
    return reads.audience_rows(wh, lambda t: condition(t, settings, audience), COLUMNS)


def any_customer(wh: Warehouse) -> str | None:
    """One customer id from the profiles, to try templates on (None when there is none)."""
    return reads.any_customer(wh)
