"""The plan of a campaign: who gets which variant, who is held out, who is skipped and why,
and when each message is due. Pure functions over DataFrames (vectorized, no row loops)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from sendwise.campaigns.definition import HOLDOUT, CampaignDefinition
from sendwise.campaigns.design import assign, message_keys
from sendwise.config import CampaignSettings

EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PLAN_COLUMNS = (
    "message_key",
    "customer_id",
    "email",
    "variant",
    "template",
    "status",
    "reason",
    "scheduled_at",
    "timezone",
)


@dataclass(frozen=True)
class Exclusions:
    """What the store knows at planning time that can exclude a customer. Planning excludes
    early (previews, counts); the send policy decides again when each message is claimed."""

    consent: pd.Series
    """Email-marketing consent in force by customer_id (granted / withdrawn), per address."""
    suppressed: pd.Series
    """Suppression reason by lower-cased email."""
    recent_sends: pd.Series
    """Marketing emails sent in the cap window, by customer_id."""


def _reasons(
    audience: pd.DataFrame, ex: Exclusions, settings: CampaignSettings, cap: int | None
) -> pd.Series:
    """The first reason each customer cannot be emailed, or null."""
    email = audience["email"].astype("string").str.strip()
    lower = email.str.lower()
    reason = pd.Series(pd.NA, index=audience.index, dtype="string")

    def first(mask: pd.Series, why: pd.Series | str) -> None:
        mask = mask.fillna(False).astype(bool) & reason.isna()
        reason[mask] = why[mask] if isinstance(why, pd.Series) else why

    first(email.isna() | ~email.str.match(EMAIL_SHAPE).fillna(False), "no valid email address")
    first(lower.duplicated(keep="first") & lower.notna(), "duplicate email address")
    supp = lower.map(ex.suppressed).astype("string")
    first(supp.notna(), "suppressed: " + supp.fillna(""))
    consent = audience["customer_id"].map(ex.consent).astype("string")
    first(consent == "withdrawn", "consent withdrawn")
    if settings.consent == "opt_in":
        first(consent.isna(), "no marketing consent")
    if cap is not None:
        sent = audience["customer_id"].map(ex.recent_sends).fillna(0)
        first(sent >= cap, f"frequency cap: {cap} emails in {settings.cap_days} days")
    return reason


def _zone(name: object) -> str:
    try:
        ZoneInfo(str(name))
        return str(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _next_local_hour(now: datetime, hours: pd.Series, zones: pd.Series) -> pd.Series:
    """For each row, the next time (>= now, naive UTC) that the local clock shows ``hours``:00."""
    out = pd.Series(pd.NaT, index=hours.index, dtype="datetime64[us]")
    base = pd.Timestamp(now, tz="UTC")
    for zone, idx in zones.groupby(zones).groups.items():
        local = base.tz_convert(zone)
        start = local.normalize() + pd.to_timedelta(hours[idx].astype("float64"), unit="h")
        start = start.where(start >= local, start + pd.Timedelta(days=1))
        out[idx] = start.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return out


def _out_of_quiet_hours(when: pd.Series, zones: pd.Series, start: int, end: int) -> pd.Series:
    """Times moved to the end of the quiet window when they fall inside it (local clocks)."""
    out = when.copy()
    for zone, idx in zones.groupby(zones).groups.items():
        local = when[idx].dt.tz_localize("UTC").dt.tz_convert(zone)
        hour = local.dt.hour
        quiet = (hour >= start) | (hour < end) if start > end else (hour >= start) & (hour < end)
        day = local.dt.normalize() + pd.Timedelta(hours=end)
        moved = day.where(day > local, day + pd.Timedelta(days=1))
        fixed = local.where(~quiet, moved)
        out[idx] = fixed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return out


def schedule(
    defn: CampaignDefinition, audience: pd.DataFrame, settings: CampaignSettings, now: datetime
) -> pd.Series:
    """When each customer's message is due (naive UTC)."""
    zones = (
        audience["timezone"].map(_zone)
        if "timezone" in audience
        else pd.Series("UTC", index=audience.index)
    )
    when = defn.send_time()
    at = pd.Series(pd.Timestamp(now), index=audience.index, dtype="datetime64[us]")
    if isinstance(when, datetime):
        at[:] = pd.Timestamp(when)
    elif when == "best_hour" and "best_send_hour" in audience:
        hours = pd.to_numeric(audience["best_send_hour"], errors="coerce")
        known = hours.notna() & hours.between(0, 23)
        at[known] = _next_local_hour(now, hours[known].astype(int), zones[known])
    if defn.quiet_hours and settings.quiet_start is not None:
        at = _out_of_quiet_hours(at, zones, settings.quiet_start, settings.quiet_end)
    return at


def plan(
    defn: CampaignDefinition,
    audience: pd.DataFrame,
    exclusions: Exclusions,
    settings: CampaignSettings,
    now: datetime,
) -> pd.DataFrame:
    """One row per audience customer: key, arm, status (pending / holdout / skipped), reason,
    due time. Everyone is assigned first, then excluded, so every arm (the holdout too) loses
    the same kinds of customers and the arms stay comparable."""
    ids = audience["customer_id"].astype(str).tolist()
    cap = defn.frequency_cap or settings.frequency_cap
    out = pd.DataFrame(
        {
            "message_key": message_keys(defn.campaign_id, ids),
            "customer_id": ids,
            "email": audience["email"].astype("string").str.strip().to_numpy(),
            "variant": assign(defn.campaign_id, ids, defn.arms()) if ids else [],
        }
    )
    out["template"] = out["variant"].map({v.name: v.template for v in defn.variants})
    reason = _reasons(audience, exclusions, settings, cap).to_numpy()
    out["reason"] = pd.Series(reason, dtype="string")
    holdout = out["variant"] == HOLDOUT
    out["status"] = np.where(
        out["reason"].notna(), "skipped", np.where(holdout, HOLDOUT, "pending")
    )
    due = schedule(defn, audience, settings, now).to_numpy()
    out["scheduled_at"] = pd.Series(due).where(out["status"] == "pending")
    zones = audience["timezone"].map(_zone) if "timezone" in audience else None
    out["timezone"] = None if zones is None else zones.to_numpy()
    if defn.adaptive:
        from sendwise.campaigns.waves import stage

        out = stage(defn, out)
    return out[list(PLAN_COLUMNS)]
