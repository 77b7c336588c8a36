"""Data quality checks that run on every build, with numbers in every message.

- ``orders_drop`` / ``events_drop``: the daily volume of the last 7 days before the build date
  fell below ``min_volume_ratio`` of the daily volume of the 28 days before them.
- ``stale_data``: the newest order is older than ``stale_days`` at the build date.
- ``missing_email``: more than ``max_missing_share`` of customers have no email.
- ``out_of_range``: features outside their possible range (negative counts, money or
  durations, rates above 1, hours outside 0..23).

A failed check warns; one listed in ``quality.hard`` stops the build (DataQualityError).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ibis.expr.types import Table

from sendwise.errors import DataQualityError
from sendwise.features.common import lit_ts

if TYPE_CHECKING:
    from sendwise.config import QualitySettings

logger = logging.getLogger(__name__)

NON_NEGATIVE = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "refund_value",
    "orders_30d",
    "product_views_30d",
    "email_sends",
    "days_since_last_activity",
)
RATES = ("open_rate", "click_rate", "favourite_category_share")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    message: str
    hard: bool = False


def _volume(t: Table, ts: str, as_of: datetime, ratio: float, name: str, what: str) -> CheckResult:
    col = t[ts]
    last7 = t.count(where=(col >= lit_ts(as_of - timedelta(days=7))) & (col < lit_ts(as_of)))
    before = t.count(
        where=(col >= lit_ts(as_of - timedelta(days=35)))
        & (col < lit_ts(as_of - timedelta(days=7)))
    )
    recent, prior = (int(v) for v in t.aggregate(a=last7, b=before).execute().iloc[0])
    if prior == 0:
        return CheckResult(name, True, f"no {what} in the 28 days before the last 7 to compare")
    recent_daily, prior_daily = recent / 7, prior / 28
    ok = recent_daily >= ratio * prior_daily
    return CheckResult(
        name,
        ok,
        f"{what} per day: {recent_daily:.1f} in the last 7 days vs {prior_daily:.1f} before"
        f" ({recent_daily / prior_daily:.0%}; threshold {ratio:.0%})",
    )


def run_checks(
    source, features: Table, as_of: datetime, settings: QualitySettings
) -> list[CheckResult]:
    from sendwise.features.build import table_reader

    table = table_reader(source)
    orders, events, customers = table("order"), table("event"), table("customer")
    results = [
        _volume(orders, "ordered_at", as_of, settings.min_volume_ratio, "orders_drop", "orders"),
        _volume(events, "occurred_at", as_of, settings.min_volume_ratio, "events_drop", "events"),
    ]
    # As Arrow: pandas turns the max of no rows into NaT/NaN, which is not None.
    newest = orders.filter(orders.ordered_at < lit_ts(as_of)).ordered_at.max().to_pyarrow().as_py()
    if newest is None:
        results.append(
            CheckResult("stale_data", False, "there are no orders before the build date")
        )
    else:
        age = (as_of - newest).total_seconds() / 86400
        results.append(
            CheckResult(
                "stale_data",
                age <= settings.stale_days,
                f"newest order is {age:.1f} days old (limit {settings.stale_days})",
            )
        )
    n, missing = (
        int(v)
        for v in customers.aggregate(
            n=customers.count(), m=customers.count(where=customers.email.isnull())
        )
        .execute()
        .iloc[0]
    )
    share = missing / n if n else 0.0
    results.append(
        CheckResult(
            "missing_email",
            share <= settings.max_missing_share,
            f"{missing:,} of {n:,} customers ({share:.0%}) have no email"
            f" (limit {settings.max_missing_share:.0%})",
        )
    )
    cols = set(features.columns)
    bad = {}
    for c in NON_NEGATIVE:
        if c in cols:
            bad[c] = features.count(where=features[c] < 0)
    for c in RATES:
        if c in cols:
            bad[c] = features.count(where=(features[c] < 0) | (features[c] > 1))
    if "preferred_hour" in cols:
        h = features.preferred_hour
        bad["preferred_hour"] = features.count(where=(h < 0) | (h > 23))
    counts = features.aggregate(**bad).execute().iloc[0].to_dict() if bad else {}
    wrong = {k: int(v) for k, v in counts.items() if v}
    results.append(
        CheckResult(
            "out_of_range",
            not wrong,
            "all features within range"
            if not wrong
            else "out of range: " + ", ".join(f"{k} ({v:,} customers)" for k, v in wrong.items()),
        )
    )
    hard = set(settings.hard)
    return [CheckResult(r.name, r.ok, r.message, r.name in hard) for r in results]


def enforce(results: list[CheckResult]) -> None:
    """Log failed checks; raise when a hard one failed."""
    for r in results:
        if not r.ok:
            logger.warning("data quality: %s: %s", r.name, r.message)
    failed = [f"{r.name}: {r.message}" for r in results if not r.ok and r.hard]
    if failed:
        raise DataQualityError(failed)
