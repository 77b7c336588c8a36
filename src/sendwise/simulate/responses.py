"""How the simulated customers answer a campaign: opens, clicks, unsubscribes and purchases.

Given the store's messages of a campaign (arm, status, send time) and the shop's ground truth,
:func:`simulate_responses` draws, deterministically per seed:

* for each delivered message: a privacy-proxy prefetch 2 s to a few minutes after delivery for
  95% of proxy users (user agent ``Mozilla/5.0``; their human opens stay invisible); a human open
  with ``open_propensity`` hours later (a ``Mozilla/5.0 (...)`` device agent), a click with
  ``click_propensity`` after it, an unsubscribe with 1% (4% for sleeping dogs); for 3% of
  messages a link scanner clicking every link within a second;
* purchases of every eligible customer (holdout too) in the ``days`` after the anchor (their
  delivery, or the campaign's first send) from a Poisson process of rate ``purchase_rate``
  (zero when dead), multiplied for delivered customers of variant v by
  ``max(0, 1 + strength[v] * (email_effect - 1))``.

``true_effect[v]`` is the expected conversion lift of v over the holdout on the eligible
population, 1 - exp(-rate * m * days) - (1 - exp(-rate * days)) averaged over every eligible
customer (delivery assumed), the quantity the campaign results estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HUMAN_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
)
PROXY_AGENT = "Mozilla/5.0"
SCANNER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"
MACHINE_OPEN_RATE, SCANNER_RATE = 0.95, 0.03
LINKS = ("https://shop.example/new", "https://shop.example/sale", "https://shop.example/top")


@dataclass
class Responses:
    events: pd.DataFrame
    """message_key, type (open/click/unsubscribe), at, user_agent, url, machine (the truth)."""
    orders: pd.DataFrame
    """Orders in the warehouse's canonical shape (order_id, customer_id, ordered_at, ...)."""
    true_effect: dict[str, float] = field(default_factory=dict)


def _rates(units: pd.DataFrame, truth) -> pd.DataFrame:
    if not isinstance(truth, pd.DataFrame):  # the simulator's pyarrow table
        truth = truth.to_pandas()
    t = truth.set_index("customer_id")
    joined = units.join(t, on="customer_id", how="left")
    alive = joined["alive_at_end"].fillna(False).astype(bool)
    joined["rate"] = joined["purchase_rate"].fillna(0.0).where(alive, 0.0)
    value = t["future_revenue"] / t["future_orders"].where(t["future_orders"] > 0)
    joined["order_value"] = joined["customer_id"].map(value).fillna(value.median())
    return joined


def _multiplier(effect: np.ndarray, strength) -> np.ndarray:
    """The purchase-rate multiplier of an email: the customer's effect scaled by the variant's
    strength (never below 0: a sleeping dog told twice stops buying, not less than that)."""
    return np.clip(1 + strength * (effect - 1), 0.0, None)


def simulate_responses(
    messages: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    strength: dict[str, float],
    days: float = 7.0,
    seed: int = 0,
) -> Responses:
    """``messages``: message_key, customer_id, variant, status, sent_at (NaT unless sent)."""
    rng = np.random.default_rng(seed)
    units = _rates(messages[messages["status"] != "skipped"].reset_index(drop=True), truth)
    first = pd.to_datetime(units["sent_at"]).min()
    delivered = (units["status"] == "sent").to_numpy()
    anchor = pd.to_datetime(units["sent_at"]).where(delivered, first)
    gain = units["variant"].map(strength).astype("float64").fillna(0.0).to_numpy(float)
    effect = units["email_effect"].astype("float64").fillna(1.0).to_numpy(float)
    mult = np.where(delivered, _multiplier(effect, gain), 1.0)
    rate = units["rate"].astype("float64").fillna(0.0).to_numpy(float)
    counts = rng.poisson(rate * mult * days)
    who = np.repeat(np.arange(len(units)), counts)
    value = units["order_value"].to_numpy()
    offset = pd.to_timedelta(rng.random(len(who)) * days * 86400, unit="s")
    orders = pd.DataFrame(
        {
            "order_id": [f"camp-{seed}-{i}" for i in range(len(who))],
            "customer_id": units["customer_id"].to_numpy()[who],
            "ordered_at": (anchor.to_numpy()[who] + offset.to_numpy()).astype("datetime64[s]"),
            "status": "completed",
            "currency": "EUR",
            "total": np.round(value[who] * rng.lognormal(0, 0.3, len(who)), 2),
        }
    )
    base = 1 - np.exp(-rate * days)
    true_effect = {
        str(v): float(np.mean(1 - np.exp(-rate * _multiplier(effect, s) * days) - base))
        for v, s in strength.items()
    }
    events = _engagement(rng, units[delivered].reset_index(drop=True))
    return Responses(events, orders, true_effect)


def _frame(keys, kind: str, at, agent, url, machine: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {"message_key": keys, "type": kind, "at": at, "user_agent": agent, "url": url,
         "machine": machine}
    )  # fmt: skip


def _engagement(rng: np.random.Generator, sent: pd.DataFrame) -> pd.DataFrame:
    n = len(sent)
    at = pd.to_datetime(sent["sent_at"]).to_numpy()
    keys = sent["message_key"].to_numpy()
    proxy = sent["uses_privacy_proxy"].fillna(False).to_numpy(bool)

    def seconds(x):
        return pd.to_timedelta(x, unit="s").to_numpy()

    machine = proxy & (rng.random(n) < MACHINE_OPEN_RATE)
    prefetch = at[machine] + seconds(2 + rng.exponential(90, machine.sum()))
    frames = [_frame(keys[machine], "open", prefetch, PROXY_AGENT, None, True)]
    opened = rng.random(n) < sent["open_propensity"].fillna(0).to_numpy()
    open_at = at + seconds(600 + rng.exponential(6 * 3600, n))
    agent = np.array(HUMAN_AGENTS)[rng.integers(0, len(HUMAN_AGENTS), n)]
    seen = opened & ~proxy  # a proxy hides the human open (not the click)
    frames.append(_frame(keys[seen], "open", open_at[seen], agent[seen], None, False))
    clicked = opened & (rng.random(n) < sent["click_propensity"].fillna(0).to_numpy())
    link = np.array(LINKS)[rng.integers(0, len(LINKS), n)]
    click_at = open_at[clicked] + seconds(5 + rng.exponential(60, clicked.sum()))
    frames.append(_frame(keys[clicked], "click", click_at, agent[clicked], link[clicked], False))
    dog = (sent["email_effect_type"] == "sleeping_dog").to_numpy()
    unsub = opened & (rng.random(n) < np.where(dog, 0.04, 0.01))
    frames.append(
        _frame(keys[unsub], "unsubscribe", open_at[unsub] + seconds(30), agent[unsub], None, False)
    )
    scanned = rng.random(n) < SCANNER_RATE
    for i, url in enumerate(LINKS):
        scan_at = at[scanned] + seconds(20 + 0.2 * i)
        frames.append(_frame(keys[scanned], "click", scan_at, SCANNER_AGENT, url, True))
    events = pd.concat([f for f in frames if len(f)], ignore_index=True)
    events["at"] = pd.to_datetime(events["at"]).astype("datetime64[us]")  # the store's precision
    return events.sort_values(["at", "message_key"], kind="stable").reset_index(drop=True)
