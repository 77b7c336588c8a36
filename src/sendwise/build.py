"""``sendwise build``: the nightly job. Engagement synced from the store, features and
segments, training when due, scoring, recommendations, and profiles with the scores and top
products, as of one moment (the end of the data unless given)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sendwise.catalog.categories import derive_product_categories
from sendwise.predict.registry import Registry
from sendwise.predict.score import ScoreResult, score_customers
from sendwise.predict.service import MODELS, registry_of, train_models
from sendwise.predict.train import TrainResult
from sendwise.profiles.build import ProfileBuild, attach_predictions, build_profiles
from sendwise.recommend import build_recommendations, top_products

TOP_PRODUCTS = "profile_top_products"

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse


@dataclass
class BuildResult:
    profiles: ProfileBuild
    trained: list[TrainResult]
    scored: ScoreResult
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def due_models(
    registry: Registry, settings: Settings, horizon_days: int, as_of: datetime, retrain: bool
) -> list[str]:
    """Models without a promoted version, older than ``retrain_days``, trained for another
    horizon or for a later date than ``as_of`` (all of them with ``retrain``)."""
    if retrain:
        return list(MODELS)
    due = []
    for name in MODELS:
        version = registry.promoted(name)
        if version is None:
            due.append(name)
            continue
        meta = registry.get(name, version, verify=False).metadata
        created = datetime.fromisoformat(meta["created_at"])
        trained_as_of = datetime.fromisoformat(str(meta["plan"]["as_of"]))
        age = datetime.now(UTC) - created
        stale = age > timedelta(days=settings.models.retrain_days)
        wrong_horizon = name != "churn" and meta.get("horizon_days") != horizon_days
        if stale or wrong_horizon or trained_as_of > as_of:
            due.append(name)
    return due


def _sync(wh: Warehouse, settings: Settings, say: Callable[[str], None]) -> Any:
    """Bring the engagement the tracking service recorded into the warehouse first, so that
    features and models see it. Nothing to do for a project that has never sent."""
    from pathlib import Path

    from sendwise.intake.sync import sync_intake
    from sendwise.store import open_store
    from sendwise.tracking.sync import sync_events

    url = settings.store_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    say("syncing tracked engagement and intake events into the warehouse")
    with open_store(settings) as store:
        sync_intake(store, wh, settings)
        return sync_events(store, wh, settings)


def _publish(wh: Warehouse, settings: Settings, say: Callable[[str], None]) -> Any:
    """Publish the build to the serving plane (the store's snapshot tables)."""
    from sendwise.serving.publish import publish
    from sendwise.store import open_store

    say("publishing the snapshot to the store")
    with open_store(settings) as store:
        return publish(wh, store, settings, progress=say)


def run_build(
    wh: Warehouse,
    settings: Settings,
    *,
    as_of: datetime | date | str | None = None,
    horizon_days: int | None = None,
    retrain: bool = False,
    rules: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BuildResult:
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    horizon = horizon_days or settings.models.horizon_days
    synced = _sync(wh, settings, say)
    from sendwise.privacy.build_steps import apply_retention, leave_out, objectors_of

    retained = apply_retention(wh, settings, datetime.now(UTC).replace(tzinfo=None))
    objecting = objectors_of(settings)
    say("deriving product categories")
    categories = derive_product_categories(wh, settings.catalog)
    profiles = build_profiles(wh, settings, as_of, rules=rules, progress=say)
    registry = registry_of(settings)
    due = due_models(registry, settings, horizon, profiles.as_of, retrain)
    trained = (
        train_models(
            wh, settings, as_of=profiles.as_of, horizon_days=horizon, models=due, progress=say
        )
        if due
        else []
    )
    scored = score_customers(wh, settings, horizon_days=horizon, progress=say)
    leave_out(wh, objecting, ("prediction",))  # objection to profiling (docs/privacy.md)
    say("joining the scores to the profiles")
    attach_predictions(wh)
    # The recommenders are judged again whenever the models were (a full evaluation doubles
    # the cost of the step); otherwise they are only refitted.
    recs = build_recommendations(
        wh, settings, profiles.as_of, evaluate_first=bool(trained), progress=say
    )
    leave_out(wh, objecting, ("recommendation",))
    wh.write_table(TOP_PRODUCTS, top_products(wh))
    attach_predictions(wh, TOP_PRODUCTS)
    extra = {"recommendations": recs, "synced": synced, "categories": categories,
             "retention": retained, "objecting": len(objecting)}  # fmt: skip
    if settings.serving.publish_after_build:
        extra["published"] = _publish(wh, settings, say)
    return BuildResult(profiles, trained, scored, extra, seconds=time.perf_counter() - started)
