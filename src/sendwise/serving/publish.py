"""``sendwise publish``: the warehouse's profiles, scores, segments, reasons and
recommendations copied into the store as a new snapshot version, switched atomically.

Steps: read everything from the warehouse first (a failure there leaves the store untouched),
write the rows of a new version (invisible until the switch), switch, compare with the
previous version (segments entered and left, scores that crossed a threshold: the list
:class:`PublishResult.changes` that outgoing webhooks send), prune old versions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sendwise.errors import NotFoundError
from sendwise.serving import export
from sendwise.serving.console_digest import SnapshotDigest
from sendwise.serving.console_digest import prune as prune_console
from sendwise.serving.digest import data_digest
from sendwise.serving.hooks import enqueue, from_changes
from sendwise.serving.live_scores import scorer_meta
from sendwise.store.records import utcnow

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.store import Store
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
HINT = "build them first with `sendwise build`"


@dataclass
class PublishResult:
    version: int
    previous: int | None
    customers: int
    recommendations: int
    products: int
    neighbours: int
    pruned: list[int]
    changes: list[dict[str, Any]] = field(default_factory=list)
    webhooks: int = 0
    """Webhooks put in the outbox for the changes (0 without a subscription that wants them)."""
    seconds: float = 0.0


def _crossed(old: float | None, new: float | None, threshold: float) -> str | None:
    if old is None or new is None:
        return None
    if old < threshold <= new:
        return "up"
    if new < threshold <= old:
        return "down"
    return None


def changes_between(
    old: Iterable[dict[str, Any]],
    new: Iterable[dict[str, Any]],
    thresholds: dict[str, list[float]],
    *,
    version: int,
    at: datetime,
) -> list[dict[str, Any]]:
    """Per customer: ``segment.entered`` / ``segment.left`` for segments gained or lost, and
    ``score.crossed`` for a score that moved across one of its thresholds. A customer only in
    ``new`` enters their segments; one only in ``old`` is not reported (no longer profiled)."""
    before = {r["customer_id"]: r for r in old}
    out: list[dict[str, Any]] = []
    stamp = at.isoformat()
    for row in new:
        cid = row["customer_id"]
        prev = before.get(cid)
        had = set(prev["segments"]) if prev else set()
        has = set(row["segments"])
        base = {"customer_id": cid, "snapshot": version, "at": stamp}
        out.extend({"type": "segment.entered", **base, "segment": s} for s in sorted(has - had))
        out.extend({"type": "segment.left", **base, "segment": s} for s in sorted(had - has))
        if prev is None:
            continue
        for score, limits in thresholds.items():
            a, b = prev["scores"].get(score), row["scores"].get(score)
            for limit in limits:
                way = _crossed(a, b, limit)
                if way:
                    out.append(
                        {
                            "type": "score.crossed",
                            **base,
                            "score": score,
                            "threshold": limit,
                            "direction": way,
                            "old": a,
                            "new": b,
                        }
                    )
    return out


def publish(
    wh: Warehouse,
    store: Store,
    settings: Settings,
    *,
    at: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish the warehouse's current build as the store's new snapshot version."""
    from sendwise.predict.service import registry_of

    say = progress or (lambda _m: None)
    started = time.perf_counter()
    at = at or utcnow()
    if not wh.has_table("profile"):
        raise NotFoundError("profile table", "profile", HINT)
    say("reading the catalogue")
    products = export.product_rows(wh)
    as_of = _as_of(wh)
    end = export.data_end(wh)
    say("item-item neighbours")
    similar, popular = (
        export.neighbours(wh, settings, as_of) if as_of is not None and products else ([], [])
    )
    meta: dict[str, Any] = {"scorer": scorer_meta(registry_of(settings), settings)}
    meta["popular"] = popular
    meta["data"] = data_digest(wh)  # loads and rejects, for the console (serving/digest.py)
    snaps = store.snapshots
    version = snaps.begin(at=at, as_of=as_of, data_end=end, meta=meta)
    customers, recs = 0, 0
    sizes: dict[str, int] = {}
    digest = SnapshotDigest(
        export.profile_types(wh)
    )  # the console's figures and columns file (serving/console_digest.py)
    try:
        say(f"writing snapshot {version}")
        for profiles, members in export.profile_batches(wh):
            customers += snaps.write(version, "profile", profiles)
            digest.add(profiles)
            snaps.write(version, "segment_member", members)
            for m in members:
                sizes[m["segment"]] = sizes.get(m["segment"], 0) + 1
        for rows in export.recommendation_batches(wh):
            recs += snaps.write(version, "recommendation", rows)
        snaps.write(version, "product", products)
        snaps.write(version, "similar", similar)
        say("console figures")
        meta["console"] = digest.finish(settings, version)
    except BaseException:
        snaps.discard(version)
        raise
    meta["segments"] = dict(sorted(sizes.items()))
    previous = snaps.switch(version, customers=customers, at=at, meta=meta)
    say("comparing with the previous snapshot")
    changes = (
        changes_between(
            snaps.profiles(previous),
            snaps.profiles(version),
            settings.serving.thresholds,
            version=version,
            at=at,
        )
        if previous is not None
        else []
    )
    # the changes go to the webhook outbox: a subscriber hears of them even if this process
    # ends now (the dispatcher of `sendwise serve` or `sendwise webhooks deliver` sends them)
    webhooks = enqueue(store, from_changes(changes), at=at)
    pruned = snaps.prune(settings.serving.keep_snapshots)
    prune_console(settings, pruned)
    logger.info("published snapshot %s (%s customers)", version, customers)
    return PublishResult(
        version=version,
        previous=previous,
        customers=customers,
        recommendations=recs,
        products=len(products),
        neighbours=len(similar),
        pruned=pruned,
        changes=changes,
        webhooks=webhooks,
        seconds=time.perf_counter() - started,
    )


def _as_of(wh: Warehouse) -> datetime | None:
    t = wh.table("profile")
    if "as_of" not in t.columns:
        return None
    value = t.as_of.max().to_pyarrow().as_py()
    return value if isinstance(value, datetime) else None
