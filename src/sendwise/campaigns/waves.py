"""Adaptive allocation: a campaign's variants sent in waves, Thompson sampling between them.

Under ``[allocation] method = "thompson"`` (docs/adr/0135-adaptive-waves-in-the-message-rows.md):

* **Planning** (:func:`stage`, called by :func:`sendwise.campaigns.planning.plan`) assigns every
  audience customer once: the holdout exactly as a fixed campaign draws it (fixed for the whole
  test), then a wave, by a hash of (campaign, customer) (stable: the wave of any message can be
  recomputed at any time). Wave 1 is split equally between the variants and is ``pending`` like
  any campaign; each later wave's rows are stored ``waiting``, with the placeholder variant
  ``"(wave k)"`` and their time moved ``(k - 1) * every`` later.
* **When a wave is due** (:func:`plan_due_waves`, from ``campaign send``), its shares are
  Thompson sampling's (:class:`sendwise.uplift.bandit.ThompsonAllocator`, with the floor) from the
  outcomes of the earlier waves counted as campaign results count them (clicks per delivered
  message, conversions per assigned customer, :mod:`.attribution`); its rows get their variants
  and become ``pending`` in one transaction that only moves rows still holding the placeholder,
  so a wave is planned once, whatever runs concurrently or again.
* **Afterwards** the allocation over time is read back from the message rows
  (:func:`allocation_over_time`) and the always-valid intervals come from bandit.py
  (:func:`sequences`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from sendwise.campaigns.definition import HOLDOUT, CampaignDefinition
from sendwise.campaigns.design import unit_hash
from sendwise.errors import CampaignError
from sendwise.uplift.bandit import ThompsonAllocator, WaveLog, split

WAITING = "waiting"
"""The status of a later wave's message until its wave is planned."""


def placeholder(wave: int) -> str:
    """The variant a later wave's rows hold until the wave is planned."""
    return f"(wave {wave})"


def wave_of(campaign_id: str, customer_ids, waves: int) -> np.ndarray:
    """The wave (1..waves) of each customer: a stable hash, independent of the holdout's."""
    u = unit_hash(f"{campaign_id}/waves", [str(c) for c in customer_ids])
    return np.minimum((u * waves).astype(np.int64), waves - 1) + 1


def allot(campaign_id: str, wave: int, customer_ids, shares: Mapping[str, float]) -> np.ndarray:
    """Exact counts by ``shares`` (largest remainders), given out in a hashed order."""
    ids = [str(c) for c in customer_ids]
    total = sum(shares.values())
    counts = split(len(ids), {a: s / total for a, s in shares.items()})
    names = np.repeat(np.asarray(list(counts), dtype=object), list(counts.values()))
    out = np.empty(len(ids), dtype=object)
    out[np.argsort(unit_hash(f"{campaign_id}/wave{wave}", ids), kind="stable")] = names
    return out


def stage(defn: CampaignDefinition, out: pd.DataFrame) -> pd.DataFrame:
    """A fixed plan (holdout drawn, exclusions and times set) turned into waves (see module)."""
    a = defn.allocation
    cid = defn.campaign_id
    out = out.copy()
    wave = wave_of(cid, out["customer_id"], a.waves)
    treated = (out["variant"] != HOLDOUT).to_numpy()
    first = treated & (wave == 1)
    equal = {v.name: 1.0 for v in defn.variants}
    variant = out["variant"].to_numpy(dtype=object).copy()
    variant[first] = allot(cid, 1, out.loc[first, "customer_id"], equal)
    later = treated & (wave > 1)
    variant[later] = [placeholder(int(w)) for w in wave[later]]
    out["variant"] = variant
    out["template"] = out["variant"].map({v.name: v.template for v in defn.variants})
    waiting = later & (out["status"] == "pending").to_numpy()
    out.loc[waiting, "status"] = WAITING
    shift = pd.to_timedelta((wave[waiting] - 1) * a.interval.total_seconds(), unit="s")
    out.loc[waiting, "scheduled_at"] = out.loc[waiting, "scheduled_at"] + shift.to_numpy()
    return out


