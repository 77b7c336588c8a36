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
    UNSUBSCRIBE,
    EmailBatch,
)
from sendwise.simulate.render_entities import SHOP_URL
from sendwise.simulate.strings import NullColumns, concat, lookup, numbers, table, timestamps
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


class EmailLog:
    """Renders each campaign's rows as soon as it is sent, so the numbers never pile up.

    Keeps only the unsubscribes as numbers, for the consent table.
    """

    def __init__(
        self, start: date, customer_ids: pa.Array, emails: pa.Array, product_ids: pa.Array
    ) -> None:
        self._start = start
        self._customer_ids = customer_ids
        self._emails = emails
        self._product_ids = product_ids
        self._chunks: list[pa.Table] = []
        self._quit: list[tuple[np.ndarray, np.ndarray]] = []
        self._next_event = 1
        self._nulls = NullColumns()

    def add(self, batch: EmailBatch) -> None:
        quit_ = batch.kind == UNSUBSCRIBE
        self._quit.append((batch.customer[quit_], batch.time_us[quit_]))
        self._chunks.append(self._render(batch))
        self._next_event += len(batch)

    def unsubscribes(self) -> tuple[np.ndarray, np.ndarray]:
        """(customer position, time) of every unsubscribe, in time order."""
        customer = np.concatenate([np.zeros(0, np.int32), *(c for c, _ in self._quit)])
        time_us = np.concatenate([np.zeros(0, np.int64), *(t for _, t in self._quit)])
        return customer, time_us

    def table(self) -> pa.Table:
        if not self._chunks:
            return table("email_event", {"event_id": pa.array([], pa.string())})
        return pa.concat_tables(self._chunks)

    def _render(self, batch: EmailBatch) -> pa.Table:
        n = len(batch)
        first = self._next_event
        campaign = campaign_id(self._start, batch.day)
        url = concat(
            f"{SHOP_URL}/p/",
            lookup(self._product_ids, batch.product, mask=batch.kind != CLICK),
            f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}",
        )
        customer = pa.array(batch.customer.astype(np.int64))
        return table(
            "email_event",
            {
                "event_id": concat("ev", numbers(np.arange(first, first + n))),
                "customer_id": self._customer_ids.take(customer),
                "email": self._emails.take(customer),
                "message_id": concat("em", numbers(batch.message)),
                "campaign_id": lookup([campaign], np.zeros(n, dtype=np.int64)),
                "type": lookup(EMAIL_KINDS, batch.kind),
                "occurred_at": timestamps(batch.time_us),
                "url": url,
                "user_agent": lookup(USER_AGENTS, batch.agent, mask=batch.agent < 0),
                "is_machine": pa.array(batch.agent == PROXY_AGENT),
                "reason": lookup(REASONS, batch.kind),
            },
            self._nulls,
        )
