"""Time in the simulation: UTC microseconds, seasonality, local-time offsets, hour-of-day draws.

Timestamps are int64 microseconds since the Unix epoch (UTC) until they become Arrow
``timestamp('us')`` columns, so every conversion is integer arithmetic on whole arrays.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

logger = logging.getLogger(__name__)

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 3600 * SECOND_US
DAY_US = 86_400 * SECOND_US

MONTH_FACTOR = (0.9, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.9, 0.95, 1.05, 1.35, 1.5)
"""Yearly demand by month: a January sale, a summer lull, the Q4 peak."""
WEEKDAY_FACTOR = (1.05, 1.0, 1.0, 1.0, 0.95, 0.9, 1.1)
"""Monday .. Sunday: Sunday-evening and Monday shopping."""

PURCHASE_HOUR_WEIGHTS = np.array(
    [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.7, 1.9,
     2.2, 2.1, 1.8, 1.7, 1.7, 1.9, 2.2, 2.6, 2.8, 2.6, 1.8, 0.9]
)  # fmt: skip
"""Local hour of day of shopping: lunch and evening peaks, quiet nights."""
EMAIL_HOUR_WEIGHTS = np.array(
    [0.1, 0.05, 0.05, 0.05, 0.05, 0.2, 0.8, 2.0, 2.4, 1.6, 1.0, 1.0,
     1.8, 1.6, 0.8, 0.7, 0.8, 1.0, 1.3, 1.8, 2.2, 1.8, 1.0, 0.4]
)  # fmt: skip
"""Local hour people prefer to read email: commute, lunch and evening."""


def epoch_us(day: date) -> int:
    """Microseconds since the epoch at midnight UTC of ``day``."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(moment.timestamp()) * SECOND_US


def _black_friday(year: int) -> date:
    first = date(year, 11, 1)
    first_friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return first_friday + timedelta(days=21)


def _day_factor(day: date) -> float:
    value = MONTH_FACTOR[day.month - 1] * WEEKDAY_FACTOR[day.weekday()]
    if 0 <= (day - _black_friday(day.year)).days <= 3:  # Black Friday to Cyber Monday
        value *= 1.8
    elif day.month == 12 and day.day >= 22:  # too late to ship before Christmas
        value *= 0.6
    return value


def seasonality(start: date, n_days: int) -> np.ndarray:
    """Demand multiplier of each day from ``start``, mean one over a calendar year."""
    factors = np.array([_day_factor(start + timedelta(days=i)) for i in range(n_days)])
    year = date(start.year, 1, 1)
    norm = np.mean([_day_factor(year + timedelta(days=i)) for i in range(365)])
    return factors / norm


def utc_offsets(zones: tuple[str, ...], start: date, n_days: int) -> np.ndarray:
    """Seconds to add to UTC for local time, per zone (rows) and day (columns), at noon UTC.

    Daylight-saving switches happen at night, so the noon offset is right for the waking day.
    """
    table = np.empty((len(zones), n_days), dtype=np.int64)
    base = datetime(start.year, start.month, start.day, 12, tzinfo=UTC)
    for z, name in enumerate(zones):
        zone = ZoneInfo(name)
        for i in range(n_days):
            offset = (base + timedelta(days=i)).astimezone(zone).utcoffset()
            table[z, i] = int(offset.total_seconds()) if offset is not None else 0
    return table


def draw_hours(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    """``n`` hours of day (0-23) drawn with the given relative weights."""
    return rng.choice(24, size=n, p=weights / weights.sum()).astype(np.int64)


def local_time_in_utc_day(
    rng: np.random.Generator, day_start_us: np.ndarray, offset_s: np.ndarray, hours: np.ndarray
) -> np.ndarray:
    """A moment in the UTC day starting at ``day_start_us`` whose local hour is ``hours``.

    Wrapping the local clock time into the UTC day keeps every event inside its simulated day
    (and the period), while its local hour of day stays the intended one.
    """
    local_us = hours * HOUR_US + rng.integers(0, HOUR_US, size=len(hours))
    utc_in_day = (local_us - offset_s * SECOND_US) % DAY_US
    return day_start_us + utc_in_day


def newsletter_days(start: date, days: int, weekday: int = 0) -> list[tuple[int, bool]]:
    """(day index, first of its month) of each newsletter: every ``weekday`` (Monday)."""
    out = []
    for i in range(days):
        day = start + timedelta(days=i)
        if day.weekday() == weekday:
            out.append((i, day.day <= 7))
    return out
