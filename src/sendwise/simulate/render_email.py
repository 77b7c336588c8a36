"""The email_event table, one chunk per newsletter campaign."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from sendwise.simulate.newsletter import (
    BOUNCE,
    CLICK,
    EMAIL_KINDS,
    PROXY_AGENT,
    SOFT_BOUNCE,
    EmailBatch,
)
from sendwise.simulate.render_entities import SHOP_URL
from sendwise.simulate.strings import concat, lookup, numbers, table, timestamps
from sendwise.simulate.vocabulary import HUMAN_USER_AGENTS, PRIVACY_PROXY_USER_AGENT

logger = logging.getLogger(__name__)

USER_AGENTS = (PRIVACY_PROXY_USER_AGENT, *HUMAN_USER_AGENTS)
REASONS = tuple(
    {
        BOUNCE: "550 5.1.1 The email account that you tried to reach does not exist",
        SOFT_BOUNCE: "452 4.2.2 The email account that you tried to reach is over quota",
    }.get(k)
    for k in range(len(EMAIL_KINDS))
)


def campaign_id(start: date, day: int) -> str:
    return f"nl-{(start + timedelta(days=day)).isoformat()}"


def email_event_table(
    batches: list[EmailBatch],
    start: date,
    customer_ids: pa.Array,
    emails: pa.Array,
    product_ids: pa.Array,
) -> pa.Table:
    chunks = []
    next_event = 1
    for batch in batches:
        n = len(batch)
        campaign = campaign_id(start, batch.day)
        clicked = batch.kind == CLICK
        url = concat(
            f"{SHOP_URL}/p/",
            lookup(product_ids, batch.product, mask=~clicked),
            f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}",
        )
        customer = batch.customer.astype(np.int64)
        chunks.append(
            table(
                "email_event",
                {
                    "event_id": concat("ev", numbers(np.arange(next_event, next_event + n))),
                    "customer_id": customer_ids.take(pa.array(customer)),
                    "email": emails.take(pa.array(customer)),
                    "message_id": concat("em", numbers(batch.message)),
                    "campaign_id": lookup([campaign], np.zeros(n, dtype=np.int64)),
                    "type": lookup(EMAIL_KINDS, batch.kind),
                    "occurred_at": timestamps(batch.time_us),
                    "url": url,
                    "user_agent": lookup(USER_AGENTS, batch.agent, mask=batch.agent < 0),
                    "is_machine": pa.array(batch.agent == PROXY_AGENT),
                    "reason": lookup(REASONS, batch.kind),
                },
            )
        )
        next_event += n
    if not chunks:
        return table("email_event", {"event_id": pa.array([], pa.string())})
    return pa.concat_tables(chunks)
