"""Use cases behind ``sendwise train``: every model on one snapshot cache.

Models: ``propensity`` and ``churn`` (classifiers), ``btyd`` (BG/NBD + Gamma-Gamma), ``spend``
(revenue over the horizon) and ``next_category``. Each becomes a new version in the registry;
the quality gate decides whether it is promoted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from sendwise.errors import InputError
from sendwise.features.common import as_timestamp
from sendwise.predict import report
from sendwise.predict.category import CategoryModel, bought_in_window, histograms, hit_rate
from sendwise.predict.dataset import SnapshotCache, first_order_at, make_plan
from sendwise.predict.lifetime import train_btyd, train_spend
from sendwise.predict.registry import Registry
from sendwise.predict.train import TrainResult, library_versions, train_classifier
from sendwise.warehouse.predict_tables import materialised_at

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
MODELS = ("btyd", "propensity", "churn", "spend", "next_category")


def registry_of(settings: Settings) -> Registry:
    return Registry(settings.path("models"))


def train_models(
    wh: Warehouse,
    settings: Settings,
    *,
    as_of: datetime | date | str | None = None,
    horizon_days: int | None = None,
    models: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TrainResult]:
    """Train the chosen models (all by default) as of ``as_of`` (default: end of the data)."""
    from sendwise.profiles.build import end_of_data

    chosen = list(models or MODELS)
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        raise InputError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    ms = settings.models
    h = horizon_days or ms.horizon_days
    if h < 1:
        raise InputError(f"the horizon must be at least one day, not {h}")
    end = end_of_data(wh)
    at = as_timestamp(as_of) if as_of is not None else end
    if at > end:
        raise InputError(
            f"as of {at:%Y-%m-%d} is after the end of the data ({end:%Y-%m-%d}): the judged"
            " window would have no labels. Leave --as-of out to train as of the end of the data."
        )
    first = first_order_at(wh)
    cache = SnapshotCache(
        wh, max_customers=ms.snapshot_customers, seed=ms.seed, known=materialised_at(wh, at)
    )
    registry = registry_of(settings)
    plan = make_plan(at, h, ms, first)
    results = []
    for name in chosen:
        if name in ("spend", "next_category") and not plan.train_at:
            # These are still judged as they ship: they need a whole out-of-time window.
            say = progress or (lambda _m: None)
            say(f"{name}: skipped, the history is too short for an out-of-time window")
            logger.warning("%s: skipped, no out-of-time window as of %s", name, at)
            continue
        if name == "btyd":
            results.append(train_btyd(cache, plan, ms, registry, progress))
        elif name == "propensity":
            results.append(train_classifier(name, cache, plan, ms, registry, progress=progress))
        elif name == "churn":
            churn_plan = make_plan(at, ms.churn_days, ms, first)
            results.append(
                train_classifier(name, cache, churn_plan, ms, registry, progress=progress)
            )
        elif name == "spend":
            results.append(train_spend(cache, plan, ms, registry, progress))
        elif name == "next_category":
            result = train_category(wh, plan, registry, progress)
            if result is not None:
                results.append(result)
    return results


def train_category(
    wh: Warehouse, plan, registry: Registry, progress: Callable[[str], None] | None = None
) -> TrainResult | None:
    say = progress or (lambda _m: None)
    plan.require_training()
    h = plan.horizon_days
    fit_at = plan.train_at[0]
    say("next_category: category histograms")
    hist_fit = histograms(wh, fit_at)
    if not hist_fit.categories:
        say("next_category: the catalogue has no categories; skipped")
        return None
    model = CategoryModel().fit(hist_fit, bought_in_window(wh, fit_at, h))
    hist_test = histograms(wh, plan.evaluate_at, model.categories_)
    truth = bought_in_window(wh, plan.evaluate_at, h)
    predicted = model.predict(hist_test)
    fav = pd.DataFrame(
        {
            "customer_id": hist_test.customers,
            "next_category": [model.categories_[i] for i in hist_test.bought.argmax(axis=1)],
        }
    )
    fav = fav[hist_test.bought.sum(axis=1) > 0]
    top_cat, _ = model.prior_choice()
    popular = pd.DataFrame({"customer_id": truth.index, "next_category": top_cat})
    with_history = truth.index.intersection(fav["customer_id"])
    metrics = {
        "hit_rate": hit_rate(
            predicted, truth.loc[truth.index.intersection(predicted["customer_id"])]
        ),
        "hit_rate_with_history": hit_rate(predicted, truth.loc[with_history]),
        "buyers_judged": len(truth.index.intersection(predicted["customer_id"])),
    }
    baselines = {
        "favourite category": {"hit_rate_with_history": hit_rate(fav, truth.loc[with_history])},
        "most bought category": {"hit_rate": hit_rate(popular, truth)},
    }
    version, folder = registry.new_folder("next_category")
    (folder / "model.json").write_text(report.dumps(model.to_dict()))
    meta: dict[str, Any] = {
        "name": "next_category",
        "version": version,
        "kind": "category",
        "horizon_days": h,
        "meaning": "the category a customer most likely buys next, if they buy",
        "created_at": datetime.now(UTC).isoformat(),
        "learner": "smoothed histogram",
        "params": {"view_weight": model.view_weight, "prior_weight": model.prior_weight},
        "features": [],
        "feature_types": {},
        "plan": {"as_of": plan.as_of, "evaluate_at": plan.evaluate_at, "train_at": [fit_at]},
        "metrics": metrics,
        "baselines": baselines,
        "gate": {"passed": True, "reasons": []},
        "library_versions": library_versions(),
    }
    popular_hit = baselines["most bought category"]["hit_rate"]
    beats = (
        metrics["hit_rate_with_history"] >= baselines["favourite category"]["hit_rate_with_history"]
    )
    (folder / "report.md").write_text(
        f"# next_category {version}: evaluation\n\nWeights chosen on {fit_at:%Y-%m-%d}:"
        f" view weight {model.view_weight}, prior weight {model.prior_weight}. Judged on the"
        f" customers who bought in the {h} days after {plan.evaluate_at:%Y-%m-%d}:"
        f" the predicted category is among those they bought for"
        f" {metrics['hit_rate']:.1%} of {metrics['buyers_judged']:,} buyers"
        f" ({metrics['hit_rate_with_history']:.1%} of those with history, against"
        f" {baselines['favourite category']['hit_rate_with_history']:.1%} for their favourite"
        f" category; the most bought category alone: {popular_hit:.1%})."
        + ("" if beats else " The model does **not** beat the favourite category.")
        + "\n"
    )
    registry.seal(folder, meta)
    registry.promote("next_category", version)
    return TrainResult(
        "next_category",
        version,
        True,
        [],
        metrics,
        baselines,
        "smoothed histogram",
        len(hist_fit.customers),
        plan,
    )
