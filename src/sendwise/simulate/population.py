"""The customers: who they are and the latent traits that drive everything they do.

Every trait is one numpy array indexed by customer position (0 .. n-1); position i becomes
customer id ``C{i+1:07d}``. Customers are ordered by signup time, so ids follow signups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np

from sendwise.simulate.clock import DAY_US, EMAIL_HOUR_WEIGHTS, HOUR_US, draw_hours, epoch_us
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.vocabulary import (
    CATEGORIES,
    FEMALE_NAMES,
    HUMAN_USER_AGENTS,
    LAST_NAMES,
    PLACES,
)

logger = logging.getLogger(__name__)

EFFECT_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
PERSUADABLE, SURE_THING, LOST_CAUSE, SLEEPING_DOG = range(4)
FREQUENT_SHARE = 0.3  # effect_by_frequency: the sleeping dogs' share of buyers, by rate
ZONES: tuple[str, ...] = tuple(dict.fromkeys(p.timezone for p in PLACES))


@dataclass
class Population:
    created_us: np.ndarray  # int64, sorted
    created_day: np.ndarray  # int64 day index from start; negative before the period
    place: np.ndarray  # int8 index into PLACES
    zone: np.ndarray  # int8 index into ZONES
    gender: np.ndarray  # int8 index into GENDERS
    first_name: np.ndarray  # int16 index into the gender's names, -1 when unknown
    last_name: np.ndarray  # int16 index into LAST_NAMES
    has_attributes: np.ndarray  # bool
    birth_year: np.ndarray  # int16
    loyalty: np.ndarray  # int8 index into LOYALTY_TIERS
    rate: np.ndarray  # float64 purchases per day (lambda)
    dropout: np.ndarray  # float64 chance of churning after each purchase (p)
    prefs: np.ndarray  # (n, categories) float64 category shares
    prefs_cum: np.ndarray  # (n, categories) float32 cumulative shares, for sampling
    favourite: np.ndarray  # int8 category with the largest share
    price_sensitivity: np.ndarray  # float64 chance of swapping to a cheaper alternative
    first_order_at_signup: np.ndarray  # bool: account created by an order
    consent: np.ndarray  # bool: granted email marketing at signup
    weekly: np.ndarray  # bool: takes every newsletter (else the first of each month)
    bad_address: np.ndarray  # bool: every send hard-bounces
    open_propensity: np.ndarray  # float64 chance of (really) opening a delivered email
    click_propensity: np.ndarray  # float64 chance of clicking, given a real open
    privacy_proxy: np.ndarray  # bool: Apple Mail Privacy Protection prefetches every email
    preferred_hour: np.ndarray  # int64 local hour of day they read email
    device: np.ndarray  # int8 index into HUMAN_USER_AGENTS
    effect_type: np.ndarray  # int8 index into EFFECT_TYPES
    effect: np.ndarray  # float64 purchase-rate multiplier in the days after an email

    def __len__(self) -> int:
        return len(self.created_us)


def _signups(rng: np.random.Generator, n: int, start: date, days: int, cfg: ShopConfig):
    start_us = epoch_us(start)
    existing = rng.random(n) < cfg.existing_share
    back = int(cfg.existing_years * 365 * DAY_US)
    before = start_us - rng.integers(HOUR_US, back, size=n)
    # In-period signups end an hour before midnight so a first order fits in the same day.
    during = (
        start_us + rng.integers(0, days, size=n) * DAY_US + rng.integers(0, 23 * HOUR_US, size=n)
    )
    created_us = np.sort(np.where(existing, before, during))
    created_day = np.floor_divide(created_us - start_us, DAY_US)
    return created_us, created_day


def _effects(rng: np.random.Generator, rate: np.ndarray, cfg: ShopConfig):
    n = len(rate)
    u = rng.random(n)
    effect_type = np.where(rate > np.median(rate), SURE_THING, LOST_CAUSE).astype(np.int8)
    if cfg.effect_by_frequency:
        frequent = rate >= np.quantile(rate, 1 - FREQUENT_SHARE)
        effect_type[frequent & (u < cfg.sleeping_dog_share / FREQUENT_SHARE)] = SLEEPING_DOG
        effect_type[~frequent & (u < cfg.persuadable_share / (1 - FREQUENT_SHARE))] = PERSUADABLE
    else:
        effect_type[u < cfg.persuadable_share + cfg.sleeping_dog_share] = SLEEPING_DOG
        effect_type[u < cfg.persuadable_share] = PERSUADABLE
    effect = np.ones(n)
    persuadable = effect_type == PERSUADABLE
    effect[persuadable] = rng.uniform(*cfg.persuadable_effect, size=persuadable.sum())
    dogs = effect_type == SLEEPING_DOG
    effect[dogs] = rng.uniform(*cfg.sleeping_dog_effect, size=dogs.sum())
    return effect_type, effect


def build_population(
    rng: np.random.Generator, n: int, start: date, days: int, cfg: ShopConfig
) -> Population:
    created_us, created_day = _signups(rng, n, start, days, cfg)
    weights = np.array([p.weight for p in PLACES])
    place = rng.choice(len(PLACES), size=n, p=weights / weights.sum()).astype(np.int8)
    zone_of_place = np.array([ZONES.index(p.timezone) for p in PLACES], dtype=np.int8)
    gender = rng.integers(0, 2, size=n).astype(np.int8)
    first_name = rng.integers(0, len(FEMALE_NAMES), size=n).astype(np.int16)
    first_name[rng.random(n) < 0.02] = -1

    rate = rng.gamma(cfg.rate_shape_r, 1.0 / cfg.rate_alpha_days, size=n)
    shares = np.array([c.share for c in CATEGORIES])
    alpha = cfg.category_concentration * len(CATEGORIES) * shares / shares.sum()
    prefs = rng.dirichlet(alpha, size=n)
    prefs_cum = np.cumsum(prefs, axis=1).astype(np.float32)
    prefs_cum[:, -1] = 1.0  # no rounding gap past the last category
    effect_type, effect = _effects(rng, rate, cfg)
    return Population(
        created_us=created_us,
        created_day=created_day,
        place=place,
        zone=zone_of_place[place],
        gender=gender,
        first_name=first_name,
        last_name=rng.integers(0, len(LAST_NAMES), size=n).astype(np.int16),
        has_attributes=rng.random(n) < 0.8,
        birth_year=rng.integers(1950, 2006, size=n).astype(np.int16),
        loyalty=rng.choice(3, size=n, p=[0.7, 0.22, 0.08]).astype(np.int8),
        rate=rate,
        dropout=rng.beta(cfg.dropout_a, cfg.dropout_b, size=n),
        prefs=prefs,
        prefs_cum=prefs_cum,
        favourite=np.argmax(prefs, axis=1).astype(np.int8),
        price_sensitivity=rng.beta(2.0, 3.0, size=n),
        first_order_at_signup=rng.random(n) < cfg.first_order_at_signup,
        consent=rng.random(n) < cfg.consent_share,
        weekly=rng.random(n) < cfg.weekly_share,
        bad_address=rng.random(n) < cfg.bad_address_share,
        open_propensity=rng.beta(1.5, 5.0, size=n),
        click_propensity=rng.beta(1.2, 8.0, size=n),
        privacy_proxy=rng.random(n) < cfg.privacy_proxy_share,
        preferred_hour=draw_hours(rng, n, EMAIL_HOUR_WEIGHTS),
        device=rng.integers(0, len(HUMAN_USER_AGENTS), size=n).astype(np.int8),
        effect_type=effect_type,
        effect=effect,
    )
