"""Best send hour: the local hour of day at which each customer most often reads their email.

The evidence is human engagement: ``email_event`` opens and clicks that are not
``is_machine`` (privacy-proxy prefetches and link scanners say nothing about the reader).
Each one's UTC time is converted to the customer's local time with ``customer.timezone``
(IANA name; the shop's time zone when null or unknown), daylight saving included. An
*engagement* is a distinct (customer, local clock hour of a given day) with at least one such
open or click, so an open and its click a minute later count once.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from sendwise.errors import InputError
from sendwise.features.build import table_reader
from sendwise.features.common import as_timestamp, lit_ts

logger = logging.getLogger(__name__)

HOURS = 24
SOURCES = ("own", "segment", "shop")


def _zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _customers(source: Any, as_of: datetime, default_timezone: str) -> pd.DataFrame:
    """customer_id and resolved IANA time zone of every customer that exists before ``as_of``."""
    if not _zone(default_timezone):
        raise InputError(f"default_timezone {default_timezone!r} is not an IANA time zone name")
    customer = table_reader(source)("customer")
    known = customer.filter(
        customer.customer_id.notnull(),
        customer.created_at.isnull() | (customer.created_at < lit_ts(as_of)),
    )
    frame = known.select("customer_id", "timezone").to_pandas()
    frame = frame.drop_duplicates("customer_id").sort_values("customer_id", ignore_index=True)
    zone = frame["timezone"].astype("string").str.strip()
    names = zone.dropna().unique()
    bad = [name for name in names if not _zone(name)]
    if bad:
        logger.warning("unknown time zone(s) %s: using %s", sorted(bad)[:5], default_timezone)
    frame["timezone"] = zone.where(zone.notna() & ~zone.isin(bad), default_timezone)
    return frame


def engagement_hours(
    source: Any, as_of: datetime | date | str, default_timezone: str = "UTC"
) -> pd.DataFrame:
    """One row per engagement strictly before ``as_of``: customer_id, local_hour (0-23).

    Only customers in the ``customer`` table that exist before ``as_of`` are included.
    """
    as_of = as_timestamp(as_of)
    return _engagements(source, as_of, _customers(source, as_of, default_timezone))


def _engagements(source: Any, as_of: datetime, customers: pd.DataFrame) -> pd.DataFrame:
    em = table_reader(source)("email_event")
    human = em.filter(
        em.occurred_at < lit_ts(as_of),
        em.customer_id.notnull(),
        em.type.isin(["open", "click"]),
        ~em.is_machine.fill_null(False),
    )
    # minutes, not hours: zones such as Asia/Kolkata (+05:30) split a UTC hour in two
    moments = human.select("customer_id", at=human.occurred_at.truncate("m")).distinct()
    events = moments.to_pandas().merge(customers, on="customer_id", how="inner")
    utc = pd.to_datetime(events["at"])
    utc = utc.dt.tz_convert("UTC") if utc.dt.tz is not None else utc.dt.tz_localize("UTC")
    local = np.zeros(len(events), dtype="datetime64[us]")
    # one vectorised conversion per distinct time zone (a few dozen), not per row
    for zone, rows in events.groupby("timezone", sort=False).indices.items():
        wall = utc.iloc[rows].dt.tz_convert(str(zone)).dt.tz_localize(None).dt.floor("h")
        local[rows] = wall.to_numpy(dtype="datetime64[us]")
    slots = pd.DataFrame({"customer_id": events["customer_id"], "local": local})
    slots = slots.drop_duplicates(ignore_index=True)  # one engagement per local clock hour
    hour = (slots["local"].to_numpy().astype(np.int64) // 3_600_000_000) % HOURS
    return pd.DataFrame({"customer_id": slots["customer_id"], "local_hour": hour.astype(np.int8)})


def _distribution(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.full(counts.shape, 1.0 / HOURS), where=total > 0)


def best_send_hours(
    source: Any,
    as_of: datetime | date | str,
    *,
    min_events: int = 5,
    segments: pd.Series | None = None,
    prior_weight: float = 1.0,
    min_segment_events: int = 50,
    default_timezone: str = "UTC",
    default_hour: int = 10,
) -> pd.DataFrame:
    """Best local send hour of every customer that exists before ``as_of``.

    Returns customer_id, best_send_hour (0-23, the customer's local time), send_hour_source
    and engagements: the number of engagements the hour was estimated from (the customer's
    own, their segment's or the shop's).

    The estimator, for a customer with at least ``min_events`` engagements: the argmax over
    hours of the posterior mean of a Dirichlet-multinomial, ``counts[h] + prior_weight *
    prior[h]``, where ``counts`` are the customer's engagements per local hour and ``prior``
    is the hour distribution of their segment (of the shop when the segment has fewer than
    ``min_segment_events`` engagements or the customer has none). With the default weight of
    one pseudo-engagement the prior only breaks ties between equally frequent hours (toward
    the hour the population prefers) and cannot outvote a real engagement; larger weights
    pull sparse histories harder toward the population. Customers with fewer engagements get
    their segment's most frequent hour (``segments``: customer_id -> label, e.g. the RFM
    segment; missing labels count as no segment), or the shop's when the segment has fewer
    than ``min_segment_events``. ``default_hour`` is used only when the shop has no human
    engagement at all. Remaining ties go to the earliest hour.
    """
    if not (isinstance(min_events, int) and min_events >= 1):
        raise InputError(f"min_events must be a positive integer, got {min_events!r}")
    if not prior_weight >= 0:
        raise InputError(f"prior_weight must be non-negative, got {prior_weight!r}")
    if not (isinstance(default_hour, int) and 0 <= default_hour < HOURS):
        raise InputError(f"default_hour must be an hour 0..23, got {default_hour!r}")
    as_of = as_timestamp(as_of)
    frame = _customers(source, as_of, default_timezone)
    events = _engagements(source, as_of, frame)
    customers = frame["customer_id"]
    ids = pd.Index(customers.to_numpy(dtype=object))
    who = ids.get_indexer(events["customer_id"].to_numpy(dtype=object))
    hour = events["local_hour"].to_numpy(dtype=np.int64)
    counts = np.bincount(who * HOURS + hour, minlength=len(ids) * HOURS).reshape(-1, HOURS)
    own_n = counts.sum(axis=1)

    shop = counts.sum(axis=0)
    label, n_seg = _segment_codes(segments, ids)
    size = (n_seg + 1) * HOURS  # the last row collects customers without a segment
    seg_counts = np.bincount(label[who] * HOURS + hour, minlength=size).reshape(-1, HOURS)
    seg_total = seg_counts.sum(axis=1)
    usable = np.append(seg_total[:-1] >= min_segment_events, False)
    seg_prior = np.where(usable[:, None], _distribution(seg_counts), _distribution(shop))
    shop_hour = int(np.argmax(shop)) if shop.sum() > 0 else default_hour
    seg_hour = np.where(usable, np.argmax(seg_counts, axis=1), shop_hour)

    own = own_n >= min_events
    in_segment = ~own & usable[label]
    best = np.where(in_segment, seg_hour[label], shop_hour)
    mine = np.flatnonzero(own)
    posterior = counts[mine] + prior_weight * seg_prior[label[mine]]
    best[mine] = np.argmax(posterior, axis=1)
    used = np.where(own, own_n, np.where(in_segment, seg_total[label], int(shop.sum())))
    source_code = np.where(own, 0, np.where(in_segment, 1, 2))
    return pd.DataFrame(
        {
            "customer_id": customers.to_numpy(),
            "best_send_hour": best.astype(np.int64),
            "send_hour_source": pd.Categorical.from_codes(source_code, categories=list(SOURCES)),
            "engagements": used.astype(np.int64),
        }
    )


def _segment_codes(segments: pd.Series | None, ids: pd.Index) -> tuple[np.ndarray, int]:
    """(code 0..k-1 of each customer's segment, k): k stands for "no segment"."""
    if segments is None:
        return np.zeros(len(ids), dtype=np.int64), 0
    if not isinstance(segments, pd.Series):
        kind = type(segments).__name__
        raise InputError(f"segments must be a pandas Series customer_id -> label, got {kind}")
    if segments.index.has_duplicates:
        raise InputError("segments has duplicate customer ids")
    labels = segments.reindex(ids)
    codes, _ = pd.factorize(labels, use_na_sentinel=True)
    k = int(codes.max(initial=-1)) + 1
    return np.where(codes < 0, k, codes).astype(np.int64), k
