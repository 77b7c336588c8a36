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
from sqlalchemy import select

from sendwise.store.connection import Store
from sendwise.store.schema import email_event, message
from sendwise.tracking.machines import flag_click_bursts

ENGAGEMENT = ("send", "open", "click", "unsubscribe", "bounce", "complaint")


def _frames(store: Store, campaign_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    m, e = message.c, email_event.c
    with store.begin() as conn:
        msgs = pd.DataFrame(
            conn.execute(
                select(m.message_key, m.customer_id, m.variant, m.status).where(
                    m.campaign_id == campaign_id, m.status != "skipped"
                )
            ).all(),
            columns=["message_key", "customer_id", "arm", "status"],
        )
        events = pd.DataFrame(
            conn.execute(
                select(e.message_id, e.type, e.occurred_at, e.is_machine, e.url).where(
                    e.campaign_id == campaign_id, e.type.in_(ENGAGEMENT)
                )
            ).all(),
            columns=["message_id", "type", "occurred_at", "is_machine", "url"],
        )
    events["occurred_at"] = pd.to_datetime(events["occurred_at"])
    events["is_machine"] = events["is_machine"].astype(bool)
    return msgs, events


def _orders(wh, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    o, lines = wh.table("order"), wh.table("order_line")
    o = o.filter(
        o.ordered_at > start.to_pydatetime(),
        o.ordered_at <= end.to_pydatetime(),
        o.status == "completed",
        o.customer_id.notnull(),
    )
    value = lines.group_by("order_id").aggregate(total=(lines.quantity * lines.unit_price).sum())
    joined = o.left_join(value, o.order_id == value.order_id)
    frame = joined.select("customer_id", "ordered_at", "total").to_pandas()
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"]).dt.tz_localize(None)
    frame["total"] = pd.to_numeric(frame["total"]).astype(float).fillna(0.0)
    return frame


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


def campaign_units(store: Store, wh, campaign_id: str, *, days: float) -> pd.DataFrame:
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
    if pd.notna(first_send):
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


def sent_messages(store: Store, campaign_id: str) -> pd.DataFrame:
    """Every message of the campaign (skipped ones too): message_key, customer_id, variant,
    status, reason, sent_at (NaT unless sent)."""
    m, e = message.c, email_event.c
    with store.begin() as conn:
        out = pd.DataFrame(
            conn.execute(
                select(m.message_key, m.customer_id, m.variant, m.status, m.reason).where(
                    m.campaign_id == campaign_id
                )
            ).all(),
            columns=["message_key", "customer_id", "variant", "status", "reason"],
        )
        sends = pd.DataFrame(
            conn.execute(
                select(e.message_id, e.occurred_at).where(
                    e.campaign_id == campaign_id, e.type == "send"
                )
            ).all(),
            columns=["message_key", "sent_at"],
        )
    sends["sent_at"] = pd.to_datetime(sends["sent_at"])
    first = sends.groupby("message_key")["sent_at"].min()
    out["sent_at"] = first.reindex(out["message_key"]).to_numpy()
    return out
