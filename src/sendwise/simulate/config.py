"""The knobs of the simulated shop's latent processes, in one frozen record.

The defaults give a plausible mid-size web shop: about two orders per customer and year, a
fifth of them repeat buyers who stay, ~25 behavioural events per customer-year and a weekly
newsletter that most subscribers take monthly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ShopConfig:
    # Purchases (BG/NBD): lambda ~ Gamma(shape=r, scale=1/alpha) per day, p ~ Beta(a, b).
    rate_shape_r: float = 0.9
    rate_alpha_days: float = 110.0
    dropout_a: float = 1.0
    dropout_b: float = 3.5
    first_order_at_signup: float = 0.5
    """Share of in-period signups whose account is created by their first order."""
    existing_share: float = 0.4
    """Share of customers who signed up before the simulated period."""
    existing_years: float = 3.0
    """How far back the pre-existing cohort's signups reach."""

    # Baskets
    line_count_probs: tuple[float, ...] = (0.5, 0.28, 0.15, 0.07)
    quantity_probs: tuple[float, ...] = (0.85, 0.11, 0.04)
    price_noise: float = 0.03
    refund_share: float = 0.04
    zipf_exponent: float = 1.1
    category_concentration: float = 0.6
    """Dirichlet concentration of category preferences; small = strong favourites."""

    # Browsing
    browse_rate_base: float = 0.0035
    """Browse-only sessions per day for a customer who never buys."""
    browse_rate_per_purchase: float = 0.7
    """Extra browse sessions per expected purchase."""
    anonymous_share: float = 0.3
    abandon_cart_share: float = 0.25
    abandon_checkout_share: float = 0.3

    # Email
    consent_share: float = 0.85
    weekly_share: float = 0.05
    """Subscribers taking every weekly newsletter; the rest get the first of each month."""
    bad_address_share: float = 0.01
    soft_bounce_rate: float = 0.003
    privacy_proxy_share: float = 0.3
    machine_open_rate: float = 0.95
    dead_interest: float = 0.35
    """Open propensity multiplier once a customer has churned."""
    unsubscribe_rate: float = 0.01
    """Chance a real open ends in an unsubscribe (four times that for sleeping dogs)."""
    send_hour_utc: int = 8
    effect_days: int = 7

    # Heterogeneous email effect: shares of persuadable and sleeping_dog; the rest are
    # sure_thing (above-median rate) or lost_cause.
    persuadable_share: float = 0.25
    sleeping_dog_share: float = 0.1
    persuadable_effect: tuple[float, float] = (1.5, 3.0)
    sleeping_dog_effect: tuple[float, float] = (0.3, 0.7)
    effect_by_frequency: bool = False
    """False: persuadable and sleeping_dog are drawn independently of every trait, so no
    model can tell them apart from behaviour. True: the sleeping dogs are drawn among the
    30% most frequent buyers (annoyed regulars) and the persuadables among the rest, so the
    order history hints at who an email persuades (the uplift tests use it)."""

    def as_dict(self) -> dict:
        return asdict(self)
