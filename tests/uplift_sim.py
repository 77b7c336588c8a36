"""The simulator as an uplift oracle: a shop whose persuadable and sleeping-dog customers are
known (ShopConfig.effect_by_frequency), an email sent at random to half of them, the outcome
(an order in the 7 days after) drawn by the simulator's response model, and each customer's TRUE
effect of the email computed from their latent rate and email effect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sendwise.simulate import simulate_shop
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.responses import _multiplier, simulate_responses
from sendwise.uplift.data import Experiment

DAYS = 14.0
STRENGTH = 2.0  # a strong email: persuadables buy up to 5 times as often, dogs stop


@dataclass
class SimExperiment:
    experiment: Experiment
    true_uplift: np.ndarray  # each customer's true lift of conversion probability
    truth: pd.DataFrame


def order_features(orders: pd.DataFrame, customers: pd.Series, end: pd.Timestamp) -> pd.DataFrame:
    """What the shop sees of each customer before ``end``: order counts and recencies."""
    o = orders[orders["ordered_at"] < end]
    age = (end - o["ordered_at"]).dt.days
    g = o.assign(age=age).groupby("customer_id")["age"]
    f = pd.DataFrame(
        {
            "orders": g.size(),
            "orders_90d": g.apply(lambda a: (a < 90).sum()),
            "days_since_last": g.min(),
            "days_since_first": g.max(),
        }
    )
    f = f.reindex(customers)
    f["orders"] = f["orders"].fillna(0)
    f["orders_90d"] = f["orders_90d"].fillna(0)
    return f.astype(np.float64)


def true_effects(truth: pd.DataFrame, strength: float = 1.0, days: float = DAYS) -> np.ndarray:
    rate = truth["purchase_rate"].where(truth["alive_at_end"], 0.0).to_numpy(float)
    mult = _multiplier(truth["email_effect"].to_numpy(float), strength)
    return (1 - np.exp(-rate * mult * days)) - (1 - np.exp(-rate * days))


def sim_experiment(customers: int = 100_000, seed: int = 5) -> SimExperiment:
    shop = simulate_shop(
        customers=customers, days=365, seed=seed, config=ShopConfig(effect_by_frequency=True)
    )
    truth = shop.truth.to_pandas()
    end = pd.Timestamp(shop.params["end"])
    orders = shop.tables["order"].to_pandas()
    orders = orders[orders["refund_of"].isna()]
    X = order_features(orders, truth["customer_id"], end).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    treated = rng.random(len(truth)) < 0.5
    messages = pd.DataFrame(
        {
            "message_key": [f"m{i}" for i in range(len(truth))],
            "customer_id": truth["customer_id"],
            "variant": np.where(treated, "A", "holdout"),
            "status": np.where(treated, "sent", "holdout"),
            "sent_at": pd.Series(np.where(treated, end, pd.NaT)).astype("datetime64[us]"),
        }
    )
    res = simulate_responses(messages, truth, strength={"A": STRENGTH}, days=DAYS, seed=seed)
    converted = truth["customer_id"].isin(set(res.orders["customer_id"])).to_numpy()
    exp = Experiment(X, treated.astype(np.int8), converted.astype(np.float64), "A", "conversion")
    return SimExperiment(exp, true_effects(truth, STRENGTH), truth)


def conversion_probabilities(
    truth: pd.DataFrame, strengths: dict[str, float], days: float = DAYS
) -> pd.DataFrame:
    """Each customer's true chance of an order in ``days`` under each variant and the holdout."""
    rate = truth["purchase_rate"].where(truth["alive_at_end"], 0.0).to_numpy(float)
    effect = truth["email_effect"].to_numpy(float)
    out = {v: 1 - np.exp(-rate * _multiplier(effect, s) * days) for v, s in strengths.items()}
    out["holdout"] = 1 - np.exp(-rate * days)
    return pd.DataFrame(out)


def run_waves(p: pd.DataFrame, shares_of, waves: int, seed: int):
    """Send ``waves`` equal waves of the customers (in random order); ``shares_of(log)`` gives
    the next wave's shares. Returns the WaveLog and the true conversions lost against sending
    every non-holdout customer the truly best variant."""
    from sendwise.uplift.bandit import WaveLog, split

    rng = np.random.default_rng(seed)
    best = p.drop(columns="holdout").mean().idxmax()
    log, lost = WaveLog(), 0.0
    for wave in np.array_split(rng.permutation(len(p)), waves):
        shares = shares_of(log)
        counts = split(len(wave), shares)
        arms = np.repeat(list(counts), list(counts.values()))
        rng.shuffle(arms)
        chance = p.to_numpy()[wave, [p.columns.get_loc(a) for a in arms]]
        outcome = rng.random(len(wave)) < chance
        sent = arms != "holdout"
        lost += float((p[best].to_numpy()[wave][sent] - chance[sent]).sum())
        trials = {a: int((arms == a).sum()) for a in counts}
        wins = {a: int(outcome[arms == a].sum()) for a in counts}
        log.record(shares, trials, wins)
    return log, lost
