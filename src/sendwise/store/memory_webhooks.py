"""The in-memory fake of the webhook repository (see :mod:`sendwise.store.webhooks`)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sendwise.store.webhooks import (
    OUTBOX_FIELDS,
    Delivery,
    OutboxEntry,
    Outcome,
    Subscription,
    check_outcomes,
    entry,
)


class MemoryWebhooks:
    def __init__(self, email_event_seq: Callable[[], int] = lambda: 0) -> None:
        self.subs: dict[str, Subscription] = {}
        self.rows: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._email_event_seq = email_event_seq

    def add_subscription(self, sub: Subscription) -> bool:
        if sub.subscription_id in self.subs:
            return False
        self.subs[sub.subscription_id] = replace(sub, events=tuple(sub.events))
        return True

    def subscriptions(self) -> list[Subscription]:
        return sorted(self.subs.values(), key=lambda x: (x.created_at, x.subscription_id))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        return self.subs.get(subscription_id)

    def remove_subscription(self, subscription_id: str) -> bool:
        for key in [k for k, r in self.rows.items() if r["subscription_id"] == subscription_id]:
            del self.rows[key]
        return self.subs.pop(subscription_id, None) is not None

    def disable_subscription(self, subscription_id: str, reason: str, at: datetime) -> bool:
        sub = self.subs.get(subscription_id)
        if sub is None or not sub.active:
            return False
        self.subs[subscription_id] = replace(sub, disabled_at=at, disabled_reason=reason)
        for r in self.rows.values():
            if r["subscription_id"] == subscription_id and r["status"] == "pending":
                r.update(status="dead", last_error=reason)
        return True

    def enqueue(self, rows: Sequence[Mapping[str, Any]]) -> int:
        known = {r["message_id"] for r in self.rows.values()}
        added = 0
        for row in rows:
            if row["message_id"] in known:
                continue
            known.add(row["message_id"])
            key = next(self._ids)
            self.rows[key] = {
                **{k: row[k] for k in OUTBOX_FIELDS},
                "outbox_id": key,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": row["created_at"],
                "delivered_at": None,
                "last_status": None,
                "last_error": None,
            }
            added += 1
        return added

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        rows = self.rows.values()
        ready = [r for r in rows if r["status"] == "pending" and r["next_attempt_at"] <= now]
        due = sorted(ready, key=lambda r: (r["next_attempt_at"], r["outbox_id"]))[:limit]
        out = []
        for r in sorted(due, key=lambda r: r["outbox_id"]):
            r.update(attempts=r["attempts"] + 1, next_attempt_at=lease_until)
            sub = self.subs.get(r["subscription_id"])
            if sub is None:
                continue
            out.append(
                Delivery(
                    outbox_id=r["outbox_id"],
                    message_id=r["message_id"],
                    subscription_id=r["subscription_id"],
                    url=sub.url,
                    secret=sub.secret,
                    event_type=r["event_type"],
                    body=r["body"],
                    attempts=r["attempts"],
                )
            )
        return out

    def record(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        check_outcomes(outcomes)
        for x in outcomes:
            r = self.rows.get(x.outbox_id)
            if r is None:
                continue
            r.update(
                status=x.status,
                delivered_at=at if x.status == "delivered" else None,
                last_status=x.http_status,
                last_error=x.error,
            )
            if x.next_attempt_at is not None:
                r["next_attempt_at"] = x.next_attempt_at

    def entries(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        rows = [
            r
            for _, r in sorted(self.rows.items())
            if (status is None or r["status"] == status)
            and (subscription_id is None or r["subscription_id"] == subscription_id)
        ]
        return [entry(r) for r in rows[:limit]]

    def replay(self, outbox_ids: Sequence[int] | None, at: datetime) -> int:
        wanted = None if outbox_ids is None else set(outbox_ids)
        done = 0
        for key, r in self.rows.items():
            if r["status"] == "dead" and (wanted is None or key in wanted):
                r.update(status="pending", attempts=0, next_attempt_at=at)
                done += 1
        return done

    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.rows.values()))

    def purge(self, delivered_before: datetime) -> int:
        old = [
            k
            for k, r in self.rows.items()
            if r["status"] == "delivered" and r["delivered_at"] < delivered_before
        ]
        for key in old:
            del self.rows[key]
        return len(old)

    def email_event_seq(self) -> int:
        return self._email_event_seq()
