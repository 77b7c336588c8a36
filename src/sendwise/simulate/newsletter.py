"""One newsletter send: who gets it, and what each recipient's mailbox and hand do with it.

Human opens happen at the recipient's preferred local hour; privacy-proxy mailboxes prefetch
every delivered email seconds to minutes after delivery (a machine open) and hide the human
open, though the human's clicks still show. Unsubscribes take effect before the next send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sendwise.simulate.catalogue import ProductSampler
from sendwise.simulate.clock import DAY_US, HOUR_US, MINUTE_US, SECOND_US
from sendwise.simulate.config import ShopConfig
from sendwise.simulate.population import SLEEPING_DOG, Population

logger = logging.getLogger(__name__)

EMAIL_KINDS = ("send", "delivered", "open", "click", "bounce", "soft_bounce", "unsubscribe")
SEND, DELIVERED, OPEN, CLICK, BOUNCE, SOFT_BOUNCE, UNSUBSCRIBE = range(len(EMAIL_KINDS))
PROXY_AGENT = 0
"""User-agent code of a privacy-proxy fetch; human devices are 1 + Population.device."""


@dataclass
class MailState:
    """What the sender knows and remembers between sends."""

    unsubscribed: np.ndarray  # bool
    suppressed: np.ndarray  # bool: hard-bounced before
    last_delivery_day: np.ndarray  # int64 day of the latest delivered email

    @classmethod
    def fresh(cls, n: int) -> MailState:
        return cls(
            unsubscribed=np.zeros(n, dtype=bool),
            suppressed=np.zeros(n, dtype=bool),
            last_delivery_day=np.full(n, -10_000, dtype=np.int64),
        )


@dataclass
class EmailBatch:
    """The email_event rows of one campaign, as numbers, in time order."""

    day: int
    first_message: int  # message number of the first recipient; recipients count up from it
    customer: np.ndarray  # int32
    message: np.ndarray  # int64 message number
    kind: np.ndarray  # int8 index into EMAIL_KINDS
    time_us: np.ndarray  # int64
    agent: np.ndarray  # int8 user-agent code, -1 for none
    product: np.ndarray  # int32 clicked product, -1 for none

    def __len__(self) -> int:
        return len(self.customer)


def _human_open_times(
    rng: np.random.Generator, pop: Population, who: np.ndarray, delivered_us: np.ndarray,
    offset_s: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """When each recipient really reads the email: mostly at their preferred local hour."""
    n = len(who)
    shift_us = offset_s[pop.zone[who]] * SECOND_US
    local_us = delivered_us + shift_us
    jitter = rng.choice([0, -1, 1], size=n, p=[0.8, 0.1, 0.1])
    hour = (pop.preferred_hour[who] + jitter) % 24
    stray = rng.random(n) < 0.12  # the odd read at a random moment
    hour[stray] = rng.integers(0, 24, size=stray.sum())
    midnight = local_us - local_us % DAY_US
    moment = midnight + hour * HOUR_US + rng.integers(0, HOUR_US, size=n)
    moment += np.where(moment < local_us + MINUTE_US, DAY_US, 0)
    moment += rng.choice([0, 1, 2], size=n, p=[0.75, 0.2, 0.05]) * DAY_US  # read it later
    return moment - shift_us


def send_newsletter(
    rng: np.random.Generator,
    pop: Population,
    state: MailState,
    dead: np.ndarray,
    day: int,
    first_of_month: bool,
    send_us: int,
    end_us: int,
    first_message: int,
    offset_s: np.ndarray,
    sampler: ProductSampler,
    cfg: ShopConfig,
) -> EmailBatch:
    """Send the campaign of ``day`` and update ``state`` (deliveries, bounces, unsubscribes)."""
    signed_up = int(np.searchsorted(pop.created_us, send_us, side="left"))
    eligible = pop.consent[:signed_up] & ~state.unsubscribed[:signed_up]
    eligible &= ~state.suppressed[:signed_up]
    if not first_of_month:
        eligible &= pop.weekly[:signed_up]
    who = np.flatnonzero(eligible).astype(np.int32)
    n = len(who)
    message = first_message + np.arange(n, dtype=np.int64)
    sent_us = send_us + rng.integers(0, 30 * MINUTE_US, size=n)

    hard = pop.bad_address[who]
    state.suppressed[who[hard]] = True
    soft = ~hard & (rng.random(n) < cfg.soft_bounce_rate)
    ok = ~(hard | soft)
    delivered_us = sent_us + rng.integers(SECOND_US, 60 * SECOND_US, size=n)
    state.last_delivery_day[who[ok]] = day

    d_who, d_msg, d_us = who[ok], message[ok], delivered_us[ok]
    proxy = pop.privacy_proxy[d_who]
    machine = proxy & (rng.random(len(d_who)) < cfg.machine_open_rate)
    machine_us = d_us[machine] + (2 * SECOND_US + rng.exponential(90.0, machine.sum()) * SECOND_US)
    interest = np.where(dead[d_who], cfg.dead_interest, 1.0) * pop.open_propensity[d_who]
    real = rng.random(len(d_who)) < interest
    real_us = _human_open_times(rng, pop, d_who[real], d_us[real], offset_s)
    r_who, r_msg = d_who[real], d_msg[real]
    seen = ~proxy[real]  # a proxy hides the human open itself
    click = rng.random(len(r_who)) < pop.click_propensity[r_who]
    click_us = real_us[click] + (3 * SECOND_US + rng.exponential(40.0, click.sum()) * SECOND_US)
    quit_rate = np.where(pop.effect_type[r_who] == SLEEPING_DOG, 4.0, 1.0) * cfg.unsubscribe_rate
    quit_ = (rng.random(len(r_who)) < quit_rate) & (real_us + MINUTE_US < end_us)
    quit_us = real_us[quit_] + (10 * SECOND_US + rng.exponential(60.0, quit_.sum()) * SECOND_US)
    state.unsubscribed[r_who[quit_]] = True
    clicked = sampler.products(rng, r_who[click])

    device = (1 + pop.device).astype(np.int8)
    parts = [
        (who, message, SEND, sent_us, -1, -1),
        (who[hard], message[hard], BOUNCE, delivered_us[hard], -1, -1),
        (who[soft], message[soft], SOFT_BOUNCE, delivered_us[soft], -1, -1),
        (d_who, d_msg, DELIVERED, d_us, -1, -1),
        (d_who[machine], d_msg[machine], OPEN, machine_us.astype(np.int64), PROXY_AGENT, -1),
        (r_who[seen], r_msg[seen], OPEN, real_us[seen], device[r_who[seen]], -1),
        (r_who[click], r_msg[click], CLICK, click_us.astype(np.int64), device[r_who[click]],
         clicked),
        (r_who[quit_], r_msg[quit_], UNSUBSCRIBE, quit_us.astype(np.int64),
         device[r_who[quit_]], -1),
    ]  # fmt: skip
    return _assemble(day, first_message, parts, end_us)


def _assemble(day: int, first_message: int, parts: list, end_us: int) -> EmailBatch:
    def column(i: int, dtype: type) -> np.ndarray:
        return np.concatenate(
            [np.broadcast_to(np.asarray(p[i], dtype=dtype), len(p[0])) for p in parts]
        )

    customer = column(0, np.int32)
    kind = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    time_us = column(3, np.int64)
    keep = time_us < end_us  # what happens after the period is not observed yet
    order = np.flatnonzero(keep)[np.argsort(time_us[keep], kind="stable")]
    return EmailBatch(
        day=day,
        first_message=first_message,
        customer=customer[order],
        message=column(1, np.int64)[order],
        kind=kind[order],
        time_us=time_us[order],
        agent=column(4, np.int8)[order],
        product=column(5, np.int32)[order],
    )
