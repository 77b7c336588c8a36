"""``build_profiles``: features -> quality checks -> RFM -> rule segments -> clusters -> profile.

Everything but the clustering runs in the warehouse: the features are materialised once as
``customer_features`` and the profile as ``profile`` (both replaced by each build). The k-means
fit pulls only the clustering columns into memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import ibis
from ibis.expr.types import Table

from sendwise.features import customer_features
from sendwise.features.common import as_timestamp, left_join_all
from sendwise.features.quality import CheckResult, enforce, run_checks
from sendwise.segments import (
    BUILTIN_SEGMENTS,
    RuleSegment,
    apply_segments,
    cluster_customers,
    rfm_scores,
    validate_rule,
)
from sendwise.segments.errors import SegmentError
from sendwise.warehouse.profile_columns import IDENTITY as PROFILE_IDENTITY

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.interface import WarehouseAPI as Warehouse

logger = logging.getLogger(__name__)
IDENTITY = PROFILE_IDENTITY[1:]  # all but customer_id
FEATURES_TABLE, PROFILE_TABLE = "customer_features", "profile"


@dataclass
class ProfileBuild:
    as_of: datetime
    customers: int
    checks: list[CheckResult]
    rfm_sizes: dict[str, int]
    segment_sizes: dict[str, int]
    clusters: list[tuple[int, str, int]] = field(default_factory=list)
    """(cluster, description, customers)"""
    seconds: float = 0.0


def end_of_data(wh: Warehouse) -> datetime:
    """Midnight after the last day with an order or an event: 'as of now' for this data."""
    # Read as Arrow: pandas makes an empty table's max NaT, a float-like that is not None.
    row = wh.query("last_activity").to_pylist()[0]
    last = [t for t in (row["last_order"], row["last_event"]) if t is not None]
    if not last:  # customers but no activity yet: as of today (UTC)
        now = datetime.now(UTC).replace(tzinfo=None)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = max(last).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day)


def build_profiles(
    wh: Warehouse,
    settings: Settings,
    as_of: datetime | date | str | None = None,
    *,
    rules: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProfileBuild:
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    as_of = as_timestamp(as_of) if as_of is not None else end_of_data(wh)
    segments = _segments(settings, rules)
    say("computing features")
    wh.write_table(FEATURES_TABLE, customer_features(wh, as_of))
    feats = wh.table(FEATURES_TABLE)
    say("checking data quality")
    checks = run_checks(wh, feats, as_of, settings.quality)
    enforce(checks)
    say("scoring RFM")
    customers = wh.table("customer").select("customer_id", *IDENTITY)
    # Tied buyers take the lowest score they span: one-time buyers are F = 1, as the RFM
    # segment names (New, Promising) assume.
    rfm = rfm_scores(feats, ties="bottom")
    base = feats.join(customers, "customer_id").join(rfm, "customer_id")
    for seg in segments:  # refuse a bad rule before the heavy work
        validate_rule(base.schema(), seg.rule)
    say("applying segments")
    profile = base.join(apply_segments(base, segments), "customer_id")
    clusters: list[tuple[int, str, int]] = []
    if settings.segments.clusters:
        say("clustering")
        profile, clusters = _with_clusters(profile, feats, settings)
    say("writing profiles")
    wh.write_table(PROFILE_TABLE, profile)
    stored = wh.table(PROFILE_TABLE)
    return ProfileBuild(
        as_of=as_of,
        customers=wh.count(PROFILE_TABLE),
        checks=checks,
        rfm_sizes=_sizes(stored, "rfm_segment"),
        segment_sizes=_rule_sizes(stored, segments),
        clusters=clusters,
        seconds=time.perf_counter() - started,
    )


def _segments(settings: Settings, extra: dict[str, str] | None) -> list[RuleSegment]:
    chosen = list(BUILTIN_SEGMENTS) if settings.segments.builtin else []
    for name, rule in {**settings.segments.rules, **(extra or {})}.items():
        chosen = [s for s in chosen if s.name != name] + [RuleSegment(name, rule)]
    return chosen


def _with_clusters(profile: Table, feats: Table, settings: Settings):
    # OpenMP threads cost more than they save on small shops (20x slower on 1,000 rows here).
    threads = 1 if feats.count().execute() < 200_000 else None
    try:
        assigned = cluster_customers(feats, k=settings.segments.k, n_threads=threads)
    except SegmentError as exc:
        if settings.segments.k is not None:  # a k the user asked for is theirs to fix
            raise
        # A new shop (customers, no orders yet) has too few distinct customers to choose k:
        # the profiles are built without clusters, as for a shop with no customers.
        logger.warning("profiles built without clusters: %s", exc)
        return profile, []
    if assigned.num_rows == 0:
        return profile, []
    joined = left_join_all(profile, [ibis.memtable(assigned)])
    counts = assigned.group_by(["cluster", "cluster_description"]).aggregate(
        [("customer_id", "count")]
    )
    rows = sorted(
        (int(r["cluster"]), r["cluster_description"], int(r["customer_id_count"]))
        for r in counts.to_pylist()
    )
    return joined, rows


def _sizes(t: Table, column: str) -> dict[str, int]:
    df = t.group_by(column).aggregate(n=t.count()).order_by(ibis.desc("n")).execute()
    return {str(k): int(v) for k, v in zip(df[column], df["n"], strict=True)}


def _rule_sizes(t: Table, segments: list[RuleSegment]) -> dict[str, int]:
    if not segments:
        return {}
    counts = t.aggregate(**{f"_{i}": t[s.column].sum() for i, s in enumerate(segments)})
    row = counts.execute().iloc[0]
    return {s.name: int(row[f"_{i}"] or 0) for i, s in enumerate(segments)}


def attach_predictions(wh: Warehouse, table: str = "prediction") -> int:
    """Rebuild ``profile`` with the columns of ``table`` (one row per customer) joined on.

    Columns the profile already has under the same names (from an earlier build) are replaced.
    Returns the number of profiles.
    """
    if not wh.has_table(table):
        return wh.count(PROFILE_TABLE)
    extra = wh.table(table)
    extra = extra.drop("as_of") if "as_of" in extra.columns else extra
    added = [c for c in extra.columns if c != "customer_id"]
    profile = wh.table(PROFILE_TABLE)
    profile = profile.drop(*[c for c in added if c in profile.columns])
    joined = left_join_all(profile, [extra]).to_pyarrow()
    wh.write_table(PROFILE_TABLE, joined)
    return wh.count(PROFILE_TABLE)
