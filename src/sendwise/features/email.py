"""Features from email engagement.

Opens and clicks count distinct messages opened or clicked by a person: opens and clicks flagged
``is_machine`` (privacy-proxy opens, link scanners) are counted apart in ``email_machine_opens``.
Rates are per delivered message (per sent message when no delivery was recorded). A customer is
``unsubscribed`` when their latest email/marketing consent before ``as_of`` is withdrawn, or
when an unsubscribe event came after their latest grant.
"""

from __future__ import annotations

from datetime import datetime

import ibis
from ibis.expr.types import Table

from sendwise.features.common import days_between, lit_ts
from sendwise.features.orders import Tables


def email_features(table: Tables, as_of: datetime) -> list[Table]:
    em = table("email_event")
    em = em.filter(em.occurred_at < lit_ts(as_of), em.customer_id.notnull())
    human = ~em.is_machine.fill_null(False)
    is_open, is_click = em.type == "open", em.type == "click"
    agg = em.group_by("customer_id").aggregate(
        email_sends=em.count(where=em.type == "send"),
        email_delivered=em.count(where=em.type == "delivered"),
        email_opens=em.message_id.nunique(where=is_open & human),
        email_clicks=em.message_id.nunique(where=is_click & human),
        email_machine_opens=em.count(where=is_open & ~human),
        _last_open=em.occurred_at.max(where=is_open & human),
        _last_click=em.occurred_at.max(where=is_click & human),
        _last_unsubscribe=em.occurred_at.max(where=em.type == "unsubscribe"),
    )
    base = ibis.ifelse(agg.email_delivered > 0, agg.email_delivered, agg.email_sends)
    agg = agg.mutate(
        open_rate=ibis.ifelse(base > 0, agg.email_opens / base, None),
        click_rate=ibis.ifelse(base > 0, agg.email_clicks / base, None),
        days_since_last_open=days_between(as_of, agg._last_open),
        days_since_last_click=days_between(as_of, agg._last_click),
    )
    consent = table("consent")
    consent = consent.filter(
        consent.recorded_at < lit_ts(as_of),
        consent.channel == "email",
        consent.purpose == "marketing",
    )
    ranked = consent.mutate(
        _n=ibis.row_number().over(
            group_by=consent.customer_id, order_by=ibis.desc(consent.recorded_at)
        )
    )
    latest = ranked.filter(ranked._n == 0).select(
        "customer_id", _consent=ranked.status, _consent_at=ranked.recorded_at
    )
    return [agg, latest]


def unsubscribed(joined: Table) -> ibis.Value:
    """True when the latest consent is withdrawn or an unsubscribe followed the latest grant."""
    withdrawn = joined._consent == "withdrawn"
    later = joined._last_unsubscribe.notnull() & (
        joined._consent_at.isnull() | (joined._last_unsubscribe > joined._consent_at)
    )
    return (withdrawn | later).fill_null(False)