def _seed(campaign_id: str, wave: int) -> int:
    digest = hashlib.blake2b(f"{campaign_id}/thompson/{wave}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def outcomes(units: pd.DataFrame, metric: str) -> tuple[dict[str, int], dict[str, int]]:
    """(successes, trials) per arm: clicks per delivered message, conversions per assigned
    eligible customer, as campaign results count them."""
    base = units[units["delivered"] == 1] if metric == "click" else units
    g = base.groupby("arm")[metric]
    return (
        {str(k): int(v) for k, v in g.sum().items()},
        {str(k): int(v) for k, v in g.size().items()},
    )


def due_waves(frame: pd.DataFrame, now: datetime) -> list[int]:
    """The waves still unplanned whose first message is due (in order)."""
    marked = frame[frame["variant"].astype(str).str.match(r"^\(wave \d+\)$")]
    if marked.empty:
        return []
    wave = marked["variant"].str.extract(r"(\d+)")[0].astype(int)
    start = pd.to_datetime(marked["scheduled_at"]).groupby(wave).min()
    return sorted(int(w) for w, t in start.items() if pd.isna(t) or t <= pd.Timestamp(now))


def plan_due_waves(store, wh, settings, campaign_id: str, defn: CampaignDefinition,
                   now: datetime) -> list[int]:  # fmt: skip
    """Plan every wave now due, in order, each from the outcomes recorded so far; the waves
    this run planned (none when another run planned them first)."""
    if not defn.adaptive:
        return []
    from sendwise.campaigns.attribution import campaign_units

    frame = store.messages.plan_frame(campaign_id)
    metric = defn.allocation.metric
    if wh is None and metric == "conversion":
        raise CampaignError(f"campaign {defn.name!r}: a wave on conversions needs the warehouse")
    done = []
    templates = {v.name: v.template for v in defn.variants}
    for wave in due_waves(frame, now):
        units = campaign_units(store, wh, campaign_id, days=settings.tracking.attribution_days)
        successes, trials = outcomes(units, metric)
        alloc = ThompsonAllocator(
            [v.name for v in defn.variants], holdout=0.0, floor=defn.allocation.floor,
            seed=_seed(campaign_id, wave),
        )  # fmt: skip
        shares = alloc.shares(successes, trials)
        shares.pop(HOLDOUT)
        rows = frame[frame["variant"] == placeholder(wave)]
        chosen = allot(campaign_id, wave, rows["customer_id"], shares)
        assigned = dict(zip(rows["message_key"], chosen, strict=True))
        if store.messages.assign_wave(campaign_id, placeholder(wave), assigned, templates, now):
            done.append(wave)
    return done


def allocation_over_time(plan: pd.DataFrame, defn: CampaignDefinition) -> pd.DataFrame:
    """Per wave: customers per arm (skipped ones too: they were assigned before exclusion)
    and each arm's share of the wave; unplanned waves are left out."""
    wave = wave_of(defn.campaign_id, plan["customer_id"], defn.allocation.waves)
    frame = pd.DataFrame({"wave": wave, "arm": plan["variant"].astype(str).to_numpy()})
    unplanned = set(frame.loc[frame["arm"].str.startswith("("), "wave"])
    frame = frame[~frame["wave"].isin(unplanned)]
    arms = [v.name for v in defn.variants] + ([HOLDOUT] if defn.holdout else [])
    counts = pd.crosstab(frame["wave"], frame["arm"]).reindex(columns=arms, fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0).add_suffix("_share")
    return pd.concat([counts, shares], axis=1).rename_axis(None, axis=1)


def sequences(units: pd.DataFrame, defn: CampaignDefinition) -> pd.DataFrame:
    """Per arm: the metric's rate with its always-valid 95% interval, and for each variant its
    lift over the holdout (bandit.py: valid at every wave and under adaptive allocation)."""
    successes, trials = outcomes(units, defn.allocation.metric)
    log = WaveLog()
    log.record({}, trials, successes)
    table = pd.DataFrame(log.intervals()).T
    return table.reindex([a for a in (*(v.name for v in defn.variants), HOLDOUT)
                          if a in table.index])  # fmt: skip
