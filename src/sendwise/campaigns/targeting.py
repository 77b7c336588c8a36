"""Campaigns and uplift: a past campaign with a holdout as an uplift training set, an audience
narrowed to the top percent by predicted uplift, and the results of such a campaign (each
group's lift over its own holdout, and what targeting added: targeted minus random).

The features are the warehouse's point-in-time customer features (docs/features.md): as of the
campaign's first send for training (nothing the email caused leaks into them), as of planning
for targeting. Which group a planned customer is in needs no storage: the halves are a hash of
the campaign and the customer (:mod:`sendwise.uplift.targeting`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from sendwise.campaigns.definition import HOLDOUT, CampaignDefinition
from sendwise.campaigns.stats import two_proportions
from sendwise.config import Settings
from sendwise.errors import CampaignError
from sendwise.features.build import customer_features
from sendwise.predict.service import registry_of
from sendwise.store.repositories import Repositories
from sendwise.uplift.artifact import load_uplift
from sendwise.uplift.data import Experiment, experiment_from_units
from sendwise.uplift.targeting import RANDOM, TARGETED, in_targeted_half, uplift_groups
from sendwise.warehouse.connection import Warehouse

FEATURES_LAYOUT = "features"


def features_as_of(
    wh: Warehouse, as_of: datetime, columns: list[str] | None = None
) -> pd.DataFrame:
    """Numeric point-in-time features of every customer, indexed by customer_id."""
    frame = customer_features(wh, as_of).to_pandas().set_index("customer_id")
    frame.index = frame.index.astype(str)
    numeric = frame.select_dtypes(include=["number", "bool"]).astype(np.float64)
    if columns is None:
        return numeric
    missing = [c for c in columns if c not in numeric.columns]
    if missing:
        raise CampaignError(f"the uplift model needs features the warehouse lacks: {missing}")
    return numeric[columns]


def campaign_experiment(
    store: Repositories,
    wh: Warehouse,
    settings: Settings,
    name: str,
    *,
    arm: str,
    outcome: str = "conversion",
) -> Experiment:
    """A sent campaign's customers of ``arm`` and of its holdout, with their features as of
    the campaign's first send and their outcome within ``tracking.attribution_days``."""
    from sendwise.campaigns.attribution import campaign_units
    from sendwise.campaigns.service import load_campaign

    cid, _status, _defn = load_campaign(store, name)
    units = campaign_units(store, wh, cid, days=settings.tracking.attribution_days)
    first = pd.to_datetime(units["sent_at"]).min()
    if pd.isna(first):
        raise CampaignError(f"campaign {name!r} has sent nothing yet: no experiment to learn from")
    features = features_as_of(wh, first.to_pydatetime())
    return experiment_from_units(units, features, arm=arm, outcome=outcome)


def target_by_uplift(
    wh: Warehouse,
    settings: Settings,
    defn: CampaignDefinition,
    audience: pd.DataFrame,
    now: datetime,
) -> pd.DataFrame:
    """The audience rows of the targeted and the random group (``Audience.uplift``)."""
    target = defn.audience.uplift
    assert target is not None
    model, mv = load_uplift(registry_of(settings), target.model)
    if mv.metadata.get("layout") != FEATURES_LAYOUT:
        raise CampaignError(
            f"uplift model {target.model} was trained on a file "
            f"({mv.metadata.get('layout')} layout), not on customer features"
        )
    if audience.empty:
        return audience
    X = features_as_of(wh, now, list(mv.metadata["features"]))
    ids = audience["customer_id"].astype(str)
    known = ids.isin(X.index).to_numpy()
    score = np.zeros(len(ids))
    score[known] = model.predict(X.loc[ids[known]].to_numpy(np.float64))
    score[~known] = (score[known].min() if known.any() else 0.0) - 1.0  # too new: rank last
    groups = uplift_groups(ids.tolist(), score, target.top, defn.campaign_id)
    return audience[groups.notna().to_numpy()].reset_index(drop=True)


def group_of(campaign_id: str, customer_ids: pd.Series) -> pd.Series:
    """``targeted`` or ``random`` for each planned customer of an uplift-targeted campaign."""
    half = in_targeted_half(campaign_id, customer_ids.astype(str).tolist())
    return pd.Series(np.where(half, TARGETED, RANDOM), index=customer_ids.astype(str))


def targeting_results(
    units: pd.DataFrame, groups: pd.Series, outcome: str = "conversion"
) -> pd.DataFrame:
    """One row per group (targeted, random): customers sent and held out, their outcome rates,
    the lift with its 95% interval, and the incremental outcomes per 1,000 customers. ``units``:
    customer_id, arm, the outcome (``campaign_units``); ``groups``: group by customer id."""
    u = units.assign(group=units["customer_id"].astype(str).map(groups))
    rows = []
    for name in (TARGETED, RANDOM):
        g = u[u["group"] == name]
        sent, held = g[g["arm"] != HOLDOUT][outcome], g[g["arm"] == HOLDOUT][outcome]
        d = two_proportions(int(sent.sum()), len(sent), int(held.sum()), len(held))
        rows.append(
            {
                "group": name,
                "sent": len(sent),
                "held_out": len(held),
                "rate_sent": sent.mean() if len(sent) else float("nan"),
                "rate_held_out": held.mean() if len(held) else float("nan"),
                "lift": d.estimate,
                "low": d.low,
                "high": d.high,
                "p_value": d.p_value,
                "incremental_per_1000": 1000 * d.estimate,
            }
        )
    return pd.DataFrame(rows).set_index("group")


def campaign_targeting_results(
    store: Repositories, wh: Warehouse, settings: Settings, name: str, outcome: str = "conversion"
) -> pd.DataFrame:
    """:func:`targeting_results` of a stored campaign whose audience was targeted by uplift."""
    from sendwise.campaigns.attribution import campaign_units
    from sendwise.campaigns.service import load_campaign

    cid, _status, defn = load_campaign(store, name)
    if defn.audience.uplift is None:
        raise CampaignError(f"campaign {name!r} was not targeted by uplift")
    units = campaign_units(store, wh, cid, days=settings.tracking.attribution_days)
    return targeting_results(units, group_of(cid, units["customer_id"]), outcome)
