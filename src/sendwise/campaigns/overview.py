"""Looking at campaigns: what a send would do (preview) and what it did (status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from sendwise.campaigns.service import compute_plan, load_campaign
from sendwise.config import Settings
from sendwise.content.message import EmailRenderer, RenderedEmail
from sendwise.delivery.links import message_links
from sendwise.keys import signing_key
from sendwise.store.claims import utcnow
from sendwise.store.repositories import Repositories
from sendwise.warehouse.connection import Warehouse


def plan_frame(store: Repositories, campaign_id: str) -> pd.DataFrame:
    """Every message of the campaign as planned, with its status now."""
    return store.messages.plan_frame(campaign_id)


@dataclass
class Preview:
    campaign_id: str
    audience: int
    by_variant: dict[str, int]
    skipped: dict[str, int]
    due_by_hour: dict[str, int]
    samples: list[tuple[str, str, RenderedEmail]] = field(default_factory=list)
    """(variant, customer_id, rendered) for a few customers of each variant."""


def preview_campaign(
    store: Repositories,
    wh: Warehouse,
    settings: Settings,
    name: str,
    renderer: EmailRenderer,
    *,
    samples: int = 1,
    now: datetime | None = None,
) -> Preview:
    """What ``send`` would do, without recording or sending anything (the stored plan once
    the campaign is planned)."""
    cid, status, defn = load_campaign(store, name)
    now = now or utcnow()
    planned = (
        compute_plan(store, wh, settings, defn, now)
        if status == "created"
        else plan_frame(store, cid)
    )
    receiving = planned[~planned["status"].isin(["skipped", "holdout"])]
    key = signing_key(settings.delivery)  # ConfigError when missing, short or public
    shown = []
    ready = receiving[receiving["status"] != "waiting"]  # a later wave has no variant yet
    for variant, group in ready.groupby("variant", sort=True):
        for row in group.head(samples).itertuples():
            links = message_links(settings.delivery.base_url, key, row.message_key)
            email = renderer.render(row.template, row.customer_id, links=links)
            shown.append((str(variant), row.customer_id, email))
    hours = pd.to_datetime(receiving["scheduled_at"]).dt.strftime("%Y-%m-%d %H:00")
    by_variant = receiving["variant"].value_counts().sort_index().to_dict()
    by_variant["holdout"] = int((planned["status"] == "holdout").sum())
    return Preview(
        campaign_id=cid,
        audience=len(planned),
        by_variant=by_variant,
        skipped=planned["reason"].dropna().value_counts().to_dict(),
        due_by_hour=hours.value_counts().sort_index().head(24).to_dict(),
        samples=shown,
    )


@dataclass
class CampaignStatus:
    campaign_id: str
    name: str
    status: str
    counts: pd.DataFrame
    """variant x message status."""
    reasons: dict[str, int]
    pending_due_later: int


def campaign_status(store: Repositories, name: str, now: datetime | None = None) -> CampaignStatus:
    cid, status, defn = load_campaign(store, name)
    frame = plan_frame(store, cid)
    counts = (
        frame.groupby(["variant", "status"]).size().unstack(fill_value=0)
        if len(frame)
        else pd.DataFrame()
    )
    now = now or utcnow()
    later = int(
        (
            frame["status"].isin(["pending", "waiting"])
            & (pd.to_datetime(frame["scheduled_at"]) > now)
        ).sum()
    )
    reasons = frame["reason"].dropna().map(lambda r: str(r)[:80]).value_counts().to_dict()
    return CampaignStatus(cid, defn.name, status, counts, reasons, later)


def messages(store: Repositories, campaign_id: str) -> list[dict[str, Any]]:
    return list(store.messages.plan_frame(campaign_id).to_dict("records"))
