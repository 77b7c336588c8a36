"""Scoring every customer with the promoted models into the ``prediction`` table.

Reads the features the profile build materialised (``customer_features``), so scores and
profiles describe the same moment. A model that is not promoted leaves its columns null and is
named in the result; a model whose features do not match is refused (ModelError).
Churn risk: the churn model for active customers; 1.0 for customers whose last order is older
than the active window (they already stopped); null for customers who never ordered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sendwise.errors import NotFoundError
from sendwise.features.history import HISTORY_FEATURES, history_features
from sendwise.predict.anchor import anchor_shift, anchor_target, seasonal_target, shifted
from sendwise.predict.backtest import seasonal
from sendwise.predict.baselines import Btyd
from sendwise.predict.category import CategoryModel, histograms
from sendwise.predict.classifier import Calibrator
from sendwise.predict.dataset import add_history, feature_types
from sendwise.predict.drift import drift_table, psi
from sendwise.predict.explain import reason_lists
from sendwise.predict.learners import as_matrix, load_learner
from sendwise.predict.registry import ModelVersion, Registry, check_features
from sendwise.predict.send_hour import best_send_hours
from sendwise.warehouse.predict_tables import (
    customer_segments,
    scoring_features,
    write_predictions,
)
from sendwise.warehouse.profile_columns import PREDICTIONS

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
SCORED = ("propensity", "churn", "btyd", "spend", "next_category")
COLUMNS = tuple(PREDICTIONS)


@dataclass
class ScoreResult:
    customers: int
    as_of: Any
    versions: dict[str, str]
    missing: list[str]
    drifted: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def _classifier(mv: ModelVersion) -> tuple[Any, Calibrator]:
    learner = load_learner(mv.folder)
    cal = Calibrator.from_dict(json.loads((mv.folder / "calibrator.json").read_text()))
    return learner, cal


def _promoted(registry: Registry, name: str) -> ModelVersion | None:
    try:
        return registry.get(name)
    except NotFoundError:
        return None


def score_customers(
    wh: Warehouse,
    settings: Settings,
    *,
    horizon_days: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score every customer of ``customer_features``; ``horizon_days`` (default: the
    propensity model's, else the settings') sets the window of expected orders and spend."""
    from sendwise.predict.service import registry_of

    say = progress or (lambda _m: None)
    started = time.perf_counter()
    say("reading features")
    feats = scoring_features(wh)
    as_of = pd.Timestamp(feats["as_of"].max()).to_pydatetime() if len(feats) else None
    registry, ms = registry_of(settings), settings.models
    promoted = {name: _promoted(registry, name) for name in SCORED}
    # Each classifier reads the window features of its own horizon (propensity's 30 days and
    # churn's 90 may differ); one frame per window length, made once.
    frames: dict[int | None, pd.DataFrame] = {None: feats}

    def frame_of(mv: ModelVersion) -> pd.DataFrame:
        window = _history_window(mv)
        if window is None or as_of is None:
            return feats
        if window not in frames:
            say(f"window features ({window} days)")
            frames[window] = add_history(feats, history_features(wh, as_of, window).to_pandas())
        return frames[window]

    out = pd.DataFrame({"customer_id": feats["customer_id"], "as_of": feats["as_of"]})
    for col in COLUMNS:
        if col != "top_reasons":
            out[col] = np.nan
    # The reasons stay an Arrow list column (flat phrases and offsets), empty until explained.
    reasons = pa.ListArray.from_arrays(
        pa.array(np.zeros(len(out) + 1, dtype=np.int32)), pa.array([], pa.string())
    )
    versions, missing, drifted = {}, [], {}

    # Each promoted version is read (and its files' hashes checked) once (above).
    for name in ("propensity", "churn", "spend"):  # refuse before any work is done
        version = promoted[name]
        if version is not None:
            frame = frame_of(version)
            names = [c for c in frame.columns if c not in ("customer_id", "as_of")]
            check_features(version, feature_types(frame, names))
    btyd_mv = promoted["btyd"]
    btyd = Btyd.from_dict(btyd_mv.metadata["params"]) if btyd_mv else None
    recency = feats["recency_days"].astype("float64").to_numpy(na_value=np.nan)
    lapsed = recency > ms.active_days
    seasons: dict[int, float | None] = {}
    for name in ("propensity", "churn"):
        mv = promoted[name]
        if mv is None:
            missing.append(name)
            continue
        say(f"scoring {name} ({mv.version})")
        learner, cal = _classifier(mv)
        features = mv.metadata["features"]
        own = frame_of(mv)
        X = as_matrix(own, features)
        p = cal(learner.decision(X))
        # Churn was trained on active customers only: anchor and compare like with like.
        rows = np.ones(len(p), bool) if name == "propensity" else ~np.isnan(recency) & ~lapsed
        drifted[name] = _drift(registry, mv, own[rows], p[rows], ms.drift_threshold)
        if mv.metadata.get("anchored") and btyd is not None:
            days = int(mv.metadata["horizon_days"])
            target = anchor_target(name, btyd, feats, days)
            if as_of is not None:
                if days not in seasons:
                    seasons[days] = seasonal(wh, as_of, days, ms)
                target = seasonal_target(target, name, seasons[days])
            target[~rows] = np.nan
            p = shifted(p, anchor_shift(p, target))
        if name == "propensity":
            out["p_purchase"] = p
            if ms.explain_scores:
                say("explaining the scores")
                contributions = _contributions(learner, X, ms)
                flat, offsets = reason_lists(contributions, own, features, values=X)
                reasons = pa.ListArray.from_arrays(
                    pa.array(offsets.astype(np.int32)), pa.array(flat, type=pa.string())
                )
        else:
            out["churn_risk"] = np.where(np.isnan(recency), np.nan, np.where(lapsed, 1.0, p))
        versions[name] = mv.version

    mv = btyd_mv
    if mv is None or btyd is None:
        missing.append("btyd")
    else:
        say(f"scoring btyd ({mv.version})")
        trained_for = promoted["propensity"]
        trained_h = int(trained_for.metadata["horizon_days"]) if trained_for else None
        horizon = horizon_days or trained_h or ms.horizon_days
        values = btyd.predict(feats, horizon, ms.discount_rate)
        for col in ("expected_orders", "p_alive", "clv_12m"):
            out[col] = values[col].to_numpy()
        out["predicted_spend"] = values["btyd_spend"].to_numpy()
        versions["btyd"] = mv.version

    mv = promoted["spend"]
    if mv is None:
        if btyd is None:  # otherwise BG/NBD x Gamma-Gamma gave predicted_spend above
            missing.append("spend")
    else:
        say(f"scoring spend ({mv.version})")
        learner = load_learner(mv.folder)
        out["predicted_spend"] = np.exp(
            learner.decision(as_matrix(frame_of(mv), mv.metadata["features"]))
        )
        versions["spend"] = mv.version

    mv = promoted["next_category"]
    if mv is None:
        missing.append("next_category")
    elif as_of is not None:
        say(f"scoring next_category ({mv.version})")
        model = CategoryModel.from_dict(json.loads((mv.folder / "model.json").read_text()))
        pred = model.predict(histograms(wh, as_of, model.categories_)).set_index("customer_id")
        top, share = model.prior_choice()
        idx = out["customer_id"]
        out["next_category"] = pred["next_category"].reindex(idx).fillna(top).to_numpy()
        out["p_next_category"] = pred["p_next_category"].reindex(idx).fillna(share).to_numpy()
        versions["next_category"] = mv.version

    if as_of is not None:
        say("best send hours")
        segments = customer_segments(wh)
        hours = best_send_hours(
            wh,
            as_of,
            min_events=ms.send_hour_min_events,
            segments=segments,
            default_timezone=settings.ingest.timezone,
        )
        # One lookup of the ids for both columns (each reindex by string ids cost seconds).
        at = pd.Index(hours["customer_id"]).get_indexer(out["customer_id"])
        # One slot past the end answers the ids without an hour (get_indexer's -1).
        hour = np.append(hours["best_send_hour"].to_numpy(np.float64, na_value=np.nan), np.nan)
        source = np.append(hours["send_hour_source"].to_numpy(object), [None])
        out["best_send_hour"] = hour[at]
        out["send_hour_source"] = source[at]

    out["best_send_hour"] = out["best_send_hour"].astype("Int64")
    out["next_category"] = out["next_category"].astype("string")
    say("writing predictions")
    table = pa.Table.from_pandas(out, preserve_index=False).append_column("top_reasons", reasons)
    write_predictions(wh, table)
    return ScoreResult(len(out), as_of, versions, missing, drifted, time.perf_counter() - started)


def _contributions(learner: Any, X: np.ndarray, ms: Any) -> np.ndarray:
    if learner.name == "lightgbm" and len(X) > ms.shap_rows:
        return learner.contributions(X, method="path")
    return learner.contributions(X)


def _history_window(mv: ModelVersion) -> int | None:
    """The window of the history features a classifier uses (its horizon), None without them."""
    if set(mv.metadata["features"]) & set(HISTORY_FEATURES):
        return int(mv.metadata["horizon_days"])
    return None


def _drift(
    registry: Registry, mv: ModelVersion, feats: pd.DataFrame, score: np.ndarray, threshold: float
) -> list[str]:
    refs = dict(mv.metadata.get("drift_reference", {}))
    score_ref = refs.pop("__score__", None)
    table = drift_table(refs, feats, threshold=threshold)
    rows = table.to_dict(orient="records")
    if score_ref is not None:
        value = psi(score_ref, score)
        rows.insert(0, {"feature": "score", "psi": value, "flagged": value > threshold})
    registry.write_extra(mv, "drift.json", {"threshold": threshold, "features": rows})
    return [r["feature"] for r in rows if r["flagged"]]
