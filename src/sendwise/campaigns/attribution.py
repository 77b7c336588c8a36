"""Per-customer outcomes of a campaign: engagement from the store, orders from the warehouse.

One row per eligible assigned customer (every message that was not skipped, holdout included):
``arm``, ``delivered``, human ``open`` / ``click`` (machine opens and bot clicks excluded),
``unsubscribe``, ``conversion`` and ``revenue`` (orders within ``days`` after the customer's
delivery, view-through; for the holdout and undelivered customers after the campaign's first
send, so that the arms are compared over the same window), and ``click_conversion`` (an order
within ``days`` after the customer's first human click). All vectorised in pandas.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from sendwise.store.repositories import Repositories
from sendwise.tracking.machines import flag_click_bursts
from sendwise.warehouse.campaigns import completed_orders
from sendwise.warehouse.connection import Warehouse

ENGAGEMENT = ("send", "open", "click", "unsubscribe", "bounce", "complaint")


def _frames(store: Repositories, campaign_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    planned = store.messages.plan_frame(campaign_id)
    # a later wave's ``waiting`` rows have no variant yet (campaigns/waves.py)
    kept = ~planned["status"].isin(["skipped", "waiting"])
    msgs = planned.loc[kept, ["message_key", "customer_id", "variant", "status"]]
    msgs = msgs.rename(columns={"variant": "arm"}).reset_index(drop=True)
    return msgs, store.events.for_campaign(campaign_id, ENGAGEMENT)


def _orders(wh: Warehouse, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return completed_orders(wh, start.to_pydatetime(), end.to_pydatetime())


def _first(events: pd.DataFrame, kind: str) -> pd.Series:
    hit = events[events["type"] == kind]
    return hit.groupby("message_id")["occurred_at"].min()


def _in_window(orders: pd.DataFrame, starts: pd.Series, days: float) -> pd.DataFrame:
    """Per customer: whether an order fell in (start, start + days], and their sum."""
    s = starts.dropna().rename("start").reset_index()
    joined = orders.merge(s, on="customer_id", how="inner")
    hit = joined[
        (joined["ordered_at"] > joined["start"])
        & (joined["ordered_at"] <= joined["start"] + timedelta(days=days))
    ]
    return hit.groupby("customer_id")["total"].agg(["size", "sum"])


def campaign_units(
    store: Repositories, wh: Warehouse | None, campaign_id: str, *, days: float
) -> pd.DataFrame:
    """Without a warehouse (``wh`` None) the order columns are all 0 (engagement only)."""
    msgs, events = _frames(store, campaign_id)
    clicks = events[events["type"] == "click"]
    bots = flag_click_bursts(clicks)
    human = events[~events["is_machine"]].drop(index=bots[bots].index)
    sent_at = _first(events, "send")
    first_send = sent_at.min() if len(sent_at) else pd.NaT
    units = msgs.set_index("message_key")
    units["sent_at"] = sent_at.reindex(units.index)
    bounced = set(events.loc[events["type"] == "bounce", "message_id"])
    units["delivered"] = (units["status"] == "sent") & ~units.index.isin(bounced)
    units["open"] = units.index.isin(set(human.loc[human["type"] == "open", "message_id"]))
    units["click"] = units.index.isin(set(human.loc[human["type"] == "click", "message_id"]))
    units["unsubscribe"] = units.index.isin(set(events.loc[events["type"] == "unsubscribe",
                                                           "message_id"]))  # fmt: skip
    units["anchor"] = units["sent_at"].where(units["delivered"], first_send)
    units["first_click"] = _first(human, "click").reindex(units.index)
    for col in ("conversion", "click_conversion", "revenue"):
        units[col] = 0
    units["revenue"] = 0.0
    if pd.notna(first_send) and wh is not None:
        anchors = units.set_index("customer_id")["anchor"]
        orders = _orders(wh, anchors.min(), anchors.max() + timedelta(days=days))
        viewed = _in_window(orders, anchors, days)
        clicked = _in_window(orders, units.set_index("customer_id")["first_click"], days)
        cust = units["customer_id"]
        units["conversion"] = cust.map(viewed["size"]).fillna(0).gt(0).astype(int).to_numpy()
        units["revenue"] = cust.map(viewed["sum"]).fillna(0.0).astype(float).to_numpy()
        units["click_conversion"] = cust.map(clicked["size"]).fillna(0).gt(0).astype(int).to_numpy()
    for col in ("open", "click", "unsubscribe", "delivered"):
        units[col] = units[col].astype(int)
    return units.reset_index()


def sent_messages(store: Repositories, campaign_id: str) -> pd.DataFrame:
    """Every message of the campaign (skipped ones too): message_key, customer_id, variant,
    status, reason, sent_at (NaT unless sent)."""
    planned = store.messages.plan_frame(campaign_id)
    out = planned[["message_key", "customer_id", "variant", "status", "reason"]].copy()
    sends = store.events.for_campaign(campaign_id, ["send"])
    first = sends.groupby("message_id")["occurred_at"].min()
    out["sent_at"] = first.reindex(out["message_key"]).to_numpy()
    return out.reset_index(drop=True)
